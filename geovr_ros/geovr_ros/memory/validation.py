"""Checks on a question before anything answers it."""
from __future__ import annotations

import unicodedata

MAX_QUESTION_CHARS = 1000


class InvalidQuestionError(ValueError):
    """A question is empty, too long or not valid text."""


def validate_question(question: object, max_chars: int = MAX_QUESTION_CHARS) -> str:
    """Returns the question stripped of surrounding white space.

    Raises InvalidQuestionError naming the problem when `question` is not a str, is empty,
    longer than `max_chars` characters, or undecodable: it holds the U+FFFD replacement
    character (what a decoder leaves for invalid UTF-8), lone surrogates, or control
    characters other than tab and newline.
    """
    if isinstance(question, (bytes, bytearray)):
        try:
            question = bytes(question).decode('utf-8')
        except UnicodeDecodeError as error:
            raise InvalidQuestionError(f'question is not valid UTF-8: {error}') from None
    if not isinstance(question, str):
        raise InvalidQuestionError(f'question must be text, got {type(question).__name__}')
    if len(question) > max_chars:
        raise InvalidQuestionError(
            f'question has {len(question)} characters, more than the limit of {max_chars}')
    stripped = question.strip()
    if not stripped:
        raise InvalidQuestionError('question is empty')
    for index, char in enumerate(stripped):
        category = unicodedata.category(char)
        if char == '\ufffd' or category == 'Cs' or (category == 'Cc' and char not in '\t\n'):
            raise InvalidQuestionError(
                f'question is undecodable: character {index} is {char!r} ({category})')
    return stripped
