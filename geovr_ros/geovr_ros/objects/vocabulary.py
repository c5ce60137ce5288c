"""The indoor object vocabulary: category names, the words that name them, and the
ImageNet-1k classes that are evidence for them.

A `Vocabulary` of K categories turns a classifier's per-cell ImageNet logits (cells, 1000)
into category probabilities (cells, K + 1): softmax over the 1000 classes at `temperature`,
summed over each category's classes; column K (background) holds the rest, i.e. the mass
of every class outside the vocabulary. A cell is labelled with its most probable category
when that probability is at least `min_score` (`label_cells`), else background.

On a grid of cells (`grid_probabilities`) each cell's logits are first averaged over the
`pool_cells` x `pool_cells` window of cells around it (`pool_logits`; the cells of the
window inside the grid). This is the classifier applied to the window, exactly: it was
trained on features averaged over the whole image then one linear layer, so the mean of
the cells' logits is its logit for the features averaged over the cells. One 32-pixel cell
is far smaller than the 224-pixel images it learned from; a 3x3 window (96 pixels) names
real objects more reliably (docs/objects.md).

The shipped vocabulary is `config/object_vocabulary.yaml`; `load_vocabulary(user_file)`
merges a user's file over it (rules in that file's header). A vocabulary without ImageNet
classes (`Vocabulary.from_names`) names cells from another source, e.g. a segmentation
oracle or a trained head, and is still used to parse questions.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from geovr_ros.objects.verifier import InstanceVerifier


__all__ = ['Category', 'Vocabulary', 'VocabularyError', 'load_vocabulary', 'merge_vocabulary',
           'plural_of', 'pool_logits', 'shipped_vocabulary_path', 'vocabulary_from_dict']

SHIPPED_FILE = 'object_vocabulary.yaml'
SETTING_KEYS = ('temperature', 'min_score', 'combine', 'pool_cells', 'imagenet_sure', 'windows', 'window_pixels',
                'verifier', 'head_synonyms', 'on_floor', 'size_quantiles')
TOP_KEYS = SETTING_KEYS + ('categories', 'remove')
COMBINE_RULES = ('head', 'max')  # objects/namers.py
CATEGORY_KEYS = ('imagenet', 'synonyms', 'plural')
NUM_IMAGENET_CLASSES = 1000  # outputs of an ImageNet-1k classifier
MAX_POOL_CELLS = 15  # the largest pooling window (cells a side)
WINDOW_PIXELS_RANGE = (32, 512)  # the side a window is classified at, pixels


class VocabularyError(ValueError):
    """A vocabulary file or value is unusable; the message names the key or value."""


def pool_logits(logits: np.ndarray, size: int) -> np.ndarray:
    """Each cell's logits (..., h, w, C) replaced by their mean over the size x size window
    of cells centred on it (size odd, >= 1), over the window's cells inside the grid (an
    edge cell averages fewer). Returns float64 of the same shape; size 1 returns the logits.
    Raises VocabularyError for a size that is not an odd integer in [1, MAX_POOL_CELLS] and
    ValueError for fewer than 3 dimensions."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1 or size % 2 == 0 \
            or size > MAX_POOL_CELLS:
        raise VocabularyError(f'pool_cells must be an odd integer in [1, {MAX_POOL_CELLS}], got {size!r}')
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim < 3:
        raise ValueError(f'logits must be a grid (..., h, w, C) to pool, got shape {logits.shape}')
    if size == 1:
        return logits
    r = size // 2
    lead = logits.ndim - 3
    pad = [(0, 0)] * lead + [(r + 1, r), (r + 1, r), (0, 0)]  # one extra row / column of zeros first
    sums = np.pad(logits, pad).cumsum(-3).cumsum(-2)  # (..., h + 2r + 1, w + 2r + 1, C)
    ones = np.pad(np.ones(logits.shape[-3:-1] + (1,)), pad[lead:]).cumsum(0).cumsum(1)
    def window(a):  # sum over the size x size window ending at each cell + 2r (inclusive)
        return a[..., size:, size:, :] - a[..., :-size, size:, :] - a[..., size:, :-size, :] \
            + a[..., :-size, :-size, :]
    return window(sums) / window(ones)


IRREGULAR_PLURALS = {'person': 'people', 'child': 'children', 'man': 'men', 'woman': 'women', 'mouse': 'mice',
                     'foot': 'feet', 'knife': 'knives', 'shelf': 'shelves', 'leaf': 'leaves'}


def plural_of(word: str) -> str:
    """English plural of a (possibly multi-word) name: the last word takes the ending."""
    head, _, last = word.rpartition(' ')
    if last in IRREGULAR_PLURALS:
        last = IRREGULAR_PLURALS[last]
    elif re.search(r'(s|x|z|ch|sh)$', last):
        last += 'es'
    elif re.search(r'[^aeiou]y$', last):
        last = last[:-1] + 'ies'
    else:
        last += 's'
    return f'{head} {last}' if head else last


@dataclass(frozen=True)
class Category:
    """One category. imagenet: {class index: ImageNet name}; synonyms and plural: words a
    question may use for it (plural '' means `plural_of(name)`)."""

    name: str
    imagenet: Mapping[int, str]
    synonyms: tuple[str, ...] = ()
    plural: str = ''

    @property
    def plural_name(self) -> str:
        return self.plural or plural_of(self.name)

    def terms(self) -> tuple[str, ...]:
        """Every word that names this category: name, plural, synonyms and their plurals."""
        words = [self.name, self.plural_name]
        for synonym in self.synonyms:
            words += [synonym, plural_of(synonym)]
        return tuple(dict.fromkeys(w.lower() for w in words))


class Vocabulary:
    """K categories, the map from ImageNet classes to them, and the cell-labelling rule.

    Args:
        categories: in the order of the probability columns.
        temperature: softmax temperature applied to the logits (> 0; 1 = the classifier's
            own probabilities, > 1 flattens them).
        min_score: a cell is labelled with a category when its probability reaches this.
        combine: how a trained category head's probabilities join the ImageNet ones
            ('head' or 'max', `objects/namers.py`).
        pool_cells: the window (cells a side, odd, 1..15) the logits of a grid are averaged
            over before the softmax (`grid_probabilities`); 1: each cell alone.
        imagenet_sure: with `combine: head`, a cell whose ImageNet probability of one category
            reaches this is named by ImageNet even where the head names it (0 < x <= 1; 1:
            never, the head decides its categories alone).
        windows: the ImageNet classes are read from square windows of these sides (fractions
            of the image height, each in (0, 1]), each crop classified alone at
            `window_pixels` (`objects/windows.py`); () reads them from the frame's cells.
        window_pixels: the side windows are resized to before classification (32..512).
        verifier: how much the object map believes each instance (`objects/verifier.py`,
            `ObjectMapConfig.verifier`); None: every instance.
        head_synonyms: {category name: words} for the categories a trained head adds
            (`with_categories`: 'toy duck' -> duck, rubber duck), the words questions may use.
        on_floor: names of the categories whose objects stand on the floor or on something
            the map holds (`ObjectMapConfig.on_floor`: the map stretches their boxes down to
            that surface when the views saw only their tops); may name categories a head adds.
        size_quantiles: (low, high) quantiles of an instance's views' box corners that bound the
            box it reports (`ObjectMapConfig.size_quantiles`: its size; association keeps the
            map's `box_quantiles`); None: the same as those.
    """

    def __init__(self, categories: Sequence[Category], temperature: float = 1.0, min_score: float = 0.3,
                 combine: str = 'head', pool_cells: int = 1, imagenet_sure: float = 1.0,
                 windows: Sequence[float] = (), window_pixels: int = 128,
                 verifier: InstanceVerifier | None = None, head_synonyms: Mapping[str, Sequence[str]] | None = None,
                 on_floor: Sequence[str] = (), size_quantiles: Sequence[float] | None = None):
        if not categories:
            raise VocabularyError('a vocabulary needs at least one category')
        if not (np.isfinite(temperature) and temperature > 0):
            raise VocabularyError(f'temperature must be a positive number, got {temperature!r}')
        if not (0.0 < min_score <= 1.0):
            raise VocabularyError(f'min_score must be in (0, 1], got {min_score!r}')
        if combine not in COMBINE_RULES:
            raise VocabularyError(f'combine must be one of {COMBINE_RULES}, got {combine!r}')
        self.combine = combine
        pool_logits(np.zeros((1, 1, 1)), pool_cells)  # raises VocabularyError for a bad size
        self.pool_cells = int(pool_cells)
        if not (np.isfinite(imagenet_sure) and 0 < imagenet_sure <= 1):
            raise VocabularyError(f'imagenet_sure must be in (0, 1], got {imagenet_sure!r}')
        self.imagenet_sure = float(imagenet_sure)
        if isinstance(windows, (str, bytes)) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) and 0 < v <= 1
                for v in windows) or len(set(windows)) != len(windows):
            raise VocabularyError(f'windows must be distinct fractions of the image height in (0, 1], '
                                  f'got {windows!r}')
        self.windows = tuple(float(v) for v in windows)
        low, high = WINDOW_PIXELS_RANGE
        if isinstance(window_pixels, bool) or not isinstance(window_pixels, (int, np.integer)) \
                or not low <= window_pixels <= high:
            raise VocabularyError(f'window_pixels must be an integer in [{low}, {high}], got {window_pixels!r}')
        self.window_pixels = int(window_pixels)
        self.verifier = verifier
        self.head_synonyms = _head_synonyms(head_synonyms or {})
        if isinstance(on_floor, (str, bytes)) or not all(isinstance(n, str) and n.strip() for n in on_floor):
            raise VocabularyError(f'on_floor must be a list of category names, got {on_floor!r}')
        self.on_floor = tuple(sorted({' '.join(n.lower().split()) for n in on_floor}))
        self.size_quantiles = _size_quantiles(size_quantiles)
        self.categories = tuple(categories)
        self.names = tuple(c.name for c in self.categories)
        self.temperature = float(temperature)
        self.min_score = float(min_score)
        if len(set(self.names)) != len(self.names):
            raise VocabularyError(f'category names repeat: {sorted(self.names)}')
        self.class_to_category = np.full(NUM_IMAGENET_CLASSES, len(self.categories), dtype=np.int64)
        owner: dict[int, str] = {}
        for k, category in enumerate(self.categories):
            for index in category.imagenet:
                if index in owner:
                    raise VocabularyError(f'ImageNet class {index} is in both '
                                          f'{owner[index]!r} and {category.name!r}')
                owner[index] = category.name
                self.class_to_category[index] = k
        self._class_matrix = np.zeros((NUM_IMAGENET_CLASSES, len(self.categories) + 1))  # one-hot rows
        self._class_matrix[np.arange(NUM_IMAGENET_CLASSES), self.class_to_category] = 1.0
        self._terms: dict[str, str] = {}
        for category in self.categories:
            for term in category.terms():
                other = self._terms.setdefault(term, category.name)
                if other != category.name:
                    raise VocabularyError(f'the word {term!r} names both {other!r} and {category.name!r}')
        for category in self.categories:  # a plain 's' plural ('boxs') where no category claims the word
            for word in (category.name, *category.synonyms):
                self._terms.setdefault(word.lower() + 's', category.name)
        longest_first = sorted(self._terms, key=len, reverse=True)
        self._pattern = re.compile(r'\b(' + '|'.join(re.escape(t) for t in longest_first) + r')\b')

    @classmethod
    def from_names(cls, names: Iterable[str], min_score: float = 0.5) -> 'Vocabulary':
        """Categories with no ImageNet classes (cells named by another source)."""
        return cls([Category(str(n), {}) for n in names], min_score=min_score)

    def __len__(self) -> int:
        return len(self.categories)

    @property
    def background(self) -> int:
        """The background column / label (= K)."""
        return len(self.categories)

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise VocabularyError(f'{name!r} is not a category of this vocabulary') from None

    def category(self, name: str) -> Category:
        return self.categories[self.index(name)]

    def resolve(self, word: str) -> str | None:
        """The category a word names (its name, plural or a synonym, any case), else None."""
        return self._terms.get(' '.join(str(word).lower().split()))

    def with_categories(self, names: Iterable[str]) -> 'Vocabulary':
        """This vocabulary plus a category (no ImageNet classes) for each name that names none
        of its categories (`resolve`); itself when every name resolves. Order: these categories,
        then the added ones in `names` order."""
        names = [' '.join(str(n).lower().split()) for n in dict.fromkeys(names) if self.resolve(n) is None]
        added = [Category(n, {}, tuple(w for w in self.head_synonyms.get(n, ()) if self.resolve(w) is None))
                 for n in names]
        if not added:
            return self
        return Vocabulary(self.categories + tuple(added), self.temperature, self.min_score, self.combine,
                          self.pool_cells, self.imagenet_sure, self.windows, self.window_pixels, self.verifier,
                          self.head_synonyms, self.on_floor, self.size_quantiles)

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Category probabilities (..., K + 1) of ImageNet logits (..., 1000).

        softmax(logits / temperature) summed per category; the last column is the
        background (every class outside the vocabulary). Rows sum to 1.
        """
        logits = np.asarray(logits, dtype=np.float64)
        if logits.shape[-1:] != (NUM_IMAGENET_CLASSES,):
            raise VocabularyError(f'logits must have shape (..., {NUM_IMAGENET_CLASSES}), got {logits.shape}')
        if not np.all(np.isfinite(logits)):
            raise VocabularyError('logits contain NaN or inf')
        z = logits / self.temperature
        z = np.exp(z - z.max(axis=-1, keepdims=True))
        p = z / z.sum(axis=-1, keepdims=True)  # (..., 1000)
        return p @ self._class_matrix  # (..., K + 1)

    def grid_probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Category probabilities (..., h, w, K + 1) of a grid of cells' ImageNet logits
        (..., h, w, 1000): each cell's logits averaged over the `pool_cells` window around it
        (`pool_logits`), then `probabilities`."""
        logits = np.asarray(logits)
        if logits.ndim < 3 or logits.shape[-1] != NUM_IMAGENET_CLASSES:
            raise VocabularyError(f'logits must be a grid (..., h, w, {NUM_IMAGENET_CLASSES}), got {logits.shape}')
        if not np.all(np.isfinite(logits)):
            raise VocabularyError('logits contain NaN or inf')
        return self.probabilities(pool_logits(logits, self.pool_cells))

    def label_cells(self, probabilities: np.ndarray, min_score: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(labels (...) int, scores (...)) of probabilities (..., K + 1): the most probable
        category where its probability reaches `min_score` (default: the vocabulary's),
        else the background label K with its score set to the background probability."""
        probabilities = np.asarray(probabilities, dtype=np.float64)
        if probabilities.shape[-1] != len(self.categories) + 1:
            raise VocabularyError(f'probabilities must have {len(self.categories) + 1} columns '
                                  f'(K + background), got shape {probabilities.shape}')
        threshold = self.min_score if min_score is None else float(min_score)
        labels = np.argmax(probabilities[..., :-1], axis=-1)
        scores = np.take_along_axis(probabilities, labels[..., None], axis=-1)[..., 0]
        background = scores < threshold
        labels = np.where(background, self.background, labels)
        scores = np.where(background, probabilities[..., -1], scores)
        return labels, scores

    def slip_of(self, word: str) -> str | None:
        """The one word of this vocabulary that `word` (4 letters or more, none of its words)
        mistypes by one slip: two neighbouring letters swapped, one letter left out or one too
        many ('chiars', 'tabel', 'lmap', 'sofaa'); None when no word or words of several
        categories do. A letter typed for another is no slip: 'walls' is not 'balls'."""
        word = ' '.join(str(word).lower().split())
        if len(word) < 4 or word in self._terms:
            return None
        found = {term: self._terms[term] for term in self._terms if ' ' not in term and _one_slip(word, term)}
        return min(found, key=len) if len(set(found.values())) == 1 else None

    def find(self, text: str) -> list[tuple[int, str]]:
        """(character offset, category name) of every category word in `text`, in text
        order; longer words win ('table lamp' is a lamp, not a table)."""
        return [(start, name) for start, _, name in self.find_spans(text)]

    def find_spans(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, category name) of every category word in `text`, as `find`."""
        return [(m.start(), m.end(), self._terms[m.group(1)]) for m in self._pattern.finditer(text.lower())]

    def to_dict(self) -> dict[str, Any]:
        """The YAML form (`vocabulary_from_dict` reads it back)."""
        return {'temperature': self.temperature, 'min_score': self.min_score, 'combine': self.combine,
                'pool_cells': self.pool_cells, 'imagenet_sure': self.imagenet_sure,
                'windows': list(self.windows), 'window_pixels': self.window_pixels,
                'verifier': None if self.verifier is None else self.verifier.to_dict(),
                'head_synonyms': {name: list(words) for name, words in self.head_synonyms.items()},
                'on_floor': list(self.on_floor),
                'size_quantiles': None if self.size_quantiles is None else list(self.size_quantiles),
                'categories': {c.name: {'imagenet': dict(c.imagenet), 'synonyms': list(c.synonyms),
                                        **({'plural': c.plural} if c.plural else {})}
                               for c in self.categories}}


def _head_synonyms(data: Any) -> dict[str, tuple[str, ...]]:
    """`head_synonyms` checked: {category name: [words]}, lower case."""
    if not isinstance(data, Mapping) or not all(
            isinstance(name, str) and name.strip() and isinstance(words, (list, tuple))
            and all(isinstance(w, str) and w.strip() for w in words) for name, words in data.items()):
        raise VocabularyError(f'head_synonyms must map a category name to a list of words, got {data!r}')
    return {' '.join(name.lower().split()): tuple(' '.join(w.lower().split()) for w in words)
            for name, words in data.items()}


def _size_quantiles(value: Any) -> tuple[float, float] | None:
    """`size_quantiles` checked: None, or (low, high) with 0 <= low <= high <= 1."""
    if value is None:
        return None
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise VocabularyError(f'size_quantiles must be [low, high] with 0 <= low <= high <= 1, got {value!r}')
    pair = list(value)
    if len(pair) != 2 or not all(isinstance(q, (int, float)) and not isinstance(q, bool) and np.isfinite(q)
                                 for q in pair) or not 0 <= pair[0] <= pair[1] <= 1:
        raise VocabularyError(f'size_quantiles must be [low, high] with 0 <= low <= high <= 1, got {value!r}')
    return float(pair[0]), float(pair[1])


def _normalise_class_name(name: str) -> str:
    return ' '.join(str(name).replace('_', ' ').lower().split())


def vocabulary_from_dict(data: Mapping[str, Any], source: str = '<dict>') -> Vocabulary:
    """A Vocabulary from the YAML form; raises VocabularyError naming the key and `source`."""
    if not isinstance(data, Mapping):
        raise VocabularyError(f'{source}: the top level must be a mapping, got {type(data).__name__}')
    _reject_unknown(data, TOP_KEYS, source)
    entries = data.get('categories')
    if not isinstance(entries, Mapping) or not entries:
        raise VocabularyError(f'{source}: categories must be a non-empty mapping')
    categories = []
    for name, entry in entries.items():
        where = f'{source}: categories.{name}'
        if not isinstance(name, str) or not name.strip():
            raise VocabularyError(f'{where}: a category name must be a non-empty string')
        entry = {} if entry is None else entry
        if not isinstance(entry, Mapping):
            raise VocabularyError(f'{where}: must be a mapping with keys {list(CATEGORY_KEYS)}')
        _reject_unknown(entry, CATEGORY_KEYS, where)
        classes = entry.get('imagenet') or {}
        if not isinstance(classes, Mapping):
            raise VocabularyError(f'{where}.imagenet: must map class index to ImageNet name, '
                                  f'e.g. {{559: folding chair}}')
        imagenet = {}
        for index, class_name in classes.items():
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < NUM_IMAGENET_CLASSES:
                raise VocabularyError(f'{where}.imagenet: class index {index!r} is not an integer in [0, 999]')
            if not isinstance(class_name, str) or not class_name.strip():
                raise VocabularyError(f'{where}.imagenet: class {index} needs its ImageNet name '
                                      f'(documentation for readers), got {class_name!r}')
            imagenet[index] = _normalise_class_name(class_name)
        synonyms = entry.get('synonyms') or []
        if isinstance(synonyms, str) or not all(isinstance(s, str) and s.strip() for s in synonyms):
            raise VocabularyError(f'{where}.synonyms: must be a list of non-empty strings, got {synonyms!r}')
        plural = entry.get('plural') or ''
        if not isinstance(plural, str):
            raise VocabularyError(f'{where}.plural: must be a string, got {plural!r}')
        categories.append(Category(name.strip().lower(), imagenet,
                                   tuple(s.strip().lower() for s in synonyms), plural.strip().lower()))
    try:
        pool_cells = data.get('pool_cells', 1)
        if isinstance(pool_cells, bool) or not isinstance(pool_cells, int):
            raise VocabularyError(f'pool_cells must be an odd integer in [1, {MAX_POOL_CELLS}], got {pool_cells!r}')
        windows = data.get('windows') or []
        if not isinstance(windows, (list, tuple)):
            raise VocabularyError(f'windows must be a list of fractions of the image height, got {windows!r}')
        verifier = data.get('verifier')
        on_floor = data.get('on_floor') or []
        if not isinstance(on_floor, (list, tuple)):
            raise VocabularyError(f'on_floor must be a list of category names, got {on_floor!r}')
        return Vocabulary(categories, float(data.get('temperature', 1.0)), float(data.get('min_score', 0.3)),
                          str(data.get('combine', 'head')), pool_cells, float(data.get('imagenet_sure', 1.0)),
                          tuple(windows), data.get('window_pixels', 128),
                          None if verifier is None else InstanceVerifier.from_dict(verifier),
                          data.get('head_synonyms'), tuple(on_floor), data.get('size_quantiles'))
    except (TypeError, ValueError) as exc:
        raise VocabularyError(f'{source}: {exc}') from exc


def merge_vocabulary(base: Mapping[str, Any], override: Mapping[str, Any], source: str = '<override>') -> dict:
    """`override` (a user's YAML form) merged over `base`: top-level values replace; a
    category of the same name replaces the keys it gives; new names add categories;
    `remove: [names]` drops categories of `base`. Unknown keys raise VocabularyError."""
    if not isinstance(override, Mapping):
        raise VocabularyError(f'{source}: the top level must be a mapping, got {type(override).__name__}')
    _reject_unknown(override, TOP_KEYS, source)
    merged = {k: v for k, v in base.items() if k not in ('categories', 'remove')}
    categories = {name: dict(entry or {}) for name, entry in (base.get('categories') or {}).items()}
    remove = override.get('remove') or []
    if isinstance(remove, str) or not isinstance(remove, (list, tuple)):
        raise VocabularyError(f'{source}: remove must be a list of category names, got {remove!r}')
    for name in remove:
        if name not in categories:
            raise VocabularyError(f'{source}: remove names {name!r}, which is not a category '
                                  f'(categories: {sorted(categories)})')
        del categories[name]
    for name, entry in (override.get('categories') or {}).items():
        entry = {} if entry is None else entry
        if not isinstance(entry, Mapping):
            raise VocabularyError(f'{source}: categories.{name} must be a mapping')
        _reject_unknown(entry, CATEGORY_KEYS, f'{source}: categories.{name}')
        categories[name] = {**categories.get(name, {}), **entry}
    for key in SETTING_KEYS:
        if key in override:
            merged[key] = override[key]
    merged['categories'] = categories
    return merged


def shipped_vocabulary_path() -> Path:
    """The shipped `object_vocabulary.yaml`: the installed package's share folder when
    ament_index knows it, else the source tree's `geovr_ros/config`."""
    source_tree = Path(__file__).resolve().parents[2] / 'config' / SHIPPED_FILE
    if source_tree.is_file():
        return source_tree
    try:
        from ament_index_python.packages import get_package_share_directory
        return Path(get_package_share_directory('geovr_ros')) / 'config' / SHIPPED_FILE
    except (ImportError, LookupError) as exc:
        raise VocabularyError(f'the shipped {SHIPPED_FILE} is neither at {source_tree} nor in an '
                              f'installed geovr_ros share folder ({exc})') from exc


def load_vocabulary(user_file: str | Path | None = None, shipped_file: str | Path | None = None) -> Vocabulary:
    """The shipped vocabulary, with `user_file` (YAML, optional) merged over it."""
    base_path = Path(shipped_file) if shipped_file is not None else shipped_vocabulary_path()
    data = _read_yaml(base_path)
    vocabulary_from_dict(data, str(base_path))  # the shipped file must be valid on its own
    if user_file is not None:
        data = merge_vocabulary(data, _read_yaml(Path(user_file)), str(user_file))
        return vocabulary_from_dict(data, f'{user_file} merged over {base_path}')
    return vocabulary_from_dict(data, str(base_path))


def _read_yaml(path: Path) -> Any:
    import yaml
    try:
        with open(path, encoding='utf-8') as f:
            data = yaml.safe_load(f)
    except OSError as exc:
        raise VocabularyError(f'cannot read vocabulary file {str(path)!r}: {exc}') from exc
    except yaml.YAMLError as exc:
        raise VocabularyError(f'vocabulary file {str(path)!r} is not valid YAML: {exc}') from exc
    return {} if data is None else data


def _reject_unknown(mapping: Mapping, allowed: Sequence[str], where: str) -> None:
    for key in mapping:
        if key not in allowed:
            raise VocabularyError(f'{where}: unknown key {key!r} (allowed: {", ".join(allowed)})')


def _one_slip(typed: str, word: str) -> bool:
    """Whether `typed` is `word` with two neighbouring letters swapped, or one letter left out
    or added."""
    if len(typed) == len(word):
        differ = [k for k, (a, b) in enumerate(zip(typed, word)) if a != b]
        return (len(differ) == 2 and differ[1] == differ[0] + 1
                and typed[differ[0]] == word[differ[1]] and typed[differ[1]] == word[differ[0]])
    short, long = sorted((typed, word), key=len)
    return len(long) == len(short) + 1 and any(long[:k] + long[k + 1:] == short for k in range(len(long)))
