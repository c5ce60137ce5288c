"""Two cell namers combined (`geovr_ros.objects.namers`): a trained category head's names
mapped into the vocabulary (synonyms, added categories) and the documented rules, on
constructed logits (no ROS, no model)."""
from __future__ import annotations

import numpy as np
import pytest

from geovr_ros.geometry import ShapeError
from geovr_ros.objects import ObjectMapper, VocabularyError, load_vocabulary
from geovr_ros.objects.vocabulary import vocabulary_from_dict
from geovr_ros.objects.namers import CellNamer, softmax

HEAD = ['table', 'chair', 'tv', 'stool', 'toy duck']  # rendered names: tv is the vocabulary's monitor
FOLDING_CHAIR, DESK, TOASTER = 559, 526, 859


@pytest.fixture(scope='module')
def shipped():
    return load_vocabulary()


def head_logits(rows: list[dict[str, float]]) -> np.ndarray:
    """(len(rows), 6) logits: 0 everywhere, `{name: value}` per row ('background' included)."""
    logits = np.zeros((len(rows), len(HEAD) + 1))
    for r, row in enumerate(rows):
        for name, value in row.items():
            logits[r, len(HEAD) if name == 'background' else HEAD.index(name)] = value
    return logits


def test_head_names_map_to_vocabulary_categories_and_missing_ones_are_added(shipped):
    namer = CellNamer(shipped, HEAD)
    vocab = namer.vocabulary
    assert [vocab.names[c] for c in namer.head_columns] == ['table', 'chair', 'monitor', 'stool', 'toy duck']
    assert vocab.names[:len(shipped)] == shipped.names               # the shipped columns stay in place
    assert vocab.names[len(shipped):] == ('stool', 'toy duck')
    assert vocab.resolve('Toy Ducks') == 'toy duck' and vocab.find('how many stools?') == [(9, 'stool')]
    assert CellNamer(shipped).vocabulary is shipped                   # no head: the vocabulary itself
    assert shipped.with_categories(['tv', 'chairs']) is shipped       # every name resolves
    with pytest.raises(VocabularyError, match='more than once'):
        CellNamer(shipped, ['tv', 'monitor'])
    with pytest.raises(VocabularyError, match='distinct'):
        CellNamer(shipped, ['chair', 'chair'])
    with pytest.raises(ValueError, match='rule'):
        CellNamer(shipped, HEAD, rule='mean')


def test_head_probabilities_land_in_vocabulary_columns(shipped):
    namer = CellNamer(shipped, HEAD)
    logits = head_logits([{'tv': 8.0}, {'background': 8.0}])
    p = namer.head_probabilities(logits)
    assert p.shape == (2, len(namer.vocabulary) + 1)
    expected = softmax(logits)
    np.testing.assert_allclose(p[:, namer.head_columns], expected[:, :-1])
    np.testing.assert_allclose(p[:, -1], expected[:, -1])
    np.testing.assert_allclose(p.sum(-1), 1.0)
    assert namer.vocabulary.label_cells(p)[0].tolist() == [namer.vocabulary.index('monitor'),
                                                           namer.vocabulary.background]
    with pytest.raises(ShapeError, match='6 columns'):
        namer.head_probabilities(np.zeros((2, 5)))
    with pytest.raises(VocabularyError, match='NaN'):
        namer.head_probabilities(np.full((1, 6), np.nan))


def test_the_max_rule_takes_the_more_confident_namer_per_category(shipped):
    namer = CellNamer(shipped, HEAD, rule='max')
    vocab = namer.vocabulary
    imagenet = np.zeros((4, 1000))
    imagenet[0, TOASTER] = 20.0        # cell 0: ImageNet sure of a toaster, the head sees background
    imagenet[1, FOLDING_CHAIR] = 20.0  # cell 1: both see a chair
    imagenet[3, DESK] = 4.0            # cell 3: ImageNet unsure of a table (desk), the head sure of a stool
    category = head_logits([{'background': 9.0}, {'chair': 9.0}, {'background': 9.0}, {'stool': 9.0}])
    p = namer.probabilities(imagenet, category)
    p_img, p_head = vocab.probabilities(imagenet), namer.head_probabilities(category)
    np.testing.assert_allclose(p[:, :-1], np.maximum(p_img[:, :-1], p_head[:, :-1]))
    np.testing.assert_allclose(p[:, -1], np.minimum(p_img[:, -1], p_head[:, -1]))
    labels, _ = vocab.label_cells(p)
    assert [vocab.names[k] if k < len(vocab) else 'background' for k in labels] == \
        ['toaster', 'chair', 'background', 'stool']
    np.testing.assert_allclose(namer.probabilities(imagenet), p_img)          # one namer: its own
    np.testing.assert_allclose(namer.probabilities(category_logits=category), p_head)
    with pytest.raises(ShapeError, match='disagree'):
        namer.probabilities(imagenet[:3], category)
    with pytest.raises(ValueError, match='give'):
        namer.probabilities()


def test_the_head_rule_trusts_the_head_for_its_categories(shipped, tmp_path):
    namer = CellNamer(shipped, HEAD)                                  # the shipped vocabulary's rule
    assert shipped.combine == 'head' and namer.rule == 'head'
    user = tmp_path / 'max.yaml'
    user.write_text('combine: max\n')                                 # a user's YAML may choose the other
    assert CellNamer(load_vocabulary(user), HEAD).rule == 'max'
    assert load_vocabulary(user).with_categories(['stool']).combine == 'max'
    user.write_text('combine: mean\n')
    with pytest.raises(VocabularyError, match='combine must be one of'):
        load_vocabulary(user)
    namer = CellNamer(vocabulary_from_dict({**shipped.to_dict(), 'imagenet_sure': 1.0}), HEAD)  # never overridden
    vocab = namer.vocabulary
    imagenet = np.zeros((3, 1000))
    imagenet[0, TOASTER] = 20.0        # the head's background is shared out: still a toaster
    imagenet[1, FOLDING_CHAIR] = 20.0  # a chair ImageNet sees where the head sees background: not kept
    imagenet[2, TOASTER] = 20.0        # the head's table wins where it is sure
    category = head_logits([{'background': 9.0}, {'background': 9.0}, {'table': 9.0}])
    p = namer.probabilities(imagenet, category)
    np.testing.assert_allclose(p.sum(-1), 1.0)
    p_head = namer.head_probabilities(category)
    np.testing.assert_allclose(p[:, namer.head_columns], p_head[:, namer.head_columns])
    toaster = vocab.index('toaster')
    np.testing.assert_allclose(p[:, toaster], vocab.probabilities(imagenet)[:, toaster] * p_head[:, -1])
    labels, _ = vocab.label_cells(p)
    assert [vocab.names[k] if k < len(vocab) else 'background' for k in labels] == \
        ['toaster', 'background', 'table']


def test_imagenet_fairly_sure_names_the_cell_over_the_head(shipped, tmp_path):
    namer = CellNamer(shipped, HEAD)
    assert shipped.imagenet_sure == 0.4                                # shipped: ImageNet at 0.4 wins
    vocab = namer.vocabulary
    imagenet = np.zeros((4, 1000))
    imagenet[0, TOASTER] = 20.0        # certain: a toaster where the head sees a table
    imagenet[1, TOASTER] = 7.5         # 0.64: sure enough, a toaster over the head's table
    imagenet[2, TOASTER] = 6.0         # 0.29: not sure, the head's table stays
    imagenet[3, FOLDING_CHAIR] = 20.0  # certain: a chair where the head sees background
    category = head_logits([{'table': 9.0}, {'table': 9.0}, {'table': 9.0}, {'background': 9.0}])
    p = namer.probabilities(imagenet, category)
    assert vocab.probabilities(imagenet)[1, vocab.index('toaster')] == pytest.approx(0.64, abs=0.01)
    assert vocab.probabilities(imagenet)[2, vocab.index('toaster')] == pytest.approx(0.29, abs=0.01)
    labels, _ = vocab.label_cells(p)
    assert [vocab.names[k] for k in labels] == ['toaster', 'toaster', 'table', 'chair']
    np.testing.assert_allclose(p[[0, 1, 3]], vocab.probabilities(imagenet)[[0, 1, 3]])
    user = tmp_path / 'sure.yaml'
    for bad in ('0', '1.5', 'nan'):
        user.write_text(f'imagenet_sure: {bad}\n')
        with pytest.raises(VocabularyError, match='imagenet_sure must be in'):
            load_vocabulary(user)
    user.write_text('imagenet_sure: 1\n')
    assert load_vocabulary(user).with_categories(['stool']).imagenet_sure == 1.0


def test_the_mapper_names_cells_with_both_namers(shipped):
    K = np.array([[100.0, 0.0, 31.5], [0.0, 100.0, 23.5], [0.0, 0.0, 1.0]])  # 64x48 image, 6x8 cells
    depth = np.full((48, 64), 6.0)
    depth[18:30, 18:30] = 2.0
    imagenet = np.zeros((48, 1000))
    category = np.zeros((48, len(HEAD) + 1))
    category[:, -1] = 9.0                                    # background everywhere ...
    for cell in (18, 19, 26, 27):
        category[cell] = head_logits([{'toy duck': 12.0}])[0]   # ... but a toy duck in the middle
    mapper = ObjectMapper(shipped, head_categories=HEAD)
    assert mapper.vocabulary.names[-2:] == ('stool', 'toy duck')
    for t in range(2):
        (o,) = mapper.observe_logits(imagenet, depth, K, np.eye(4), t, float(t), category_logits=category)
        assert o.category == 'toy duck' and o.score > 0.99
    (o,) = mapper.observe_logits(None, depth, K, np.eye(4), 2, 2.0, category_logits=category[None])
    assert o.category == 'toy duck'
    (inst,) = mapper.map.instances()
    assert inst.category == 'toy duck' and inst.n_views == 3
    with pytest.raises(ShapeError, match='needs'):
        mapper.observe_logits(None, depth, K, np.eye(4), 3, 3.0)


def test_the_coarser_namer_is_upsampled_to_the_finer_cells(shipped):
    """A stride-16 head (4x6 cells) with stride-32 ImageNet logits (2x3 cells): each ImageNet
    cell's probabilities are those of the 2x2 head cells it covers (nearest), either way round."""
    from geovr_ros.objects.namers import upsample_cells
    rng = np.random.default_rng(0)
    imagenet = rng.normal(0.0, 3.0, (2, 3, 1000))
    imagenet[0, 1, TOASTER] = 30.0                                   # a toaster in one coarse cell
    category = rng.normal(0.0, 1.0, (4, 6, len(HEAD) + 1))
    per_cell = vocabulary_from_dict({**shipped.to_dict(), 'pool_cells': 1})   # no window: cells alone
    namer = CellNamer(per_cell, HEAD, 'head')
    p = namer.probabilities(imagenet, category)
    assert p.shape == (4, 6, len(namer.vocabulary) + 1)
    fine = np.repeat(np.repeat(imagenet, 2, axis=0), 2, axis=1)      # (4, 6, 1000) by hand
    np.testing.assert_allclose(p, namer.probabilities(fine, category))
    toaster = namer.vocabulary.index('toaster')
    assert (np.argmax(namer.vocabulary.probabilities(fine), -1)[0:2, 2:4] == toaster).all()
    np.testing.assert_allclose(upsample_cells(namer.vocabulary.probabilities(imagenet), (4, 6)),
                               namer.vocabulary.probabilities(fine))
    coarse_head = category[::2, ::2]                                  # the other way round
    np.testing.assert_allclose(namer.probabilities(fine, coarse_head),
                               namer.probabilities(fine, np.repeat(np.repeat(coarse_head, 2, 0), 2, 1)))
    np.testing.assert_allclose(CellNamer(per_cell, HEAD, 'max').probabilities(imagenet, category),
                               CellNamer(per_cell, HEAD, 'max').probabilities(fine, category))
    with pytest.raises(ShapeError, match='cannot be upsampled to 4x6'):
        namer.probabilities(imagenet[:, :2], category)               # 2x2 -> 4x6: no one factor
    with pytest.raises(ShapeError, match='as \\(h, w, C\\) grids'):
        namer.probabilities(imagenet.reshape(6, 1000), category.reshape(24, -1))  # flat: grids unknown
    with pytest.raises(ShapeError, match='cannot be upsampled to 3x9'):
        upsample_cells(imagenet, (3, 9))


def test_imagenet_logits_are_pooled_on_their_own_cells_before_joining_the_head(shipped):
    """The shipped vocabulary averages ImageNet logits over 3x3 windows of the stride-32 cells
    (not of the stride-16 cells they are brought to): the combined namer equals the per-cell
    one fed the pooled logits. A toaster seen in one cell only, among cells of nothing, is
    background after pooling; seen in a 2x2 block, it stays a toaster."""
    from geovr_ros.objects.vocabulary import pool_logits
    assert shipped.pool_cells == 3
    per_cell = vocabulary_from_dict({**shipped.to_dict(), 'pool_cells': 1})
    imagenet = np.zeros((3, 4, 1000))
    imagenet[0, 0, TOASTER] = 20.0                                   # one cell
    imagenet[1:3, 2:4, TOASTER] = 20.0                               # a 2x2 block
    category = head_logits([{'background': 9.0}] * 48).reshape(6, 8, -1)
    for rule in ('head', 'max'):
        np.testing.assert_allclose(CellNamer(shipped, HEAD, rule).probabilities(imagenet, category),
                                   CellNamer(per_cell, HEAD, rule).probabilities(pool_logits(imagenet, 3), category))
    namer = CellNamer(shipped, HEAD)
    labels, _ = namer.vocabulary.label_cells(namer.probabilities(imagenet, category))
    toaster = namer.vocabulary.index('toaster')
    assert (labels[0:2, 0:2] == namer.vocabulary.background).all()   # the lone cell: 20 / 4 = 5 -> p 0.13
    assert (labels[2:6, 4:8] == toaster).all()                        # the block: logit >= 20 * 4 / 9 -> p >= 0.88
    per_cell_labels, _ = per_cell.label_cells(per_cell.probabilities(imagenet))
    assert per_cell_labels[0, 0] == per_cell.index('toaster')         # each cell alone: named a toaster


def test_the_mapper_makes_objects_of_a_stride16_heads_cells(shipped):
    """What the session passes: flat ImageNet logits of the 48 stride-32 cells of a 256x192
    frame and flat head logits of its 192 stride-16 cells. The map's object has the size of the
    stride-16 cells that named it (a 32x32-pixel block straddling four stride-32 cells), not
    the 64x64 pixels a stride-32 cell would give."""
    K = np.array([[200.0, 0.0, 127.5], [0.0, 200.0, 95.5], [0.0, 0.0, 1.0]])
    depth = np.full((192, 256), 2.0)
    imagenet = np.zeros((48, 1000))                                  # 6x8 cells: nothing named
    category = np.zeros((12, 16, len(HEAD) + 1))
    category[..., -1] = 9.0
    category[5:7, 7:9] = head_logits([{'chair': 12.0}])[0]           # pixels 80..112 (rows), 112..144
    mapper = ObjectMapper(shipped, head_categories=HEAD)
    (o,) = mapper.observe_logits(imagenet, depth, K, np.eye(4), 0, 0.0, category_logits=category.reshape(192, -1))
    assert o.category == 'chair' and o.score > 0.99
    size = np.asarray(o.box_max) - np.asarray(o.box_min)
    assert 0.25 < size[0] < 0.33 and 0.25 < size[1] < 0.33           # 32 px at 2 m, f 200: 0.32 m (5..95 %)
    np.testing.assert_allclose(o.centroid[:2], [0.0, 0.0], atol=0.02)   # the block is centred on the axis
    assert sorted(o.cells.tolist()) == [5 * 16 + 7, 5 * 16 + 8, 6 * 16 + 7, 6 * 16 + 8]  # stride-16 cells
    with pytest.raises(ShapeError, match='tile'):
        mapper.observe_logits(imagenet, depth, K, np.eye(4), 1, 1.0, category_logits=category.reshape(192, -1)[:100])
