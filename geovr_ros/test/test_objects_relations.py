"""Relations and the room answered from the object map (no ROS): which option is nearest, where an
object lies from a stated viewpoint, a route's turns, the floor area of a room seen in depth.
Every expected answer is worked out by hand from the constructed geometry."""
from __future__ import annotations

import numpy as np
import pytest
from test_objects_queries import CAMERA, ROOM, inst

from geovr_ros.geometry import ShapeError, make_pose
from geovr_ros.objects import ObjectMap, ObjectMapError, answer_from_objects, load_vocabulary, parse_object_question
from geovr_ros.objects.relations import direction_choice, floor_angle_deg, turn_word, turns_of
from geovr_ros.objects.room import RoomFootprint, RoomFootprintConfig, floor_basis

UP = np.array([0.0, 0.0, 1.0])


@pytest.fixture(scope='module')
def vocab():
    return load_vocabulary()


def ask(question, vocab, instances=ROOM, up=UP, camera=CAMERA, floor=None):
    return answer_from_objects(question, instances, vocab, camera, 'map', up, floor)


def test_angles_in_the_floor_plane_are_positive_to_the_left():
    assert floor_angle_deg(UP, [1, 0, 0], [0, 1, 0]) == pytest.approx(90.0)     # facing +x, +y is on the left
    assert floor_angle_deg(UP, [1, 0, 0], [0, -1, 5]) == pytest.approx(-90.0)   # height does not count
    assert floor_angle_deg(-UP, [1, 0, 0], [0, 1, 0]) == pytest.approx(-90.0)   # upside down, mirrored
    assert np.isnan(floor_angle_deg(UP, [0, 0, 1], [1, 0, 0]))                  # facing straight up: no heading


@pytest.mark.parametrize('angle, options, expected', [
    (100.0, ['left', 'right'], 'left'), (-170.0, ['left', 'right'], 'right'),
    (100.0, ['left', 'right', 'back'], 'left'), (140.0, ['left', 'right', 'back'], 'back'),
    (-130.0, ['left', 'right', 'back'], 'right'), (140.0, ['front-left', 'front-right', 'back-left', 'back-right'],
                                                   'back-left'),
    (-20.0, ['front-left', 'front-right', 'back-left', 'back-right'], 'front-right'),
    (60.0, ['to my left', 'to my right'], 'to my left')])
def test_a_direction_answers_the_option_nearest_its_angle(angle, options, expected):
    assert options[direction_choice(angle, options)] == expected
    assert direction_choice(angle, ['up', 'down']) is None


def test_turns_follow_the_data_engines_sectors():
    assert [turn_word(a) for a in (10.0, 45.0, 149.0, 160.0, -90.0, -179.0)] == \
        ['go forward', 'turn left', 'turn left', 'turn back', 'turn right', 'turn back']
    assert turns_of('Turn Left, turn around, go straight') == ['turn left', 'turn back', 'go forward']


def test_where_an_object_lies_from_a_stated_viewpoint(vocab):
    # at the sofa (0, 3) facing the table (0, 0), i.e. towards -y: the best chair (1, 0) lies
    # atan2(1, 3) = 18.4 deg to the left (east is on the left when facing south)
    a = ask('If I am standing by the sofa and facing the table, is the chair to my left or right?', vocab)
    assert a.success and a.category == 'rel_direction' and (a.value, a.unit) == (0.0, 'option index')
    assert a.answer.startswith('(A) left') and '18 deg to the left' in a.answer
    np.testing.assert_allclose(a.points, [[0.0, 3.0, 0.4], [0.0, 0.0, 0.375], [1.0, 0.0, 0.45]])
    a = ask('Standing at the sofa looking towards the table, where is the chair: front-left or front-right or '
            'back-left or back-right?', vocab)
    assert a.value == 0.0 and 'front-left' in a.answer
    a = ask('If I am standing by the table and facing the sofa, where is the chair?', vocab)   # no options
    assert a.success and a.unit == 'deg' and a.value == pytest.approx(-90.0) and '(right;' in a.answer


def test_directions_hold_in_a_map_whose_up_is_minus_y(vocab):
    """odom optical (the first camera's frame): up is -y. The same room turned so gives the
    same answers with that up, and with the camera's own up when none is given."""
    R = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])   # z up -> -y up
    turned = [inst(i.instance_id, i.category, R @ i.centroid, np.abs(R @ i.extent), i.first_seen, i.confidence)
              for i in ROOM]
    camera = make_pose(R, np.zeros(3)) @ CAMERA
    question = 'If I am standing by the sofa and facing the table, is the chair to my left or right?'
    for up in (R @ UP, None):
        a = ask(question, vocab, turned, up=up, camera=camera)
        assert a.success and a.value == 0.0 and '18 deg to the left' in a.answer


def test_a_route_answers_the_option_whose_turns_agree(vocab):
    # chair (1, 0) -> table (0, 0) heading west, then to the sofa (0, 3) heading north: a right turn
    q = ('You are a robot beginning at the chair facing the table. You want to navigate to the sofa. '
         '1. Go forward until the table 2. [please fill in] 3. Go forward until the sofa. '
         'Options: A. Turn Left B. Turn Back C. Turn Right')
    parsed = parse_object_question(q, vocab)
    assert parsed.task == 'route_plan' and parsed.roles == ('chair', 'table', 'sofa')
    a = ask(q, vocab)
    assert a.success and a.value == 2.0 and 'at the table: turn right (-90 deg)' in a.answer
    np.testing.assert_allclose(a.points, [[1.0, 0.0, 0.45], [0.0, 0.0, 0.375], [0.0, 3.0, 0.4]])
    lamp = inst(9, 'lamp', (3.0, 3.0, 1.0), (0.3, 0.3, 1.5))   # then east from the sofa: right again
    a = ask('A robot at the chair faces the table. Its route: reach the table, then ___, reach the sofa, then ___, '
            'reach the lamp. Which turns complete the route: (A) turn left, turn right; (B) turn right, turn left; '
            '(C) turn right, turn right?', vocab, ROOM + [lamp])
    assert a.value == 2.0


def test_which_option_lies_nearest(vocab):
    # from the sofa (0, 3, 0.4): the table 3.00 m, the nearer chair sqrt(1 + 9 + 0.0025) = 3.16 m
    a = ask('Which of these is closest to the sofa: chair, table?', vocab)
    assert a.success and a.category == 'rel_distance' and a.value == 1.0 and 'chair 3.16 m; table 3.00 m' in a.answer
    assert ask('Which is farthest from the sofa, the chair or the table?', vocab).value == 0.0
    assert ask('Among piano, lamp, chair, which one is the closest to the sofa?', vocab).value == 2.0  # unseen options
    a = ask('Which object is nearest to the sofa?', vocab)     # any object of the map: the answer is the distance
    assert a.success and a.unit == 'm' and a.value == pytest.approx(3.0, abs=1e-3) and 'the table' in a.answer
    a = ask('Which is closest to the lamp: the chair, the table?', vocab)
    assert not a.success and a.not_seen and 'I have not seen a lamp' in a.answer


def test_a_comparative_without_options_answers_yes_or_no(vocab):
    # the table 3.00 m from the sofa, the more confident chair 3.16 m
    a = ask('Is the table closer to the sofa than the chair is?', vocab)
    assert a.success and a.category == 'rel_distance' and a.value == 1.0 and a.unit == 'yes (1) / no (0)'
    assert a.answer.startswith('yes: the table is 3.00 m from the sofa, the chair 3.16 m')
    a = ask('Is the table further from the sofa than the chair?', vocab)
    assert a.value == 0.0 and a.answer.startswith('no: ')
    a = ask('Is the sofa nearer to the table than to the chair?', vocab)   # the sofa's two distances
    assert a.value == 1.0 and 'the table is 3.00 m from the sofa, the chair 3.16 m' in a.answer
    assert ask('Is the sofa farther from the chair than from the table?', vocab).value == 1.0
    np.testing.assert_allclose(a.points, [[0.0, 3.0, 0.4], [0.0, 0.0, 0.375], [1.0, 0.0, 0.45]])
    a = ask('Is the lamp closer to the sofa than the table?', vocab)
    assert not a.success and a.not_seen and 'lamp' in a.answer
    q = parse_object_question('Is the red chair closer to the table than the blue chair is?', vocab)
    assert q.roles == ('chair', 'table', 'chair') and q.role_colours == ('red', '', 'blue')
    assert q.compare == ((0, 1), (2, 1)) and not q.farthest
    assert parse_object_question('Is the chair closer to the table than anything?', vocab) is None


def test_comparisons_may_measure_from_the_camera(vocab):
    # the camera at (0, -3, 1.2): the table 3.11 m away, the sofa 6.05 m
    for question in ('Is the table closer to me than the sofa?', 'Am I closer to the table than to the sofa?'):
        a = ask(question, vocab)
        assert a.success and a.value == 1.0 and 'the table is 3.11 m from the camera, the sofa 6.05 m' in a.answer
    a = ask('Is the sofa closer to the table than I am?', vocab)          # 3.00 m against the camera's 3.11 m
    assert a.value == 1.0 and 'the camera 3.11 m' in a.answer
    a = ask('Which is closer to me, the sofa or the table?', vocab)
    assert a.success and a.value == 1.0 and a.answer.startswith('(B) the table is nearest the camera')
    a = ask('Is the table closer to me than the sofa?', vocab, camera=None)
    assert not a.success and 'no camera pose' in a.message
    # 'can you tell me' names no place of the comparison
    q = parse_object_question('Can you tell me whether the table is closer to the sofa than the chair is?', vocab)
    assert q.roles == ('table', 'sofa', 'chair')


def test_users_wordings_of_distances_and_neighbours(vocab):
    a = ask('How many metres between the sofa and the table?', vocab)
    assert a.category == 'abs_distance' and a.value == pytest.approx(3.0, abs=1e-3)
    assert ask('How many centimetres does the sofa measure?', vocab).category == 'object_size'
    a = ask('How far away is the table?', vocab)                          # one object: from the camera
    assert a.value == pytest.approx(np.sqrt(9 + 0.825 ** 2), abs=1e-3) and 'from the camera' in a.answer
    assert ask('How far away is the table from the sofa?', vocab).value == pytest.approx(3.0, abs=1e-3)
    for question in ('What is next to the table?', "What's near the table?", 'What did you see beside the table?',
                     'Which things are by the table?'):   # what lies there: both chairs, 0.15 m from it
        a = ask(question, vocab)
        assert a.category == 'support' and a.value == 2.0, question
        assert 'a chair at x=1.00, y=0.00' in a.answer and 'a chair at x=-1.00' in a.answer, question
    for question in ('What is the nearest object to the table?', 'Which object is next to the table?'):   # one
        a = ask(question, vocab)
        assert a.category == 'rel_distance' and a.value == pytest.approx(1.0, abs=0.01), question
        assert a.answer.startswith('the chair at x=1.00, y=0.00, z=0.45 m is nearest the table'), question
    a = ask('How many objects did you see?', vocab)
    assert a.category == 'object_list' and a.value == 4.0 and a.unit == 'count'
    for question in ('What did you see first?', 'In what order did you see things?'):   # every category
        a = ask(question, vocab)
        assert a.category == 'appearance_order', question
        assert a.answer == 'first seen: the sofa (t=1.00 s), then the table (t=2.00 s), then the chair (t=4.00 s)'
    assert ask('What did you see first?', vocab, instances=[]).answer == 'I have not seen any object yet'


def test_which_instance_of_a_category_lies_nearest(vocab):
    room = ROOM + [inst(5, 'chair', (0.5, 2.0, 0.45), (0.5, 0.5, 0.9), confidence=0.7)]
    a = ask('Which chair is closest to the sofa?', vocab, instances=room)
    assert a.success and a.value == pytest.approx(np.hypot(0.5, 1.0), abs=1e-2)
    assert a.answer.startswith('the chair at x=0.50, y=2.00') and len(a.points) == 2
    a = ask('Which of the chairs is farthest from the sofa?', vocab, instances=room)
    assert a.value == pytest.approx(np.sqrt(10), abs=1e-2) and 'y=0.00' in a.answer
    a = ask('Which lamp is nearest the sofa?', vocab, instances=room)
    assert not a.success and a.not_seen


def test_which_of_two_objects_is_bigger_taller_or_longer(vocab):
    # boxes: sofa 2.00 x 0.90 x 0.80 (1.44 m^3), table 1.20 x 0.80 x 0.75 (0.72 m^3), chair 0.5 x 0.5 x 0.9
    a = ask('Is the sofa bigger than the table?', vocab)
    assert a.success and a.category == 'size_compare' and a.value == 1.0
    assert a.answer == 'yes: the sofa 1.44 m^3, the table 0.72 m^3 (volumes of their boxes)'
    a = ask('Which is taller, the table or the chair?', vocab)
    assert a.value == 1.0 and a.unit == 'option index' and a.answer.startswith('the chair is taller: the table 0.75 m')
    assert ask('Is the chair shorter than the table?', vocab).value == 0.0
    assert ask('Which is smaller: the table or the chair?', vocab).value == 1.0
    assert ask('Is the table wider than the sofa?', vocab).value == 0.0       # 1.20 against 2.00 m across up
    assert ask('Which of the sofa and the table is longer?', vocab).value == 0.0
    # height is along the map's up: in a y-down map the chair's 0.9 m lies along y
    flipped = [inst(i.instance_id, i.category, i.centroid[[0, 2, 1]], i.extent[[0, 2, 1]]) for i in ROOM]
    a = ask('Is the chair taller than the table?', vocab, instances=flipped, up=np.array([0.0, -1.0, 0.0]))
    assert a.value == 1.0 and 'the chair 0.90 m, the table 0.75 m' in a.answer
    a = ask('Is the lamp bigger than the sofa?', vocab)
    assert not a.success and a.not_seen
    q = parse_object_question('What is the length of the longest dimension of the sofa?', vocab)
    assert q.task == 'object_size'                                          # VSI's size wording stays a size


def test_what_rests_on_what_and_what_lies_between(vocab):
    # a lamp standing on the table (its bottom 0.75 m, the table's top 0.75 m), a box on the floor
    room = ROOM + [inst(6, 'lamp', (0.2, 0.1, 0.95), (0.2, 0.2, 0.4)), inst(7, 'box', (3.0, 3.0, 0.2), (0.4, 0.4, 0.4))]
    a = ask('What is on the table?', vocab, instances=room)
    assert a.success and a.category == 'support' and a.value == 1.0 and 'a lamp at x=0.20, y=0.10, z=0.95 m' in a.answer
    assert ask('Is the lamp on the table?', vocab, instances=room).value == 1.0
    assert ask('Is there a box on the table?', vocab, instances=room).value == 0.0
    a = ask("What's on top of the sofa?", vocab, instances=room)
    assert a.value == 0.0 and a.answer.startswith('I have seen nothing on the sofa')
    # in a y-down map the same room: "on" is along -y
    flipped = [inst(i.instance_id, i.category, i.centroid[[0, 2, 1]] * [1, -1, 1], i.extent[[0, 2, 1]]) for i in room]
    assert ask('Is the lamp on the table?', vocab, instances=flipped, up=np.array([0.0, -1.0, 0.0])).value == 1.0
    assert ask('Is the lamp on the table?', vocab, instances=room, up=None, camera=None).message.startswith('no camera')
    # between, seen from above: the table 3 m along the 3.16 m from the sofa to the chair, 0.95 m aside
    a = ask('Is the table between the sofa and the chair?', vocab, instances=room)
    assert a.category == 'between' and a.value == 1.0 and '90 % of the way' in a.answer
    assert ask('Is the sofa between the table and the box?', vocab, instances=room).value == 0.0   # 2.1 m aside
    assert ask('What is the distance between the sofa and the table?', vocab).category == 'abs_distance'
    assert parse_object_question('Turn on the lamp', vocab) is None


def test_what_lies_under_what(vocab):
    # a box on the floor under the table's top (0.75 m), a ball on the floor beside the table
    room = ROOM + [inst(6, 'box', (0.1, 0.1, 0.2), (0.3, 0.3, 0.4)), inst(7, 'ball', (1.5, -1.0, 0.1), (0.2, 0.2, 0.2))]
    a = ask('What is under the table?', vocab, instances=room)
    assert a.success and a.category == 'support' and a.value == 1.0 and a.answer.startswith('under the table')
    assert 'a box at x=0.10, y=0.10, z=0.20 m' in a.answer and 'ball' not in a.answer
    assert ask('Is the box under the table?', vocab, instances=room).value == 1.0
    assert ask('Is the ball underneath the table?', vocab, instances=room).value == 0.0
    assert ask('What is on the table?', vocab, instances=room).value == 0.0     # under is not on


def test_next_to_is_the_box_distance_within_half_a_metre():
    from geovr_ros.objects.object_map import box_distance
    from geovr_ros.objects.relations import NEAR_GAP_M, near
    rng = np.random.default_rng(3)
    boxes = [inst(k, 'box', rng.uniform(-1.5, 1.5, 3), rng.uniform(0.1, 1.0, 3)) for k in range(200)]
    anchor = inst(999, 'table', (0.0, 0.0, 0.4), (1.2, 0.8, 0.8))
    expected = [box_distance(b, anchor)[0] <= NEAR_GAP_M for b in boxes]
    assert near(boxes, anchor).tolist() == expected and 20 < sum(expected) < 180
    assert not near([anchor], anchor)[0] and near([], anchor).shape == (0,)


def test_objects_named_by_where_they_are(vocab):
    # two lamps: one standing on the table, one on the floor beside the sofa (1.85 m from its box)
    room = ROOM + [inst(6, 'lamp', (0.2, 0.1, 0.95), (0.2, 0.2, 0.4), confidence=0.7),
                   inst(7, 'lamp', (3.0, 3.0, 0.6), (0.3, 0.3, 1.2), confidence=0.9)]
    q = parse_object_question('How far is the lamp on the table from the sofa?', vocab)
    assert q.task == 'abs_distance' and q.categories == ('lamp', 'sofa')
    assert [(x.category, x.relation, x.anchor) for x in q.qualifiers] == [('lamp', 'on', 'table')]
    a = ask('How far is the lamp on the table from the sofa?', vocab, instances=room)
    assert a.value == pytest.approx(np.linalg.norm([0.2, 2.9, 0.55]), abs=1e-6)   # not the more confident lamp
    assert a.answer.endswith('the lamp on the table: 1 of the 2 I have seen')
    assert ask('Where is the lamp?', vocab, instances=room).points[0] == pytest.approx([3.0, 3.0, 0.6])
    assert ask('Where is the lamp on top of the table?', vocab, instances=room).points[0] == pytest.approx([0.2, 0.1, 0.95])
    assert ask('How many lamps are on the table?', vocab, instances=room).value == 1.0
    a = ask('Is there a lamp on the sofa?', vocab, instances=room)
    assert a.success and a.value == 0.0 and a.answer.startswith('no, I have seen no lamps on the sofa: 0')
    a = ask('How tall is the lamp that is on the table?', vocab, instances=room)
    assert a.value == pytest.approx(0.4)
    a = ask('How far is the lamp on the sofa from the table?', vocab, instances=room)
    assert not a.success and a.not_seen and a.answer.startswith('I have not seen a lamp on the sofa')
    # near: boxes within 0.5 m; a question about one instance falls back to the nearest and says so
    assert ask('How many chairs are next to the table?', vocab, instances=room).value == 2.0
    assert ask('How many chairs are next to the sofa?', vocab, instances=room).value == 0.0
    a = ask('Where is the lamp next to the sofa?', vocab, instances=room)
    assert a.points[0] == pytest.approx([3.0, 3.0, 0.6]) and 'so the nearest one, 1.85 m from it' in a.answer
    # a comparison about the qualified lamp; the phrase may qualify the support of a support question
    a = ask('Is the lamp on the table closer to the sofa than the chair?', vocab, instances=room)
    assert a.category == 'rel_distance' and a.value == 1.0
    a = ask('What is on the table next to the chair?', vocab, instances=room)
    assert a.category == 'support' and a.value == 1.0 and 'a lamp at x=0.20' in a.answer
    # "is the lamp on the table?" asks what rests on what: no phrase is read as a name
    q = parse_object_question('Is the lamp on the table?', vocab)
    assert q.task == 'support' and q.qualifiers == ()
    a = ask('How far is the lamp on the table from the piano?', vocab, instances=room)
    assert a.not_seen and a.answer == 'I have not seen a piano (piano is not in my object vocabulary)'
    assert ask('How far is the lamp from the wall?', vocab, instances=room).answer.startswith('I have not seen a wall')
    assert ask('How far apart are the two chairs?', vocab, instances=room).value == pytest.approx(2.0)
    assert ask('Where is the lamp on the bed?', vocab, instances=room).answer == 'I have not seen a bed'
    a = ask('Where is the lamp on the table?', vocab, instances=room, up=None, camera=None)
    assert a.message.startswith('no camera pose')


def test_sizes_are_measured_as_asked(vocab):
    # the table's box 1.20 x 0.80 x 0.75 m: its longest side, its height along up, its width across it
    assert ask('How long is the table?', vocab).value == pytest.approx(1.2)
    a = ask('How tall is the table?', vocab)
    assert a.value == pytest.approx(0.75) and a.answer.startswith('the table is 0.75 m tall')
    assert ask('What is the height of the table in cm?', vocab).value == pytest.approx(75.0)
    assert ask('How wide is the sofa?', vocab).value == pytest.approx(2.0)
    assert ask('Give the largest dimension of the table in cm.', vocab).value == pytest.approx(120.0)   # VSI's
    flipped = [inst(i.instance_id, i.category, i.centroid[[0, 2, 1]], i.extent[[0, 2, 1]]) for i in ROOM]
    assert ask('How high is the table?', vocab, instances=flipped, up=np.array([0.0, -1.0, 0.0])).value == \
        pytest.approx(0.75)
    assert ask('How tall is the table?', vocab, up=None, camera=None).value == pytest.approx(1.2)   # no up: longest


def test_superlatives_over_the_map_a_category_or_the_options(vocab):
    room = ROOM + [inst(6, 'lamp', (3.0, 3.0, 0.8), (0.3, 0.3, 1.6), confidence=0.9)]
    a = ask('Which is the biggest object?', vocab, instances=room)
    assert a.category == 'size_extreme' and a.value == pytest.approx(1.44) and a.answer.startswith('the sofa at')
    a = ask('What is the tallest thing you saw?', vocab, instances=room)
    assert a.value == pytest.approx(1.6) and a.answer.startswith('the lamp at') and a.unit == 'm'
    assert ask('Which chair is the smallest?', vocab, instances=room).value == pytest.approx(0.225)
    a = ask('Which is the tallest: the chair, the lamp or the table?', vocab, instances=room)
    assert a.value == 1.0 and a.unit == 'option index' and a.answer.startswith('(B) the lamp')
    assert ask('Which is the widest: the bed or the sofa?', vocab, instances=room).not_seen
    assert parse_object_question('What is the length of the longest dimension of the sofa?', vocab).task == 'object_size'
    q = parse_object_question('What is the shortest distance between the chair and the table?', vocab)
    assert q.task == 'abs_distance' and q.closest


def test_the_camera_as_the_place_of_nearest_and_farthest(vocab):
    # the camera at (0, -3, 1.2); chair 2 at (1, 0, 0.45) 3.25 m, chair 3 moved to (-1, 2, 0.45) 5.15 m
    room = [i for i in ROOM if i.instance_id != 3] + [inst(3, 'chair', (-1.0, 2.0, 0.45), (0.5, 0.5, 0.9), confidence=0.6)]
    for question in ('What is the closest object to me?', 'Which object is nearest to the camera?'):
        a = ask(question, vocab, instances=room)
        assert a.category == 'rel_distance' and a.answer.startswith('the table at') and 'nearest the camera' in a.answer
    a = ask('Which chair is farthest from me?', vocab, instances=room)
    assert a.value == pytest.approx(np.linalg.norm([1.0, 5.0, 0.75]), abs=1e-2) and 'x=-1.00, y=2.00' in a.answer
    a = ask('Where is the nearest chair?', vocab, instances=room)
    assert a.points[0] == pytest.approx([1.0, 0.0, 0.45]) and '(the nearest of 2)' in a.answer
    assert ask('How far is the closest chair?', vocab, instances=room).value == pytest.approx(3.25, abs=1e-2)
    assert ask('How far is the sofa?', vocab).value == pytest.approx(np.hypot(6.0, 0.8))   # one object: from me
    assert ask('How far apart are the two chairs?', vocab).value == pytest.approx(2.0)


def test_what_lies_around_the_camera(vocab):
    # the camera looks along +y from (0, -3, 1.2): the table ahead, a plant on its left, a box behind it
    room = ROOM + [inst(6, 'plant', (-2.0, -3.0, 0.3), (0.3, 0.3, 0.6)), inst(7, 'box', (0.5, -5.0, 0.2), (0.4,) * 3)]
    a = ask('What is in front of me?', vocab, instances=room)
    assert a.category == 'around' and a.value == 4.0 and a.answer.startswith('ahead of the camera')
    assert 'plant' not in a.answer and 'box' not in a.answer and a.answer.index('table') < a.answer.index('sofa')
    # what it sees now: what the latest sightings named (the chair last seen at t=11 s; the next, at 9 s, is 2 s older)
    a = ask('What do you see right now?', vocab, instances=room)
    assert a.value == 1.0 and a.answer.startswith('seen at t=11.00 s') and 'the chair 3.25 m away' in a.answer
    assert ask('What do you see now?', vocab, instances=room, camera=None, up=None).value == 1.0
    # left and right are the sides of the heading: the chair at (-1, 0) lies 18 deg to the left, ahead too
    a = ask('What is to my left?', vocab, instances=room)
    assert a.value == 2.0 and 'the plant 2.19 m away at +90 deg' in a.answer and 'the chair 3.25 m away at +18 deg' in a.answer
    assert 'the box' in ask("What's behind me?", vocab, instances=room).answer
    a = ask('What is on my right?', vocab, instances=room)     # the other chair, and the box behind on the right
    assert a.value == 2.0 and 'at -18 deg' in a.answer and 'the box' in a.answer
    assert ask('Is the table on my right?', vocab).value == 0.0   # straight ahead: neither side
    assert not ask('What is behind me?', vocab, instances=room, camera=None, up=None).success


def test_when_and_what_was_seen_last(vocab):
    # first seen: sofa 1, table 2, chairs 4 and 6; each last seen 5 s after it was first seen
    a = ask('When did you see the table?', vocab)
    assert a.category == 'when_seen' and a.value == 2.0 and a.unit == 's'
    assert a.answer.startswith('I first saw the table at t=2.00 s and last at t=7.00 s')
    assert ask('When did you last see a chair?', vocab).value == 11.0
    a = ask('What did you see last?', vocab)
    assert a.answer.startswith('last seen: the chair (t=11.00 s), before it the table (t=7.00 s)')
    assert ask('Which did you see last, the sofa or the table?', vocab).value == 1.0
    assert ask('Where did you first see the sofa?', vocab).category == 'where_is'
    assert ask('When did you see the piano?', vocab).not_seen


def test_yes_no_next_to_and_counts_of_what_lies_somewhere(vocab):
    room = ROOM + [inst(6, 'lamp', (0.2, 0.1, 0.95), (0.2, 0.2, 0.4))]
    a = ask('Is the chair next to the table?', vocab, instances=room)
    assert a.category == 'support' and a.value == 1.0 and a.answer.startswith('yes: the chair lies next to the table')
    assert ask('Is the sofa near the table?', vocab, instances=room).value == 0.0   # 2.15 m between the boxes
    assert ask('How many things are on the table?', vocab, instances=room).value == 1.0
    assert ask('How many objects are next to the table?', vocab, instances=room).value == 2.0   # the lamp is on it
    assert ask('How many chairs are around the table?', vocab, instances=room).value == 2.0
    assert ask('Show me the sofa', vocab).category == 'where_is'
    assert ask('Is the sofa far from the table?', vocab).value == pytest.approx(np.hypot(3.0, 0.025))


def test_more_of_the_wordings_users_try(vocab):
    # a lamp on the table, a box on the floor under it, a ball halfway from the sofa to the table
    room = ROOM + [inst(6, 'lamp', (0.2, 0.1, 0.95), (0.2, 0.2, 0.4)), inst(7, 'box', (0.1, 0.1, 0.2), (0.3,) * 3),
                   inst(8, 'ball', (0.1, 1.5, 0.1), (0.2,) * 3)]
    a = ask('Is there anything on the table?', vocab, instances=room)
    assert a.category == 'support' and a.value == 1.0 and 'a lamp at' in a.answer
    assert 'a box at' in ask('Is there something under the table?', vocab, instances=room).answer
    a = ask('What is the lamp on?', vocab, instances=room)
    assert a.value == 1.0 and 'rests on the table at x=0.00' in a.answer
    assert ask('What is the sofa standing on?', vocab, instances=room).value == 0.0
    a = ask('What is between the sofa and the table?', vocab, instances=room)
    assert a.category == 'between' and a.value == 1.0 and 'a ball at x=0.10, y=1.50' in a.answer
    assert ask('What is the object on the table?', vocab, instances=room).category == 'support'
    for question in ('Can you see a chair?', 'Any chairs?', 'Could you see any chairs?'):
        assert ask(question, vocab).value == 2.0, question
    a = ask('How many chairs and tables are there?', vocab)
    assert a.value == 3.0 and a.answer.startswith('I have seen 2 chairs and 1 table') and len(a.points) == 3
    assert ask('How many people are there?', vocab).answer.startswith('I have not seen any people: 0')
    a = ask('How far is the chair from the sofa in cm?', vocab)
    assert a.unit == 'cm' and a.value == pytest.approx(100 * np.hypot(1.0, 3.0) + 0, abs=1.0) and ' cm apart' in a.answer
    # "closer to A or B?" is a choice between A and B about the first object
    a = ask('Is the lamp closer to the sofa or to the table?', vocab, instances=room)
    assert a.category == 'rel_distance' and a.value == 1.0 and a.answer.startswith('(B) the table is nearest the lamp')
    # where an object lies from the camera (at (0, -3, 1.2) looking along +y)
    assert ask('Is the sofa in front of me?', vocab).value == 1.0
    assert ask('Is the sofa behind me?', vocab).value == 0.0
    a = ask('Is the chair to my left or right?', vocab, instances=[i for i in ROOM if i.instance_id != 3])
    assert a.unit == 'option index' and a.value == 1.0 and a.answer.startswith('right: the chair')
    assert ask('Which direction is the sofa?', vocab).category == 'where_is'
    assert ask('How many meters is the chair from the table?', vocab).value == pytest.approx(1.0, abs=1e-2)
    a = ask('Among the chair, lamp and sofa, which is closest to the table?', vocab, instances=room)
    assert a.value == 1.0 and a.answer.startswith('(B) the lamp is nearest the table')
    assert ask('What objects are on the table?', vocab, instances=room).category == 'support'
    assert ask('Whats the distance to the sofa?', vocab).value == pytest.approx(np.hypot(6.0, 0.8))   # from me
    assert ask('Which object is next to the sofa?', vocab, instances=room).answer.startswith('the ball at')
    assert ask('Which did you see earlier, the sofa or the chair?', vocab).value == 0.0


def test_heights_above_the_floor(vocab):
    from geovr_ros.objects.room import FloorOutline
    floor = FloorOutline(20.0, np.array([[-2.0, -4.0, 0.0], [2.0, -4.0, 0.0], [2.0, 4.0, 0.0], [-2.0, 4.0, 0.0]]),
                         4.0, 8.0, 15.0, 300)
    room = ROOM + [inst(6, 'lamp', (0.2, 0.1, 0.95), (0.2, 0.2, 0.4))]
    for question in ('How high above the floor is the lamp?', 'How far is the lamp from the floor?',
                     'At what height is the lamp?'):
        a = ask(question, vocab, instances=room, floor=floor)
        assert a.category == 'above_floor' and a.value == pytest.approx(0.75), question   # its box's bottom
    assert '1.15 m at its top' in a.answer
    assert ask('How high is the lamp?', vocab, instances=room, floor=floor).value == pytest.approx(0.4)   # its height
    a = ask('How high above the floor is the camera?', vocab, floor=floor)
    assert a.value == pytest.approx(1.2) and a.answer.startswith('the camera is 1.20 m above the floor')
    assert not ask('How high above the floor is the lamp?', vocab, instances=room).success   # no floor seen yet


def box_room_depth(width, length, height, T_world_cam, K, size):
    """Depth (H, W) of the inside of a box room [-w/2, w/2] x [-l/2, l/2] x [0, h] seen from T_world_cam."""
    w, h = size
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)   # optical, z = 1
    d = rays @ T_world_cam[:3, :3].T
    o = T_world_cam[:3, 3]
    ts = []
    for axis, (lo, hi) in enumerate([(-width / 2, width / 2), (-length / 2, length / 2), (0.0, height)]):
        with np.errstate(divide='ignore'):
            for plane in (lo, hi):
                t = (plane - o[axis]) / d[..., axis]
                ts.append(np.where(t > 0, t, np.inf))
    return np.min(ts, axis=0)   # rays have optical z = 1: the distance along them is the depth


def level_camera(position, yaw):
    """Optical camera at `position` looking along yaw (radians from +x) in a z-up world."""
    forward = np.array([np.cos(yaw), np.sin(yaw), 0.0])
    right = np.cross(forward, UP)
    return make_pose(np.stack([right, -UP, forward], axis=1), position)


def seen_room(width=4.0, length=5.0, views=8, origin=(0.3, -0.2, 1.4), yaws=None):
    K = np.array([[32.0, 0, 32.0], [0, 32.0, 24.0], [0, 0, 1.0]])   # 64x48, 90 deg across
    footprint = RoomFootprint()
    yaws = [2 * np.pi * k / views for k in range(views)] if yaws is None else yaws
    poses = [level_camera(np.asarray(origin), yaw) for yaw in yaws]
    for k, T in enumerate(poses):
        footprint.add(k, box_room_depth(width, length, 2.5, T, K, (64, 48)), K, T)
    return footprint, poses


def test_the_floor_area_of_a_room_seen_all_round():
    footprint, _ = seen_room()
    floor = footprint.outline(UP)
    assert floor.area_m2 == pytest.approx(20.0, rel=0.05) and floor.seen_m2 == pytest.approx(20.0, rel=0.05)
    assert sorted([floor.width_m, floor.depth_m]) == pytest.approx([4.0, 5.0], rel=0.05)
    assert floor.outline.shape == (4, 3)
    np.testing.assert_allclose(floor.outline[:, 2], 0.0, atol=0.05)   # drawn on the floor
    assert floor.points <= 8 * 400   # about points_per_keyframe (300) per view
    assert RoomFootprint().outline(UP) is None


def test_a_room_seen_from_one_corner_reads_as_its_rectangle():
    """Looking only towards the +x, +y corner from near the opposite one: the far walls, the
    corner between them and the floor in front. Their hull cuts off the room's near corners;
    the rectangle around them is the room."""
    footprint, _ = seen_room(origin=(-1.5, -2.0, 1.4), yaws=np.radians([30.0, 60.0]))
    floor = footprint.outline(UP)
    assert floor.seen_m2 < 0.85 * 20.0
    assert floor.area_m2 == pytest.approx(20.0, rel=0.05)


def test_the_room_holds_the_camera_that_saw_it():
    """Backing through a 4 x 5 m room (y -1 to -2, the wall behind at -2.5) while looking at the
    far wall: the depth sees the floor from y = -0.1 on (1.4 m up, 37 deg below the axis at
    most), the side walls from y = 0. The room still holds the camera and the clearance
    around it: y from -2.25 to 2.5, 19 m^2 (the floor seen: about 10)."""
    footprint, poses = seen_room(origin=(0.0, -1.0, 1.4), yaws=np.radians([90.0]))
    K = np.array([[32.0, 0, 32.0], [0, 32.0, 24.0], [0, 0, 1.0]])
    T_back = level_camera(np.array([0.0, -2.0, 1.4]), np.radians(90.0))
    footprint.add(1, box_room_depth(4.0, 5.0, 2.5, T_back, K, (64, 48)), K, T_back, T_map_keyframe=poses[0])
    floor = footprint.outline(UP)
    assert floor.seen_m2 < 12.0
    assert floor.area_m2 == pytest.approx(4.0 * 4.75, rel=0.05)
    bare = RoomFootprint(RoomFootprintConfig(camera_clearance=0.0))   # the centres alone
    bare.add(0, box_room_depth(4.0, 5.0, 2.5, poses[0], K, (64, 48)), K, poses[0])
    bare.add(1, box_room_depth(4.0, 5.0, 2.5, T_back, K, (64, 48)), K, T_back, T_map_keyframe=poses[0])
    assert bare.outline(UP).area_m2 == pytest.approx(4.0 * 4.5, rel=0.05)
    # saved and loaded, the camera of the frame that was not its keyframe stays where it was
    assert RoomFootprint.from_arrays(footprint.to_arrays()).outline(UP).area_m2 == pytest.approx(floor.area_m2)
    older = {k: v for k, v in footprint.to_arrays().items() if k != 'camera'}   # saved before session 47
    assert RoomFootprint.from_arrays(older).outline(UP).area_m2 < floor.area_m2   # the keyframe's centre only
    for bad in (np.zeros((1, 3)), np.full((2, 3), np.nan)):   # one centre for two entries; not finite
        with pytest.raises(ValueError, match="room footprint array 'camera'"):
            RoomFootprint.from_arrays({**footprint.to_arrays(), 'camera': bad})
    with pytest.raises(ValueError, match='camera_clearance'):
        RoomFootprintConfig(camera_clearance=-0.1)


def test_depth_the_decoder_is_not_sure_of_stays_out_of_the_floor():
    """A view whose upper half reads 3 m too far (a window, a depth error) at low confidence."""
    K = np.array([[32.0, 0, 32.0], [0, 32.0, 24.0], [0, 0, 1.0]])
    origin = np.array([0.3, -0.2, 1.4])
    sure, unsure = RoomFootprint(), RoomFootprint()
    for k in range(8):
        T = level_camera(origin, 2 * np.pi * k / 8)
        depth = box_room_depth(4.0, 5.0, 2.5, T, K, (64, 48))
        confidence = np.ones_like(depth)
        if k == 0:
            depth[:24] += 3.0
            confidence[:24] = 0.2
        sure.add(k, depth, K, T, confidence=confidence)
        unsure.add(k, depth, K, T)
    assert sure.outline(UP).area_m2 == pytest.approx(20.0, rel=0.05)
    assert unsure.outline(UP).area_m2 > 24.0
    with pytest.raises(ShapeError, match='confidence must have the shape'):
        sure.add(9, depth, K, T, confidence=confidence[:10])


def test_a_long_run_thins_its_points_and_keeps_the_room():
    K = np.array([[32.0, 0, 32.0], [0, 32.0, 24.0], [0, 0, 1.0]])
    footprint = RoomFootprint(RoomFootprintConfig(points_per_keyframe=300, max_points=1000))
    for k in range(12):
        T = level_camera(np.array([0.3, -0.2, 1.4]), 2 * np.pi * k / 8)
        footprint.add(k, box_room_depth(4.0, 5.0, 2.5, T, K, (64, 48)), K, T)
    assert len(footprint.to_arrays()['points']) <= 1000 and len(footprint) == 12
    assert footprint.outline(UP).area_m2 == pytest.approx(20.0, rel=0.05)
    with pytest.raises(ValueError, match='max_points'):
        RoomFootprintConfig(max_points=10)


def test_the_floor_moves_with_its_keyframes_and_is_saved_with_the_object_map():
    footprint, poses = seen_room()
    before = footprint.outline(UP)
    shift = make_pose(np.eye(3), [1.0, 0.0, 0.0])
    assert footprint.relocate({k: shift @ T for k, T in enumerate(poses)}) == len(poses)
    after = footprint.outline(UP)
    assert after.area_m2 == pytest.approx(before.area_m2)
    np.testing.assert_allclose(after.outline.mean(0), before.outline.mean(0) + [1.0, 0.0, 0.0], atol=0.06)
    objects = ObjectMap()
    objects.room = footprint
    arrays, meta = objects.to_arrays()
    loaded = ObjectMap.from_arrays(arrays, meta)
    assert loaded.room.outline(UP).area_m2 == pytest.approx(after.area_m2)
    arrays['room_count'] = arrays['room_count'] + 1   # more points claimed than saved
    with pytest.raises(ObjectMapError, match="room footprint array 'points'"):
        ObjectMap.from_arrays(arrays, meta)
    objects.clear()
    assert len(objects.room) == 0


def test_how_big_is_the_room(vocab):
    footprint, _ = seen_room()
    floor = footprint.outline(UP)
    for question in ('How big is this room?', 'What is the floor area of this room in square metres?',
                     'How many square metres of floor does this room have?'):
        a = ask(question, vocab, floor=floor)
        assert a.success and a.category == 'room_size' and a.unit == 'm^2' and a.value == floor.area_m2
        assert len(a.points) == len(floor.outline)
    assert not ask('How big is this room?', vocab).success   # nothing seen yet
    for question in ('How many square feet is this room?', 'What is the floor area in sq ft?'):
        a = ask(question, vocab, floor=floor)
        assert a.unit == 'ft^2' and a.value == pytest.approx(floor.area_m2 / 0.3048 ** 2) and 'ft by' in a.answer


def test_the_object_answerer_reads_the_maps_room_and_up(vocab):
    from geovr_ros.memory import SpatialMemory
    from geovr_ros.objects import ObjectAnswerer
    footprint, _ = seen_room()
    objects = ObjectMap()
    objects.room = footprint
    memory = SpatialMemory()
    memory.record_pose(0.0, CAMERA)
    a = ObjectAnswerer(objects, vocab, up=UP).answer('How big is this room?', memory.snapshot(), 0.0)
    assert a.success and a.value == pytest.approx(20.0, rel=0.05)
    a = ObjectAnswerer(objects, vocab).answer('How big is this room?', memory.snapshot(), 0.0)   # the camera's up
    assert a.success and a.value == pytest.approx(20.0, rel=0.05)


def test_floor_basis_is_orthonormal_and_right_handed():
    for up in ([0, 0, 1], [0, -1, 0], [0.3, 0.2, 0.9]):
        basis = floor_basis(np.asarray(up, float))
        up = np.asarray(up, float) / np.linalg.norm(up)
        np.testing.assert_allclose(basis @ basis.T, np.eye(2), atol=1e-12)
        np.testing.assert_allclose(np.cross(basis[0], basis[1]), up, atol=1e-12)
    with pytest.raises(ValueError, match='up must be'):
        floor_basis(np.zeros(3))


def test_above_and_next_to_are_told_from_on_and_under(vocab):
    """A lamp on the table and one hanging over it, a box under it, chairs beside it: "above"
    takes both lamps, "next to" the chairs only (what rests on the table or lies under it is
    not next to it); nothing next to an object names the nearest one."""
    from geovr_ros.objects.relations import lying_above, near
    hanging = inst(7, 'lamp', (0.0, 0.1, 1.8), (0.3, 0.3, 0.3))
    on_top = inst(6, 'lamp', (0.2, 0.1, 0.95), (0.2, 0.2, 0.4))
    below = inst(9, 'box', (0.1, -0.1, 0.15), (0.3, 0.3, 0.3))
    room = ROOM + [on_top, hanging, below]
    table, up = room[3], np.array([0.0, 0.0, 1.0])
    assert lying_above(room, table, up).tolist() == [False, False, False, False, True, True, False]
    assert near(room, table, up).tolist() == [False, True, True, False, False, False, False]
    assert near(room, table).tolist() == [False, True, True, False, True, False, True]   # no up: the gap alone
    a = ask('What is hanging above the table?', vocab, instances=room)
    assert a.category == 'support' and a.value == 2.0 and a.answer.startswith('above the table')
    assert ask('Is the box above the table?', vocab, instances=room).value == 0.0
    a = ask('What is next to the sofa?', vocab, instances=room)
    assert a.value == 0.0 and 'the nearest: a ' in a.answer and len(a.points) == 2


def test_what_an_object_rests_on_names_the_nearest_top_first(vocab):
    """A lamp on a book box on the table: both tops lie within reach of its bottom; the box's,
    which it touches, comes first."""
    box = inst(9, 'box', (0.2, 0.1, 0.8), (0.4, 0.4, 0.1))          # top at 0.85
    lamp = inst(6, 'lamp', (0.2, 0.1, 1.05), (0.2, 0.2, 0.4))       # bottom at 0.85
    a = ask('What is the lamp on?', vocab, instances=ROOM + [lamp, box])
    assert a.value == 2.0 and a.answer.index('the box at') < a.answer.index('the table at')
    assert "above the support's top" in a.answer


def test_what_lies_in_a_container(vocab):
    """A bottle in a trash bin, a teddy bear on a bookshelf's shelf: "in" is the centre inside
    the container's box, the item the smaller; a room is no container of the map."""
    from geovr_ros.objects.relations import lying_inside
    shelf = inst(11, 'bookshelf', (-2.0, 1.0, 0.9), (0.8, 0.3, 1.8))
    bear = inst(12, 'teddy bear', (-2.0, 1.0, 1.2), (0.2, 0.2, 0.25))
    bin_ = inst(13, 'trash bin', (2.0, -1.0, 0.2), (0.3, 0.3, 0.4))
    bottle = inst(14, 'bottle', (2.0, -1.0, 0.15), (0.08, 0.08, 0.25))
    room = ROOM + [shelf, bear, bin_, bottle]
    assert lying_inside(room, bin_).tolist() == [False] * 7 + [True]
    assert lying_inside([shelf], bear).tolist() == [False]   # the bigger one is never in the smaller
    for question in ('What is in the trash bin?', "What's inside the trash bin?", 'Is there anything in the trash bin?'):
        a = ask(question, vocab, instances=room)
        assert a.category == 'support' and a.value == 1.0 and 'a bottle at' in a.answer, question
    assert ask('Is the bottle in the trash bin?', vocab, instances=room).value == 1.0
    assert ask('Is the bottle inside the bookshelf?', vocab, instances=room).value == 0.0
    assert ask('How many things are in the bookshelf?', vocab, instances=room).value == 1.0
    a = ask('Where is the teddy bear in the bookshelf?', vocab, instances=room)
    assert a.category == 'where_is' and a.points[0] == pytest.approx([-2.0, 1.0, 1.2])
    assert ask('What is in the room?', vocab, instances=room).category == 'object_list'
    a = ask('Is the lamp in the room?', vocab, instances=room + [inst(6, 'lamp', (0.2, 0.1, 0.95), (0.2, 0.2, 0.4))])
    assert a.category == 'object_count' and a.value == 1.0


def test_lengths_in_the_unit_asked_for(vocab):
    cases = [('How far is the sofa from the table in feet?', 3.0 / 0.3048, 'ft', '9.8 ft'),
             ('How many feet is the sofa from the table?', 3.0 / 0.3048, 'ft', '9.8 ft'),
             ('How tall is the chair in inches?', 0.9 / 0.0254, 'in', '35.4 in'),
             ('How long is the sofa in millimetres?', 2000.0, 'mm', '2000 mm'),
             ('How long is the sofa in cm?', 200.0, 'cm', '200 cm'),
             ('How long is the sofa?', 2.0, 'm', '2.00 m')]
    for question, value, unit, said in cases:
        a = ask(question, vocab)
        assert a.value == pytest.approx(value, rel=1e-3) and a.unit == unit and said in a.answer, question
