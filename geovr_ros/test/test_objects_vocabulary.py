"""The object vocabulary: the shipped YAML, a user's file merged over it, logits to
category probabilities, and the words questions use (no ROS)."""
from __future__ import annotations

import numpy as np
import pytest

from geovr_ros.objects import Vocabulary, VocabularyError, load_vocabulary
from geovr_ros.objects.vocabulary import Category, pool_logits, shipped_vocabulary_path, vocabulary_from_dict


@pytest.fixture(scope='module')
def shipped():
    return load_vocabulary()


def test_shipped_vocabulary_indices_name_what_the_yaml_says(shipped):
    assert shipped_vocabulary_path().name == 'object_vocabulary.yaml'
    expected = {'chair': {423: 'barber chair', 559: 'folding chair', 765: 'rocking chair'},
                'table': {526: 'desk', 532: 'dining table'}, 'sofa': {831: 'studio couch'},
                'monitor': {527: 'desktop computer', 664: 'monitor', 782: 'screen', 851: 'television'},
                'trash bin': {412: 'ashcan'}, 'plant': {738: 'pot'},
                'cup': {504: 'coffee mug', 968: 'cup'}}
    for name, classes in expected.items():
        assert dict(shipped.category(name).imagenet) == classes
    for category in shipped.categories:
        for index in category.imagenet:
            assert shipped.class_to_category[index] == shipped.index(category.name)


def test_probabilities_are_softmax_mass_per_category(shipped):
    logits = np.zeros((3, 1000))
    logits[1, 559] = 20.0  # folding chair, certain
    logits[2] = np.random.default_rng(0).normal(size=1000) * 4
    p = shipped.probabilities(logits)
    assert p.shape == (3, len(shipped) + 1)
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-12)
    chair = shipped.index('chair')
    n_chair, n_all = len(shipped.category('chair').imagenet), (shipped.class_to_category < len(shipped)).sum()
    np.testing.assert_allclose(p[0, chair], n_chair / 1000)  # uniform logits: class counts
    np.testing.assert_allclose(p[0, -1], 1 - n_all / 1000)
    assert p[1, chair] > 0.99
    z = np.exp(logits[2] - logits[2].max())
    np.testing.assert_allclose(p[2, chair], z[[423, 559, 765]].sum() / z.sum())


def test_temperature_flattens_and_labels_follow_the_threshold():
    vocab = Vocabulary([Category('chair', {559: 'folding chair'}), Category('table', {532: 'dining table'})],
                       temperature=2.0, min_score=0.4)
    logits = np.zeros((2, 1000))
    logits[:, 559] = 20.0
    logits[1, 532] = 20.4
    p = vocab.probabilities(logits)
    e = np.exp(10.0)
    np.testing.assert_allclose(p[0, 0], e / (e + 999))  # the logits divided by 2
    labels, scores = vocab.label_cells(p)
    assert labels.tolist() == [0, 1]
    assert 0.4 < p[1, 1] < 0.6 and 0.4 < p[1, 0] < 0.6
    labels, scores = vocab.label_cells(p, min_score=0.6)
    assert labels.tolist() == [0, vocab.background]  # a near 50/50 split: neither reaches 0.6
    np.testing.assert_allclose(scores[1], p[1, -1])


def test_bad_logits_raise_naming_the_shape(shipped):
    with pytest.raises(VocabularyError, match=r'\(5, 999\)'):
        shipped.probabilities(np.zeros((5, 999)))
    with pytest.raises(VocabularyError, match='NaN'):
        shipped.probabilities(np.full((1, 1000), np.nan))


def test_pooled_logits_are_window_means_inside_the_grid():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 4, 5, 6))                    # (batch, h, w, C)
    for size in (3, 5):
        r = size // 2
        expected = np.array([[[logits[b, max(0, i - r):i + r + 1, max(0, j - r):j + r + 1].mean((0, 1))
                               for j in range(5)] for i in range(4)] for b in range(2)])
        np.testing.assert_allclose(pool_logits(logits, size), expected, atol=1e-12)
    np.testing.assert_allclose(pool_logits(logits, 3)[0, 0, 0], logits[0, :2, :2].mean((0, 1)))  # a corner: 4 cells
    np.testing.assert_array_equal(pool_logits(logits, 1), logits)
    for bad in (0, 2, 17, True, 3.0):
        with pytest.raises(VocabularyError, match=f'pool_cells must be an odd integer in \\[1, 15\\], got {bad!r}'):
            pool_logits(logits, bad)
    with pytest.raises(ValueError, match=r'\(5, 6\)'):
        pool_logits(np.zeros((5, 6)), 3)


def test_pooled_logits_are_the_classifier_on_the_pooled_features():
    """The cell classifier is one linear layer on each cell's features (the ImageNet
    classifier applies it to their image mean): a window's mean logits are its logits of the
    window's mean features, which `grid_probabilities` names."""
    rng = np.random.default_rng(2)
    weight, bias = rng.normal(size=(1000, 8)), rng.normal(size=1000)
    features = rng.normal(size=(3, 4, 8))
    vocab = Vocabulary([Category('chair', {559: 'folding chair'})], pool_cells=3)
    pooled = vocab.grid_probabilities(features @ weight.T + bias)
    centre = features[0:3, 0:3].mean((0, 1)) @ weight.T + bias   # the window of cell (1, 1)
    np.testing.assert_allclose(pooled[1, 1], vocab.probabilities(centre))
    with pytest.raises(VocabularyError, match=r'\(12, 1000\)'):
        vocab.grid_probabilities(np.zeros((12, 1000)))        # flat cells: no grid to pool over


def test_pool_cells_comes_from_the_yaml(tmp_path, shipped):
    assert shipped.pool_cells == 3 and shipped.to_dict()['pool_cells'] == 3
    assert shipped.with_categories(['stool']).pool_cells == 3
    vocab = load_vocabulary(_write(tmp_path, 'pool_cells: 1\n'))
    assert vocab.pool_cells == 1
    logits = np.random.default_rng(3).normal(size=(2, 3, 1000)) * 3
    np.testing.assert_allclose(vocab.grid_probabilities(logits), vocab.probabilities(logits))
    assert Vocabulary.from_names(['chair']).pool_cells == 1   # no ImageNet classes: nothing to pool
    for text in ('pool_cells: 4\n', 'pool_cells: 3.0\n', 'pool_cells: 21\n'):
        with pytest.raises(VocabularyError, match='user.yaml.*pool_cells must be an odd integer'):
            load_vocabulary(_write(tmp_path, text))


def test_windows_come_from_the_yaml(tmp_path, shipped):
    assert shipped.windows == () and shipped.window_pixels == 128     # cells by default
    windows = load_vocabulary(_write(tmp_path, 'windows: [0.4, 0.7]\n'))
    assert windows.windows == (0.4, 0.7) and windows.window_pixels == 128
    assert windows.with_categories(['stool']).windows == (0.4, 0.7)
    assert windows.to_dict()['windows'] == [0.4, 0.7]
    assert load_vocabulary(_write(tmp_path, 'windows: [0.5]\nwindow_pixels: 160\n')).window_pixels == 160
    assert Vocabulary.from_names(['chair']).windows == ()
    for text, message in (('windows: [0.5, 1.5]\n', 'windows must be distinct fractions'),
                          ('windows: [0.5, 0.5]\n', 'windows must be distinct fractions'),
                          ('windows: 0.5\n', 'windows must be a list'),
                          ('window_pixels: 8\n', r'window_pixels must be an integer in \[32, 512\], got 8')):
        with pytest.raises(VocabularyError, match='user.yaml.*' + message):
            load_vocabulary(_write(tmp_path, text))


def test_find_prefers_longer_words_and_knows_plurals(shipped):
    found = shipped.find('Is the table lamp nearer the tables, the mice or the trash cans? And the TV?')
    assert [name for _, name in found] == ['lamp', 'table', 'mouse', 'trash bin', 'monitor']


def _write(tmp_path, text, name='user.yaml'):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize('typed, word', [('chiar', 'chair'), ('chiars', 'chairs'), ('tabel', 'table'),
                                         ('lmap', 'lamp'), ('sofaa', 'sofa'), ('monitr', 'monitor'),
                                         ('walls', None), ('house', None), ('chair', None), ('tbl', None)])
def test_a_slip_of_the_keyboard_is_one_swap_one_letter_left_out_or_one_too_many(shipped, typed, word):
    assert shipped.slip_of(typed) == word


def test_user_file_merges_over_the_shipped_one(tmp_path, shipped):
    user = _write(tmp_path, """
min_score: 0.5
remove: [bathtub]
categories:
  piano:
    imagenet: {579: grand piano, 881: upright}
  chair:
    synonyms: [stool]
""")
    vocab = load_vocabulary(user)
    assert vocab.min_score == 0.5 and vocab.temperature == shipped.temperature
    assert 'bathtub' not in vocab.names and 'piano' in vocab.names
    assert dict(vocab.category('piano').imagenet) == {579: 'grand piano', 881: 'upright'}
    assert dict(vocab.category('chair').imagenet) == dict(shipped.category('chair').imagenet)  # kept
    assert vocab.category('chair').synonyms == ('stool',)  # replaced
    assert [n for _, n in vocab.find('how many pianos and stools?')] == ['piano', 'chair']


@pytest.mark.parametrize('text, message', [
    ('colour: red\n', r"user.yaml: unknown key 'colour'"),
    ('categories:\n  chair:\n    imagnet: {559: folding chair}\n', r"categories.chair: unknown key 'imagnet'"),
    ('categories:\n  piano:\n    imagenet: {1000: grand piano}\n', r"class index 1000 is not an integer in \[0, 999\]"),
    ('categories:\n  piano:\n    imagenet: {579: ""}\n', r"class 579 needs its ImageNet name"),
    ('categories:\n  seat:\n    imagenet: {559: folding chair}\n',
     r"559 is in both 'chair' and 'seat'"),
    ('categories:\n  piano:\n    imagenet: {1000: x}\n', r'class index 1000'),
    ('categories:\n  piano:\n    synonyms: [couch]\n', r"'couch' names both 'sofa' and 'piano'"),
    ('remove: [spaceship]\n', r"remove names 'spaceship'"),
    ('min_score: 1.5\n', r'min_score must be in \(0, 1\]'),
    ('head_synonyms: [duck]\n', r'user.yaml.*head_synonyms must map a category name to a list of words'),
    ('on_floor: lamp\n', r'user.yaml.*on_floor must be a list of category names'),
    ('on_floor: [chair, 3]\n', r'on_floor must be a list of category names'),
    ('size_quantiles: 0.25\n', r'user.yaml.*size_quantiles must be \[low, high\]'),
    ('size_quantiles: [0.8, 0.2]\n', r'size_quantiles must be \[low, high\] with 0 <= low <= high <= 1'),
    ('size_quantiles: [0.1, 0.5, 0.9]\n', r'size_quantiles must be \[low, high\]'),
])
def test_bad_user_files_are_rejected_with_the_offending_key(tmp_path, text, message):
    with pytest.raises(VocabularyError, match=message):
        load_vocabulary(_write(tmp_path, text))


def test_the_words_of_the_categories_a_trained_head_adds(shipped, tmp_path):
    assert shipped.resolve('duck') is None
    extended = shipped.with_categories(['tv', 'stool', 'toy duck'])
    assert extended.names[-2:] == ('stool', 'toy duck') and extended.resolve('tv') == 'monitor'   # named already
    assert extended.resolve('rubber ducks') == 'toy duck' and extended.resolve('footstool') == 'stool'
    own = load_vocabulary(_write(tmp_path, 'head_synonyms:\n  toy duck: [quacker]\n'))
    assert own.with_categories(['toy duck']).resolve('quacker') == 'toy duck'
    assert own.with_categories(['toy duck']).resolve('duck') is None


def test_the_categories_that_stand_on_the_floor(shipped, tmp_path):
    assert {'chair', 'table', 'sofa', 'lamp', 'stool'} <= set(shipped.on_floor)
    assert not {'monitor', 'cup', 'toy duck', 'ball'} & set(shipped.on_floor)   # found on anything
    own = load_vocabulary(_write(tmp_path, 'on_floor: [Chair, table]\n'))   # a user's list replaces the shipped
    assert own.on_floor == ('chair', 'table') and own.with_categories(['stool']).on_floor == ('chair', 'table')
    assert load_vocabulary(_write(tmp_path, 'on_floor: []\n')).on_floor == ()   # none stands: boxes as seen
    assert vocabulary_from_dict(shipped.to_dict()).on_floor == shipped.on_floor


def test_the_size_quantiles_the_shipped_vocabulary_sets_for_its_models_depth(shipped, tmp_path):
    from geovr_ros.objects import ObjectMapConfig, map_config_of
    assert shipped.size_quantiles == (0.25, 0.75)
    assert map_config_of(shipped).size_quantiles == (0.25, 0.75)
    assert map_config_of(shipped, size_quantiles=(0.0, 1.0)).size_quantiles == (0.0, 1.0)   # a setting wins
    own = load_vocabulary(_write(tmp_path, 'size_quantiles: [0.1, 0.9]\n'))   # e.g. a depth sensor's
    assert map_config_of(own.with_categories(['stool'])).size_quantiles == (0.1, 0.9)
    unset = load_vocabulary(_write(tmp_path, 'size_quantiles: null\n'))   # the association's box
    assert unset.size_quantiles is None and map_config_of(unset).size_quantiles is None
    assert ObjectMapConfig().size_quantiles is None and ObjectMapConfig().box_quantiles == (0.1, 0.9)
    assert vocabulary_from_dict(shipped.to_dict()).size_quantiles == (0.25, 0.75)


def test_unreadable_files_are_named(tmp_path):
    with pytest.raises(VocabularyError, match='missing.yaml'):
        load_vocabulary(tmp_path / 'missing.yaml')
    with pytest.raises(VocabularyError, match='not valid YAML'):
        load_vocabulary(_write(tmp_path, 'categories: [unclosed\n'))


def test_a_plain_s_plural_names_the_category_unless_another_claims_the_word():
    vocab = Vocabulary.from_names(['box', 'bus', 'buss'])
    assert vocab.resolve('boxs') == 'box' and vocab.resolve('boxes') == 'box'
    assert vocab.resolve('buss') == 'buss'  # its own name, not 'bus' + 's'
