"""Two cell namers combined (`geovr_ros.objects.namers`): a trained category head's names
mapped into the vocabulary (synonyms, added categories) and the documented rules, on
constructed logits (no ROS, no model)."""
from __future__ import annotations

import numpy as np
import pytest

from geovr_ros.geometry import ShapeError
from geovr_ros.objects import ObjectMapper, VocabularyError, load_vocabulary
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
