"""The object map's instance verifier: features, beliefs, the map's filter, the vocabulary's block."""
from __future__ import annotations

import numpy as np
import pytest

from geovr_ros.objects import ObjectMap, ObjectMapConfig, ObjectMapError, ObjectObservation, load_vocabulary
from geovr_ros.objects.footprint import BOX_PAD, box_overlaps, pairwise_box_overlap
from geovr_ros.objects.verifier import FEATURES, InstanceVerifier, VerifierError, instance_features
from geovr_ros.objects.vocabulary import VocabularyError, vocabulary_from_dict


def observe(object_map, category, centre, half, stamps, score=0.8):
    """`category` seen in one observation per stamp, a box of half sides `half` (3,) around `centre`."""
    c = np.asarray(centre, float)
    h = np.asarray(half, float)
    for stamp in stamps:
        object_map.add([ObjectObservation(category, score, c, c - h, c + h, 0, c, float(stamp),
                                          np.zeros(0, int), 100)])


def table_with_a_chair_named_on_its_corner(config=ObjectMapConfig(vertical_axis=2)):
    """A table seen in 20 frames, a 'chair' named on its corner in 2, a lamp alone in 6."""
    m = ObjectMap(config)
    observe(m, 'table', (0.0, 0.0, 0.4), (0.6, 0.4, 0.4), range(20))
    observe(m, 'chair', (0.4, 0.25, 0.6), (0.15, 0.1, 0.15), (3, 4), score=0.5)
    observe(m, 'lamp', (3.0, 0.0, 0.8), (0.15, 0.15, 0.8), range(6))
    return m


# weights that doubt an instance inside a better-seen instance of another category
DOUBT_THE_WEAKER = tuple(-3.0 if name == 'log_stronger_other' else 1.0 if name == 'log_views' else 0.0
                         for name in FEATURES)


def test_features_see_the_weak_name_inside_a_stronger_instance_of_another_category():
    instances = table_with_a_chair_named_on_its_corner().instances()
    by_name = {i.category: row for i, row in zip(instances, instance_features(instances, vertical_axis=2))}
    f = dict(zip(FEATURES, by_name['chair']))
    assert f['overlap_other'] == pytest.approx(1.0)          # inside the table's box
    assert f['log_stronger_other'] > np.log1p(10)             # the table has > 10x its evidence
    table = dict(zip(FEATURES, by_name['table']))
    assert table['overlap_other'] == pytest.approx(1.0) and table['log_stronger_other'] < np.log1p(0.1)
    lamp = dict(zip(FEATURES, by_name['lamp']))
    assert lamp['overlap_other'] == 0 and lamp['log_stronger_other'] == 0
    assert lamp['log_height'] == pytest.approx(np.log(1.6 + 0.02), abs=0.05)   # along z, the vertical axis
    assert table['log_longest'] == pytest.approx(np.log(1.2 + 0.02), abs=0.05)
    assert instance_features([], 2).shape == (0, len(FEATURES))


def test_the_map_sets_beliefs_and_leaves_out_what_the_verifier_doubts():
    verifier = InstanceVerifier(DOUBT_THE_WEAKER, 0.0, threshold=0.5, keep_best=False)
    m = table_with_a_chair_named_on_its_corner(ObjectMapConfig(vertical_axis=2, verifier=verifier))
    kept = m.instances()
    assert sorted(i.category for i in kept) == ['lamp', 'table']
    assert all(0.5 <= i.belief < 1 for i in kept)
    assert m.instances(category='chair') == []
    everything = m.instances(doubted=True)
    assert sorted(i.category for i in everything) == ['chair', 'lamp', 'table']
    assert [i.belief for i in everything if i.category != 'chair'] == [i.belief for i in kept]
    unverified = table_with_a_chair_named_on_its_corner().instances()
    assert sorted(i.category for i in unverified) == ['chair', 'lamp', 'table']
    assert all(i.belief is None for i in unverified)


class CountingVerifier(InstanceVerifier):
    """The real verifier, counting how often it judges the map."""
    calls = 0

    def beliefs(self, instances, vertical_axis=None):
        CountingVerifier.calls += 1
        return super().beliefs(instances, vertical_axis)


def test_beliefs_are_judged_once_per_change_of_the_map():
    CountingVerifier.calls = 0
    verifier = CountingVerifier(DOUBT_THE_WEAKER, 0.0, threshold=0.5, keep_best=False)
    m = table_with_a_chair_named_on_its_corner(ObjectMapConfig(vertical_axis=2, verifier=verifier))
    first = {i.category: i.belief for i in m.instances(doubted=True)}
    assert m.instances() == m.instances() and CountingVerifier.calls == 1   # diagnostics, markers, answers
    assert {i.category: i.belief for i in m.instances(doubted=True)} == first and CountingVerifier.calls == 1
    m.instances(min_views=3)                        # other instances: judged apart
    assert CountingVerifier.calls == 2
    observe(m, 'chair', (0.4, 0.25, 0.6), (0.15, 0.1, 0.15), range(5, 30), score=0.9)   # seen at last
    assert CountingVerifier.calls == 2
    now = {i.category: i.belief for i in m.instances(doubted=True)}
    assert CountingVerifier.calls == 3 and now['chair'] > first['chair']
    assert 'chair' in {i.category for i in m.instances()}
    depth, K = np.full((192, 256), 10.0), np.array([[200.0, 0, 128], [0, 200.0, 96], [0, 0, 1]])
    T_map_cam = np.eye(4)
    T_map_cam[:3, 3] = (3.0, 0.0, 0.0)                  # 0.8 m in front of the lamp, which it misses
    assert m.note_missed([], depth, K, T_map_cam, stamp=100.0) == 1
    m.instances()
    assert CountingVerifier.calls == 4
    m.relocate({0: np.eye(4)})
    m.instances()
    assert CountingVerifier.calls == 5
    m.config = ObjectMapConfig(vertical_axis=2, verifier=verifier, min_views=1)
    m.instances()
    assert CountingVerifier.calls == 6
    assert all(isinstance(i.belief, float) for i in m.instances(doubted=True))


def test_keep_best_prunes_a_categorys_weaker_instances_never_its_only_evidence():
    verifier = InstanceVerifier(DOUBT_THE_WEAKER, 0.0, threshold=0.5)   # keep_best: the default
    m = table_with_a_chair_named_on_its_corner(ObjectMapConfig(vertical_axis=2, verifier=verifier))
    (chair,) = m.instances(category='chair')          # doubted, but the only chair: kept
    assert chair.belief < 0.5
    observe(m, 'chair', (-2.0, 0.0, 0.45), (0.25, 0.25, 0.45), range(30, 45))   # a chair seen well, alone
    chairs = m.instances(category='chair')
    assert len(chairs) == 1 and chairs[0].belief >= 0.5 and chairs[0].centroid[0] == pytest.approx(-2.0)
    assert len(m.instances(min_views=1)) == 3   # table, lamp, the good chair


def test_answers_say_when_they_rest_on_a_doubted_instance():
    from geovr_ros.objects import answer_from_objects
    verifier = InstanceVerifier(DOUBT_THE_WEAKER, 0.0, threshold=0.5)
    m = table_with_a_chair_named_on_its_corner(ObjectMapConfig(vertical_axis=2, verifier=verifier))
    vocabulary = load_vocabulary()
    (chair,) = m.instances(category='chair')
    assert chair.doubted and not any(i.doubted for i in m.instances(category='table'))
    where = answer_from_objects('Where is the chair?', m.instances(), vocabulary)
    assert where.success and where.answer.endswith(f'uncertain: the map believes this chair only {chair.belief:.2f}')
    count = answer_from_objects('How many chairs are there?', m.instances(), vocabulary)
    assert count.value == 1 and 'uncertain' in count.answer
    assert 'uncertain' not in answer_from_objects('Where is the table?', m.instances(), vocabulary).answer


def test_a_saved_map_keeps_its_verifier_and_maps_saved_before_it_load_without(tmp_path):
    verifier = InstanceVerifier(DOUBT_THE_WEAKER, 0.0, threshold=0.5, keep_best=False, fitted_on='a test')
    m = table_with_a_chair_named_on_its_corner(ObjectMapConfig(vertical_axis=2, verifier=verifier))
    arrays, meta = m.to_arrays()
    loaded = ObjectMap.from_arrays(arrays, meta)
    assert loaded.config.verifier == verifier
    assert [i.category for i in loaded.instances()] == [i.category for i in m.instances()]
    del meta['config']['verifier']
    assert ObjectMap.from_arrays(arrays, meta).config.verifier is None
    meta['config']['verifier'] = {'threshold': 0.3, 'weights': {'log_views': 'many'}}
    with pytest.raises(ObjectMapError, match='exactly the features'):
        ObjectMap.from_arrays(arrays, meta)


def box_overlap(min_a, max_a, min_b, max_b) -> float:
    """The definition, one pair of boxes at a time: intersection / the smaller volume, sides padded."""
    inter = vol_a = vol_b = 1.0
    for lo_a, hi_a, lo_b, hi_b in zip(min_a - BOX_PAD, max_a + BOX_PAD, min_b - BOX_PAD, max_b + BOX_PAD):
        inter *= max(0.0, min(hi_a, hi_b) - max(lo_a, lo_b))
        vol_a *= hi_a - lo_a
        vol_b *= hi_b - lo_b
    return inter / min(vol_a, vol_b)


def test_the_pairwise_overlap_is_the_maps_box_overlap_for_every_pair():
    rng = np.random.default_rng(3)
    low = rng.uniform(-1, 1, (6, 3))
    high = low + rng.uniform(0, 1, (6, 3)) * [1, 1, 0]     # flat boxes too: the padding gives them volume
    pairwise = pairwise_box_overlap(low, high)
    assert pairwise == pytest.approx(np.array([[box_overlap(low[a], high[a], low[b], high[b]) for b in range(6)]
                                               for a in range(6)]))
    for b in range(6):   # one box against many, as the map associates an observation
        assert box_overlaps(low, high, low[b], high[b]) == pytest.approx(pairwise[:, b])


@pytest.mark.parametrize('change, message', [
    ({'threshold': 1.5}, 'threshold must be in'),
    ({'weights': {'log_views': 1.0}}, 'exactly the features'),
    ({'colour': 1}, "unknown key"),
    ({'bias': 'high'}, 'could not convert'),
    ({'keep_best': 'yes'}, 'keep_best must be true or false'),
])
def test_a_bad_verifier_is_refused_naming_what(change, message):
    good = InstanceVerifier(DOUBT_THE_WEAKER, 0.5).to_dict()
    assert InstanceVerifier.from_dict(good) == InstanceVerifier(DOUBT_THE_WEAKER, 0.5)
    with pytest.raises(VerifierError, match=message):
        InstanceVerifier.from_dict({**good, **change})
    with pytest.raises(VerifierError, match='finite'):
        InstanceVerifier((np.nan,) * len(FEATURES), 0.0)


def test_the_shipped_vocabulary_carries_a_verifier_and_a_user_file_may_switch_it_off(tmp_path):
    shipped = load_vocabulary()
    assert shipped.verifier is not None and 0 < shipped.verifier.threshold < 1
    assert 'geovr-eval verifier' in shipped.verifier.fitted_on
    assert shipped.with_categories(['a new thing']).verifier == shipped.verifier
    off = tmp_path / 'off.yaml'
    off.write_text('verifier: null\n')
    assert load_vocabulary(off).verifier is None
    data = shipped.to_dict()
    assert vocabulary_from_dict(data).verifier == shipped.verifier
    data['verifier']['threshold'] = -1
    with pytest.raises(VocabularyError, match='threshold'):
        vocabulary_from_dict(data, 'mine.yaml')
