"""Natural-language spatial questions at run time (ONNX graphs + `tokenizers`; no torch, no rclpy).

The text helpers (`check_english`, `parse_options`) import with the package; the question
model (`LanguageAnswerer`, and what comes with it) on first use, so that code which only
reads questions (the object map's answers) does not load the answerer's dependencies.
"""
from geovr_ros.language.text import NotEnglishError, check_english, parse_options

_ANSWERER_NAMES = ('LanguageAnswerer', 'NOTHING_SEEN_MESSAGE', 'QuestionModelError')

__all__ = ['LanguageAnswerer', 'NOTHING_SEEN_MESSAGE', 'NotEnglishError', 'QuestionModelError',
           'check_english', 'parse_options']


def __getattr__(name: str):
    if name in _ANSWERER_NAMES:
        from geovr_ros.language import answerer
        return getattr(answerer, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
