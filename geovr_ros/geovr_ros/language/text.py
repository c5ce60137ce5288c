"""Question text checks and answer-option parsing (pure Python, no model).

Options of a multiple-choice question are read from the question itself, in the forms the
generated questions and VSI-Bench use: lettered options "(A) x; (B) y" or "A. x B. y",
a list after the last colon "...: x, y, or z?", a parenthesised list "(left or right)",
"(lamp, plant, chair, bottle)", a list closing the question or its first sentence "... to my
left, right, or back? An object is ...", a leading list "Among x, y and z, which ...", or a
list after the comma of a which-question "Which is nearer to the bed, the chair or the lamp?",
or the pair of an either-question "Is the lamp or the box closer to the sofa?".
Leading articles are dropped from options. Callers may also pass options explicitly.
"""
from __future__ import annotations

import re

_LETTERED = re.compile(r'(?:^|[\s;:,])\(([A-F])\)\s*')
_DOTTED = re.compile(r'(?:^|\s)([A-F])[.)]\s+')
_SPLIT = re.compile(r'\s*,\s*(?:or\s+|and\s+)?|\s+or\s+|\s*;\s*')


class NotEnglishError(ValueError):
    """The question is not in English, the only language the question encoder reads."""


_ARTICLE = re.compile(r'^(?:the|a|an)\s+', re.IGNORECASE)


def _clean(option: str) -> str:
    """An option without surrounding punctuation and its leading article ("the chair" -> "chair")."""
    return _ARTICLE.sub('', option.strip().strip('.?!;:,').strip())


def parse_options(question: str) -> list[str]:
    """The answer options given in `question` (in order), or [] when it lists none."""
    for pattern in (_LETTERED, _DOTTED):
        parts = pattern.split(question)
        if len(parts) >= 5:  # text, letter, option, letter, option...
            letters = parts[1::2]
            if letters[:2] == ['A', 'B']:
                return [_clean(p) for p in parts[2::2] if _clean(p)]
    candidates = []
    paren = re.findall(r'\(([^()]*\bor\b[^()]*)\)', question)
    candidates += paren
    if ':' in question:
        candidates.append(question.rsplit(':', 1)[1])
    tail = re.search(r'([\w-]+(?:(?:\s*,\s*|,?\s+or\s+)[\w-]+)+)\s*\?\s*$', question)
    if tail and ' or ' in tail.group(1):
        candidates.append(tail.group(1))
    # VSI-Bench's: a list closing the first sentence, a note after it ("is the lamp to my left, right,
    # or back? An object is to my back if ..."; "... front-left, front-right, back-left, or back-right of me?")
    first = re.search(r'([\w-]+(?:(?:\s*,\s*|,?\s+or\s+)[\w-]+)+)(?:\s+of\s+(?:me|us|you|the [\w-]+))?\s*\?',
                      question)
    if first and ' or ' in first.group(1):
        candidates.append(first.group(1))
    sides = re.search(r'\b(left|right)\s+or\s+(?:to\s+)?the\s+(left|right)\b', question, re.IGNORECASE)
    if sides:   # "is the lamp to the left or the right of the table?"
        candidates.append(f'{sides.group(1)} or {sides.group(2)}')
    lead = re.match(r'\s*(?:among|of)\s+(.+?),\s*which\b', question, re.IGNORECASE)
    if lead:   # "Among the chair, the lamp and the plant, which ...": the last is joined by 'and'
        candidates.append(re.sub(r'\s+and\s+(?=[^,]*$)', ', ', lead.group(1)))
    either = re.match(r'\s*(?:is|are|was|were)\s+(.+?\bor\b.+?)\s+(?:closer|nearer|farther|further|bigger|larger|'
                      r'smaller|taller|longer|shorter)\b', question, re.IGNORECASE)
    if either:  # "Is the lamp or the box closer to the sofa?"
        candidates.append(either.group(1))
    after_comma = re.match(r'\s*(?:which|what|who)\b[^,]*,\s*(.+\bor\b.+?)\s*\?\s*$', question, re.IGNORECASE)
    if after_comma:  # "Which is nearer to the bed, the chair or the lamp?"
        candidates.append(after_comma.group(1))
    # VSI-Bench's relative distance: "which of these objects (lamp, plant, chair, bottle) is the closest ..."
    candidates += re.findall(r'\(([^()]*,[^()]*)\)', question)
    for text in candidates:
        text = re.split(r'[?]', text)[0]
        options = [_clean(o) for o in _SPLIT.split(text) if _clean(o)]
        if len(options) >= 2 and all(len(o.split()) <= 6 for o in options):
            return options
    return []


class OutOfScopeError(ValueError):
    """The question asks for something the question model does not answer."""


# Words that a question of each category holds, in any wording (the data engine's templates and
# everyday paraphrases: "how wide is the bed?", "show me the duck", "is there a lamp?"). The
# model chooses its category among those whose cues the question holds; a question with no cue
# of any category is outside what the model answers (colours, contents, greetings).
CATEGORY_CUES = {
    'object_count': r"\bhow many\b|\bcount\b|\bnumber of\b|\b(?:is|are) there\b|\bany\b",
    'abs_distance': r"\bdistance\b|\bhow far\b|\bfar (?:apart|away|from)\b|\bapart\b|\bbetween\b|"
                    r"\bmet(?:er|re)s?\b|\bfeet\b|\bfoot\b",
    'object_size': r"\bsize\b|\blong(?:est)?\b|\blength\b|\bbig\b|\blarge\b|\btall\b|\bhigh\b|\bheight\b|"
                   r"\bwide\b|\bwidth\b|\bdimensions?\b|\bcm\b|\bcentimet(?:er|re)s?\b|\bmeasures?\b|\bedge\b",
    'room_size': r"\broom\b|\barea\b|\bsquare\b|\bfloor\b|\bm\^2\b",
    'rel_distance': r"\bclos(?:e|er|est)\b|\bnear(?:er|est|by)?\b|\bfarthest\b|\bfurthest\b|\bfarther\b",
    'rel_direction': r"\bleft\b|\bright\b|\bbehind\b|\bback\b|\bfront\b|\bfacing\b|\bface\b|\bdirection\b|"
                     r"\bwhich way\b|\bahead\b",
    'route_plan': r"\broute\b|\bturns?\b|\bnavigate\b|\bactions?\b|\bgo forward\b|\bblanks?\b|\bget (?:to|from)\b|"
                  r"\bpath\b|\bway to\b",
    'appearance_order': r"\bfirst\b|\bappear(?:s|ed|ance)?\b|\border\b|\bsequence\b|\bseen\b|\bsaw\b|\bsee\b|"
                        r"\bearlier\b|\blater\b|\bbefore\b|\bafter\b",
    'where_is': r"\bwhere\b|\blocate\b|\bfind\b|\bposition\b|\bpoint\b|\bshow me\b|\bcoordinates?\b|"
                r"\bwhereabouts\b|\blocation\b|\b(?:looking|searching) for\b",
    'situated_localization': r"\bwhere am i\b|\bwhere i am\b|\bmy (?:position|location|heading|pose)\b|"
                             r"\blocate me\b|\b(?:i am|i'm) (?:facing|looking|standing)\b|\bmy (?:left|right)\b|"
                             r"\b(?:of|to|before) me\b|\bam i\b",
}
_CUES = {category: re.compile(pattern, re.IGNORECASE) for category, pattern in CATEGORY_CUES.items()}


def plausible_categories(question: str, categories: list[str]) -> list[str]:
    """The categories of `categories` (in their order) whose cues `question` holds; a
    category without cues in CATEGORY_CUES is always plausible."""
    return [c for c in categories if c not in _CUES or _CUES[c].search(question)]


def check_scope(question: str, categories: list[str]) -> list[str]:
    """`plausible_categories`, or OutOfScopeError when there are none."""
    plausible = plausible_categories(question, categories)
    if not plausible:
        raise OutOfScopeError('this is not a question the spatial model answers: it answers counts, distances, '
                              'sizes, room area, the nearest object, directions, routes, the order things were seen '
                              'in, where an object is and where you are')
    return plausible


ENGLISH_WORDS = frozenset(
    'the is are was were what where which who how many much of to my me i you your a an and or from this '
    'that these those there does do did am with between by at on for it its be can should would'.split())
FOREIGN_WORDS = frozenset(
    'der die das ist sind und nicht wo wie viele ein eine einen dem den im zum vom le la les est sont et où '
    'une des du dans combien quel quelle el los las es está están dónde cuántos cuántas y una il lo di che è '
    'dove quanti quante sono het een van zijn waar hoeveel staan och är var hur ett jag não onde quantos '
    'uma com para'.split())


def english_score(question: str, vocabulary: set[str] | None = None) -> float:
    """How English `question` looks, in [0, 1]: 0 when most letters are not ASCII Latin;
    else the share of English among the function words it holds (English vs common
    German, French, Spanish, Italian, Dutch, Swedish, Portuguese ones); without function
    words, the share of its words found whole in the word-piece `vocabulary` (1.0 with no
    vocabulary or no words)."""
    letters = [ch for ch in question if ch.isalpha()]
    if letters and sum(ch.isascii() for ch in letters) < 0.8 * len(letters):
        return 0.0
    words = [w for w in re.findall(r'[^\W\d_]+', question.lower())]
    english = sum(w in ENGLISH_WORDS for w in words)
    foreign = sum(w in FOREIGN_WORDS for w in words)
    if english + foreign:
        return english / (english + foreign)
    if not words or vocabulary is None:
        return 1.0
    return sum(w in vocabulary for w in words) / len(words)


def check_english(question: str, vocabulary: set[str] | None = None, threshold: float = 0.5) -> None:
    """Raises NotEnglishError when `english_score` is below `threshold`."""
    score = english_score(question, vocabulary)
    if score < threshold:
        raise NotEnglishError(f'the question does not look like English (English score {score:.2f} < '
                              f'{threshold}): this model reads English questions only')
