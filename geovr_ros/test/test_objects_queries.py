"""Answers from the object map on a constructed map: every number recomputed by hand (no ROS)."""
from __future__ import annotations

import numpy as np
import pytest

from geovr_ros.geometry import make_pose
from geovr_ros.memory import ChainedAnswerer, GeometricAnswerer, NO_MODEL_MESSAGE, SpatialMemory
from geovr_ros.objects import (ObjectAnswerer, ObjectInstance, ObjectMap, ObjectObservation, answer_from_objects,
                               load_vocabulary, parse_object_question)
from geovr_ros.objects.queries import box_distance


def inst(iid, category, centre, size, first_seen=0.0, confidence=0.8):
    c, h = np.asarray(centre, float), np.asarray(size, float) / 2
    return ObjectInstance(iid, category, confidence, c, c - h, c + h, 3, first_seen, first_seen + 5.0, (0,))


@pytest.fixture(scope='module')
def vocab():
    return load_vocabulary()


# a room in `map` (z up): two chairs, a table between them, a sofa seen first
ROOM = [inst(1, 'sofa', (0.0, 3.0, 0.4), (2.0, 0.9, 0.8), first_seen=1.0),
        inst(2, 'chair', (1.0, 0.0, 0.45), (0.5, 0.5, 0.9), first_seen=4.0, confidence=0.9),
        inst(3, 'chair', (-1.0, 0.0, 0.45), (0.5, 0.5, 0.9), first_seen=6.0, confidence=0.6),
        inst(4, 'table', (0.0, 0.0, 0.375), (1.2, 0.8, 0.75), first_seen=2.0)]
# the camera at (0, -3, 1.2), looking along +y (optical z) with optical y pointing down (-z)
CAMERA = make_pose(np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]]), [0.0, -3.0, 1.2])


def ask(question, vocab, camera=CAMERA, instances=ROOM):
    return answer_from_objects(question, instances, vocab, camera, 'map')


def test_count(vocab):
    a = ask('How many chairs are in this room?', vocab)
    assert a.success and a.category == 'object_count' and a.value == 2.0 and a.unit == 'count'
    assert a.frame == 'map' and 'chairs' in a.answer and 'map' in a.answer
    np.testing.assert_allclose(a.points, [[1.0, 0.0, 0.45], [-1.0, 0.0, 0.45]])
    np.testing.assert_allclose(a.confidence, 0.75)
    assert ask('count the couches', vocab).value == 1.0  # a synonym


def test_instances_under_half_the_best_confidence_are_not_counted_nor_first(vocab):
    """A 'chair' named in a few cells of a few views (confidence 0.3, under half of the best
    chair's 0.9) beside two chairs seen well is more often a misnaming: not counted, said so,
    and its early stamp does not make the chair come first."""
    ghost = inst(5, 'chair', (2.5, 2.0, 0.3), (0.3, 0.3, 0.6), first_seen=0.5, confidence=0.3)
    a = ask('How many chairs are in this room?', vocab, instances=ROOM + [ghost])
    assert a.value == 2.0 and len(a.points) == 2
    assert a.answer.endswith('; 1 less certain one (under half the best confidence) not counted')
    a = ask('Which did you see first, the chair or the sofa?', vocab, instances=ROOM + [ghost])
    assert a.answer.endswith('first seen: the sofa (t=1.00 s), then the chair (t=4.00 s)')
    half = inst(5, 'chair', (2.5, 2.0, 0.3), (0.3, 0.3, 0.6), first_seen=0.5, confidence=0.45)  # exactly half
    assert ask('How many chairs are in this room?', vocab, instances=ROOM + [half]).value == 3.0


def test_answers_name_the_instances_their_points_are(vocab):
    """object_ids: per point the instance whose centroid it is, so a program can find it in
    ~/detections; -1 for a point of no object (the camera), () for an answer without objects."""
    assert ask('How many chairs are in this room?', vocab).object_ids == (2, 3)
    assert ask('How far is the sofa from the table?', vocab).object_ids == (1, 4)
    assert ask('Where is the table?', vocab).object_ids == (4,)
    assert ask('How many beds are there?', vocab).object_ids == ()
    moved = [inst(7, 'sofa', (0.0, 3.0, 0.4), (2.0, 0.9, 0.8))]   # another id at the same place
    assert ask('Where is the sofa?', vocab, instances=moved).object_ids == (7,)


def test_distance_centre_to_centre_and_closest_points(vocab):
    a = ask('How far is the sofa from the table?', vocab)
    assert a.success and a.category == 'abs_distance' and a.unit == 'm'
    np.testing.assert_allclose(a.value, np.hypot(3.0, 0.025))
    assert 'centre to centre' in a.answer and '2.15 m between the closest points' in a.answer
    np.testing.assert_allclose(a.points, [[0.0, 3.0, 0.4], [0.0, 0.0, 0.375]])
    a = ask('What is the gap between the closest points of the sofa and the table?', vocab)
    np.testing.assert_allclose(a.value, 3.0 - 0.45 - 0.4)  # y: sofa from 2.55, table to 0.4
    # two instances of chair: the most confident pair (chair 2, 0.9, with the table, 0.8)
    a = ask('How far is the table from the chair?', vocab)
    np.testing.assert_allclose(a.value, np.hypot(1.0, 0.075))
    np.testing.assert_allclose(a.points, [[0.0, 0.0, 0.375], [1.0, 0.0, 0.45]])
    assert 'most confident pair of 2' in a.answer and 'the table and the chair' in a.answer
    even = [ROOM[0], ROOM[1], ROOM[3], inst(3, 'chair', (-0.8, 0.0, 0.45), (0.5, 0.5, 0.9), confidence=0.9)]
    a = ask('How far is the table from the chair?', vocab, instances=even)  # equally sure: the closer pair
    np.testing.assert_allclose(a.points[1], [-0.8, 0.0, 0.45])
    # a table less sure than either chair (0.5): the chair is still the one where-is names, the
    # most confident (0.9, 1 m away), not the nearer one (0.6) that ties with it on the table's
    unsure = [ROOM[1], inst(3, 'chair', (-0.3, 0.0, 0.45), (0.5, 0.5, 0.9), confidence=0.6),
              inst(4, 'table', (0.0, 0.0, 0.375), (1.2, 0.8, 0.75), confidence=0.5)]
    a = ask('How far is the table from the chair?', vocab, instances=unsure)
    np.testing.assert_allclose(a.points[1], [1.0, 0.0, 0.45])
    assert ask('Where is the chair?', vocab, instances=unsure).object_ids == (2,)
    a = ask('How far apart are the chairs?', vocab)
    np.testing.assert_allclose(a.value, 2.0)
    assert a.answer.startswith('the two chairs')
    a = ask('How far is the sofa from me?', vocab)
    np.testing.assert_allclose(a.value, np.linalg.norm([0.0, 6.0, -0.8]))


def test_size_in_metres_and_centimetres(vocab):
    a = ask('How long is the longest side of the sofa in centimetres?', vocab)
    assert a.success and a.category == 'object_size' and a.unit == 'cm'
    np.testing.assert_allclose(a.value, 200.0)
    a = ask('How big is the table?', vocab)
    assert a.unit == 'm'
    np.testing.assert_allclose(a.value, 1.2)
    a = ask('What is the size of the chair?', vocab)  # two chairs: the most confident, id 2
    np.testing.assert_allclose(a.points, [[1.0, 0.0, 0.45]])
    assert 'most confident of 2' in a.answer


def test_where_is_relative_to_the_camera(vocab):
    a = ask('Where is the table?', vocab)
    assert a.success and a.category == 'where_is'
    np.testing.assert_allclose(a.points, [[0.0, 0.0, 0.375]])
    # in the camera: 3 m ahead, 0 m sideways, 0.825 m below
    assert 'x=0.00, y=0.00, z=0.38 m in map' in a.answer
    assert '3.00 m ahead' in a.answer and '0.82 m below' in a.answer and '0.00 m to the right' in a.answer
    a = ask('Where is the chair?', vocab, camera=make_pose(np.eye(3), [-2.0, 0.0, 0.0]))
    np.testing.assert_allclose(a.points, [[1.0, 0.0, 0.45]])  # the most confident, not the nearer
    assert 'the chair (the most confident of 2)' in a.answer and '3.00 m to the right' in a.answer
    a = ask('Where is the chair?', vocab, camera=None)
    np.testing.assert_allclose(a.points, [[1.0, 0.0, 0.45]])
    assert 'from the camera' not in a.answer


def test_first_seen_order(vocab):
    a = ask('Which did you see first: the chair, the table or the bed?', vocab)
    assert a.success and a.category == 'appearance_order'
    assert a.answer == '(B) table; first seen: the table (t=2.00 s), then the chair (t=4.00 s); not seen: the bed'
    assert a.unit == 'option index' and a.value == 1.0
    a = ask('Did you see the chair or the table first?', vocab)
    assert a.answer == 'first seen: the table (t=2.00 s), then the chair (t=4.00 s)' and a.unit == ''
    np.testing.assert_allclose(a.points, [[0.0, 0.0, 0.375], [1.0, 0.0, 0.45]])


def test_first_seen_order_picks_the_option_that_agrees_most():
    """With options the answer is one of them: the table (2 s) before the chairs (4 s); the
    bed, never seen, last. No option is exactly right: (B) agrees on the most pairs."""
    vocab = load_vocabulary()
    a = ask('In which order do these first appear: chair, bed, sofa, table? (A) chair, sofa, bed, table; '
            '(B) sofa, table, bed, chair; (C) bed, chair, table, sofa; (D) table, bed, chair, sofa', vocab)
    assert a.success and a.unit == 'option index' and a.value == 1.0
    assert a.answer.startswith('(B) sofa, table, bed, chair; first seen: the sofa (t=1.00 s), then the table')
    a = ask('Sort by first appearance: table, sofa. Options: (A) table, sofa; (B) sofa, table.', vocab)
    assert a.value == 1.0 and a.answer.startswith('(B) sofa, table;')


@pytest.mark.parametrize('question, task, unit, categories', [
    ('Along its longest edge, how many centimeters does the table measure?', 'object_size', 'cm', ('table',)),
    ('How many metres apart are the sofa and the table?', 'abs_distance', 'm', ('sofa', 'table')),
    ('At which point in the room can the sofa be found?', 'where_is', 'm', ('sofa',)),
    ('What is the number of boxs in the room?', 'object_count', 'm', ('box',)),
    ('How many chairs are there?', 'object_count', 'm', ('chair',)),
])
def test_question_wordings(vocab, question, task, unit, categories):
    q = parse_object_question(question, vocab)
    assert (q.task, q.unit, q.categories) == (task, unit, categories)


@pytest.mark.parametrize('question, value, said', [
    ('Are there more chairs than tables?', 1.0, 'yes: I have seen 2 chairs and 1 table'),
    ('Do you see fewer chairs than tables?', 0.0, 'no: I have seen 2 chairs and 1 table'),
    ('Are there as many sofas as tables?', 1.0, 'yes: I have seen 1 sofa and 1 table'),
    ('How many more chairs than tables are there?', 1.0, '1 more: I have seen 2 chairs and 1 table'),
    ('How many more tables than chairs are there?', -1.0, '1 fewer: I have seen 1 table and 2 chairs'),
])
def test_counts_compared(vocab, question, value, said):
    a = ask(question, vocab)
    assert a.success and a.category == 'object_count' and a.value == value and a.answer.startswith(said)
    assert len(a.points) == (3 if 'chairs' in question else 2)   # every instance counted


def test_a_few_more_wordings(vocab):
    a = ask('Is the chair on the left or right of me?', vocab)   # the most confident chair, at x = +1
    assert a.success and a.category == 'around' and a.answer.startswith('right')
    a = ask('What is nearest to the sofa?', vocab)
    assert a.success and a.answer.startswith('the table') and a.value == pytest.approx(3.0, abs=1e-3)
    assert parse_object_question("What is the room's size?", vocab).task == 'room_size'


@pytest.mark.parametrize('question, value, said', [
    ('Measuring from the closest point of each object, which of these objects (chair, table) is the closest to the '
     'sofa? If there are multiple instances of an object category, measure to the closest.', 1.0, '(B) the table'),
    ('If I am standing by the chair and facing the table, is the sofa to my left, right, or back? An object is to my '
     'back if I would have to turn at least 135 degrees in order to face it.', 1.0, '(B) right'),
    ('If I am standing by the chair and facing the table, is the sofa to the front-left, front-right, back-left, or '
     'back-right of me?', 1.0, '(B) front-right'),
])
def test_vsi_benchs_own_wordings_list_their_options_inline(vocab, question, value, said):
    a = ask(question, vocab)   # from the chair at x = +1 facing the table at 0: the sofa (0, 3) is 72 deg right
    assert a.success and a.unit == 'option index' and a.value == value and a.answer.startswith(said)


def test_the_sides_of_an_object_as_the_camera_sees_it(vocab):
    # the camera at (0, -3) looks along +y: the chair at x = -1 is left of the table, the one at +1 right
    left = ask('What is to the left of the table?', vocab)
    assert left.success and left.value == 1.0 and 'a chair at x=-1.00' in left.answer
    assert 'seen from the camera' in left.answer
    assert ask('What is on the right side of the table?', vocab).answer.count('a chair at x=1.00') == 1
    assert ask('Is the chair to the right of the table?', vocab).value == 1.0
    assert ask('Is the sofa to the left of the table?', vocab).value == 0.0
    behind = ask('What is behind the table?', vocab)   # the sofa is 2.15 m behind: beyond the reach, named
    assert behind.value == 0.0 and 'the nearest behind it: a sofa' in behind.answer
    seen_from_the_other_side = make_pose(np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, -1.0, 0.0]]),
                                         [0.0, 6.0, 1.2])   # beyond the sofa, looking back along -y
    swapped = ask('What is to the left of the table?', vocab, camera=seen_from_the_other_side)
    assert 'a chair at x=1.00' in swapped.answer and 'x=-1.00' not in swapped.answer.split('(seen')[0]
    assert not ask('What is to the left of the table?', vocab, camera=None).success   # no camera, no sides
    assert ask('What is in front of me?', vocab).category == 'around'                  # the camera's own sides


def test_an_object_word_mistyped_by_one_slip_is_read_as_the_word_it_misses(vocab):
    a = ask('How many chiars are there?', vocab)
    assert a.success and a.value == 2.0 and a.answer.endswith("reading 'chiars' as 'chairs'")
    a = ask('How far is the sofaa from the tabel?', vocab)
    assert a.success and a.value == pytest.approx(3.0, abs=1e-3)
    assert "reading 'sofaa' as 'sofa'" in a.answer and "reading 'tabel' as 'table'" in a.answer
    a = ask('How many walls are there?', vocab)      # a letter for another is no slip: not 'balls'
    assert a.value == 0.0 and 'wall is not in my object vocabulary' in a.answer
    assert parse_object_question('Where is the lmap?', vocab).read_as == (('lmap', 'lamp'),)


def test_objects_not_seen_are_said_so(vocab):
    a = ask('Where is the piano?', vocab)
    assert not a.success and a.answer.startswith('I have not seen a piano')
    assert 'not in my object vocabulary' in a.answer
    a = ask('How many refrigerators are there?', vocab)
    assert a.success and a.value == 0.0 and a.answer.startswith('I have not seen any refrigerators')
    a = ask('How far is the lamp from the sofa?', vocab)
    assert not a.success and a.answer == 'I have not seen a lamp' and len(a.points) == 0
    a = ask('Where is the oven?', vocab, instances=[])
    assert a.answer == 'I have not seen a stove' and a.not_seen
    assert not ask('What objects have you seen?', vocab).not_seen


def test_list(vocab):
    a = ask('What objects have you seen?', vocab)
    assert a.answer.startswith('I have seen 2 chairs, 1 sofa, 1 table') and a.value == 4.0
    assert a.points.shape == (4, 3)


@pytest.mark.parametrize('question', ['where am I?', 'How far have I travelled?', 'how many keyframes are in memory?',
                                      'what time is it?', 'Where was I 5 s ago?', 'how long have I been running?'])
def test_other_questions_are_declined_for_the_next_answerer(vocab, question):
    assert parse_object_question(question, vocab) is None
    assert ask(question, vocab).message == NO_MODEL_MESSAGE


def test_box_distance_is_zero_for_touching_boxes():
    a, b = inst(1, 'chair', (0, 0, 0), (1, 1, 1)), inst(2, 'table', (1.0, 0.2, 0), (1, 1, 1))
    d, pa, pb = box_distance(a, b)
    assert d == 0.0
    d, pa, pb = box_distance(a, inst(3, 'table', (3.0, 4.0, 0.0), (1, 1, 1)))
    np.testing.assert_allclose(d, np.hypot(2.0, 3.0))
    np.testing.assert_allclose(pa, [0.5, 0.5, 0.0])
    np.testing.assert_allclose(pb, [2.5, 3.5, 0.0])


def test_object_answerer_in_a_chain_with_the_camera_from_memory(vocab):
    m = ObjectMap()
    for t in range(2):
        c = np.array([0.0, 0.0, 2.0])
        m.add([ObjectObservation('chair', 0.9, c, c - 0.25, c + 0.25, t, c, float(t), np.zeros(0, int), 50)])
    memory = SpatialMemory()
    memory.record_pose(0.0, np.eye(4))
    memory.record_pose(1.0, make_pose(np.eye(3), [0.0, 0.0, 0.5]))  # in odom
    T_map_odom = make_pose(np.eye(3), [0.0, 0.0, -0.5])  # odom is 0.5 m ahead of map
    chain = ChainedAnswerer([GeometricAnswerer(), ObjectAnswerer(m, vocab, 'map', lambda: T_map_odom)])
    a = chain.answer('Where is the chair?', memory.snapshot(), 1.0)
    assert a.success and a.frame == 'map' and '2.00 m ahead' in a.answer  # camera at map z = 0
    a = chain.answer('How far have I travelled?', memory.snapshot(), 1.0)
    assert a.success and a.category == 'distance' and a.value == 0.5  # the geometric answerer
    unknown = ObjectAnswerer(m, vocab, 'map', lambda: None)
    assert 'from the camera' not in unknown.answer('Where is the chair?', memory.snapshot(), 1.0).answer


def test_situated_localization_and_multiple_choice_are_left_to_the_other_answerers():
    """'... locate me' is the situated-localization task (the trajectory / language answerers'),
    not 'where is' of the object it names."""
    from geovr_ros.memory.answerer import NO_MODEL_MESSAGE
    from geovr_ros.objects import load_vocabulary
    answer = answer_from_objects('With the purple trash bin in front of me and the blue toy duck at my left, '
                                 'locate me.', [], load_vocabulary())
    assert answer.message == NO_MODEL_MESSAGE
