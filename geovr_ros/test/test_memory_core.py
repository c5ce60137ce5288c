"""SpatialMemory, question validation and the geometric answerer."""
import threading
import time

import numpy as np
import pytest

from geovr_ros.geometry import T_BODY_OPTICAL, make_pose, matrix_from_rpy
from geovr_ros.memory import (
    NO_MODEL_MESSAGE, GeometricAnswerer, InvalidQuestionError, SpatialMemory, validate_question)


def walk(memory, n, dt=0.5, step=(0.3, 0.0, 0.4)):
    for i in range(n):
        memory.record_pose(100.0 + dt * i, make_pose(np.eye(3), np.multiply(step, i)))


@pytest.mark.parametrize('question, problem', [
    ('', 'empty'), ('   \n', 'empty'), ('x' * 1001, '1001 characters'),
    ('where \ufffd am I', 'undecodable'), ('bell\x07', 'undecodable'),
    (b'\xff\xfe', 'not valid UTF-8'), (42, 'must be text')])
def test_bad_questions_are_rejected_with_the_reason(question, problem):
    with pytest.raises(InvalidQuestionError, match=problem):
        validate_question(question)


def test_good_question_is_stripped():
    assert validate_question('  how far?\n') == 'how far?'
    assert validate_question('x' * 1000) == 'x' * 1000


def test_memory_is_bounded_and_evicts_the_most_redundant_keyframe():
    memory = SpatialMemory(max_keyframes=3, max_tokens=4)
    positions = [[0, 0, 0], [5, 0, 0], [5.1, 0, 0], [10, 0, 0]]
    for i, p in enumerate(positions):
        memory.add_keyframe(float(i), make_pose(np.eye(3), p), np.ones((10, 8)),
                            np.tile([0.0, 0.0, 2.0], (10, 1)))
    snap = memory.snapshot()
    kept = [e.T_odom_cam[0, 3] for e in snap.entries]
    assert kept == [0, 5.1, 10]           # of the close pair (5, 5.1) the older went
    assert snap.keyframes_evicted == 1 and snap.keyframes_added == 4
    assert snap.entries[0].tokens.shape == (4, 8) and snap.entries[0].tokens.dtype == np.float16
    assert np.allclose(snap.entries[1].token_xyz, [5.1, 0, 2.0])  # camera -> odom


def test_answers_about_the_trajectory_are_exact():
    memory, answerer = SpatialMemory(), GeometricAnswerer()
    walk(memory, 11)
    snap = memory.snapshot()
    far = answerer.answer('How far have I travelled?', snap, now=105.0)
    assert far.success and far.unit == 'm' and far.value == pytest.approx(5.0)
    where = answerer.answer('Where was I at t=101.25?', snap, now=105.0)
    assert where.success and np.allclose(where.pose[:3, 3], [0.75, 0, 1.0])
    ago = answerer.answer('where was I 2 seconds ago?', snap, now=105.0)
    assert np.allclose(ago.points[0], [1.8, 0, 2.4])
    now = answerer.answer('Where am I?', snap, now=105.0)
    assert np.allclose(now.points[0], [3.0, 0, 4.0])
    long = answerer.answer('how long have I been running', snap, now=105.0)
    assert long.value == pytest.approx(5.0) and long.unit == 's'
    outside = answerer.answer('where was I at 50 s', snap, now=105.0)
    assert not outside.success and 'outside' in outside.message


def test_the_start_is_kept_when_the_trajectory_drops_it():
    memory, answerer = SpatialMemory(max_trajectory=4), GeometricAnswerer()
    walk(memory, 11)   # 100.0 .. 105.0 s, (0.3, 0, 0.4) m a step
    snap = memory.snapshot()
    assert len(snap.trajectory_stamps) == 4
    start = answerer.answer('Where did I start?', snap, now=105.0)
    assert start.success and np.allclose(start.pose[:3, 3], 0) and 'first frame, t=100.000 s' in start.answer
    away = answerer.answer('How far am I from where I started?', snap, now=105.0)
    assert away.value == pytest.approx(5.0) and away.points.shape == (2, 3)
    assert answerer.answer('How long have I been walking?', snap, now=105.0).value == pytest.approx(5.0)
    memory.clear()
    assert not answerer.answer('Where did I start?', memory.snapshot(), now=105.0).success


@pytest.mark.parametrize('question', ['How much have I moved?', 'Distance travelled?', 'How far did the robot drive?'])
def test_more_wordings_of_the_distance_travelled(question):
    memory = SpatialMemory()
    walk(memory, 11)
    far = GeometricAnswerer().answer(question, memory.snapshot(), now=105.0)
    assert far.success and far.value == pytest.approx(5.0)


def test_times_ago_in_words_and_minutes():
    memory, answerer = SpatialMemory(), GeometricAnswerer()
    walk(memory, 241)   # 100 .. 220 s
    snap = memory.snapshot()
    five = answerer.answer('Where was I five seconds ago?', snap, now=220.0)
    assert np.allclose(five.points[0], np.multiply((0.3, 0.0, 0.4), 230))
    minute = answerer.answer('where was I a minute ago?', snap, now=220.0)
    assert np.allclose(minute.points[0], np.multiply((0.3, 0.0, 0.4), 120))
    assert answerer.answer("Where's the robot?", snap, now=220.0).answer.startswith('the camera is at')


def test_heading_about_the_frames_up_and_turned_from_the_start():
    memory, answerer = SpatialMemory(), GeometricAnswerer()
    for t, yaw in ((0.0, 0.0), (1.0, 30.0)):   # a level camera turning left, z up
        memory.record_pose(t, make_pose(matrix_from_rpy(0.0, 0.0, np.radians(yaw)), [t, 0.0, 1.0]) @ T_BODY_OPTICAL)
    heading = answerer.answer('Which way am I facing?', memory.snapshot(), 1.0)
    assert heading.success and heading.unit == 'rad' and heading.value == pytest.approx(np.radians(30.0))
    assert '30 deg to the left of its heading at the start' in heading.answer
    assert answerer.answer("What's my heading?", memory.snapshot(), 1.0).value == pytest.approx(heading.value)


def test_trajectory_answers_are_said_in_the_frame_asked_for():
    memory, answerer = SpatialMemory(), GeometricAnswerer()
    walk(memory, 3)   # now at (0.6, 0, 0.8) in odom
    T_map_odom = make_pose(matrix_from_rpy(0.0, 0.0, np.pi / 2), [1.0, 2.0, 0.0])
    where = answerer.answer('where am I?', memory.snapshot().trajectory_in(T_map_odom, 'map'), 101.0)
    assert where.frame == 'map' and np.allclose(where.pose[:3, 3], [1.0, 2.6, 0.8])
    assert 'x=1.00 m, y=2.60 m, z=0.80 m in map' in where.answer
    start = answerer.answer('where did I start?', memory.snapshot().trajectory_in(T_map_odom, 'map'), 101.0)
    assert np.allclose(start.points[0], [1.0, 2.0, 0.0])


def test_questions_needing_a_language_model_are_declined_not_guessed():
    memory = SpatialMemory()
    walk(memory, 3)
    answer = GeometricAnswerer().answer('how far is the chair?', memory.snapshot(), 101.0)
    assert not answer.success and answer.message == NO_MODEL_MESSAGE and answer.answer == ''


def test_situated_localization_is_left_to_the_question_model():
    memory = SpatialMemory()
    walk(memory, 3)
    snap = memory.snapshot()
    situated = GeometricAnswerer().answer(
        'I am facing the sofa and the lamp is on my left. Where am I?', snap, 101.0)
    assert not situated.success and situated.message == NO_MODEL_MESSAGE
    bare = GeometricAnswerer().answer('  where am I right now?', snap, 101.0)
    assert bare.success and bare.pose is not None and bare.answer.startswith('the camera is at')


def test_count_and_empty_memory():
    memory, answerer = SpatialMemory(), GeometricAnswerer()
    assert not answerer.answer('where am i', memory.snapshot(), 0.0).success
    memory.add_keyframe(1.0, np.eye(4), np.zeros((2, 3)), np.ones((2, 3)))
    count = answerer.answer('How many keyframes are in memory?', memory.snapshot(), 0.0)
    assert count.success and count.value == 1


def test_concurrent_writers_and_readers_see_consistent_snapshots():
    memory, answerer, errors = SpatialMemory(max_keyframes=16, max_trajectory=500), \
        GeometricAnswerer(), []

    def write():
        for i in range(400):
            memory.record_pose(float(i), make_pose(np.eye(3), [0.01 * i, 0, 0]))
            if i % 20 == 0:
                memory.add_keyframe(float(i), make_pose(np.eye(3), [0.01 * i, 0, 0]),
                                    np.ones((48, 64)), np.ones((48, 3)))

    def read():
        for _ in range(200):
            snap = memory.snapshot()
            if len(snap.trajectory_stamps) != len(snap.trajectory_poses):
                errors.append('torn snapshot')
            answerer.answer('how far have I travelled', snap, 0.0)

    threads = [threading.Thread(target=write)] + [threading.Thread(target=read) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert memory.snapshot().distance_travelled == pytest.approx(3.99)


def test_a_question_with_16_keyframes_takes_well_under_100_ms():
    memory, answerer = SpatialMemory(), GeometricAnswerer()
    for i in range(16):
        memory.add_keyframe(float(i), make_pose(np.eye(3), [i, 0, 0]), np.ones((48, 64)),
                            np.ones((48, 3)))
    walk(memory, 5000, dt=0.033)
    start = time.perf_counter()
    for _ in range(10):
        answerer.answer('where was I at t=150', memory.snapshot(), 0.0)
    assert (time.perf_counter() - start) / 10 < 0.1


def test_chained_answerer_falls_through_only_on_no_model():
    from geovr_ros.memory import Answer, ChainedAnswerer

    class Fixed:
        name = 'fixed'

        def __init__(self, answer):
            self.calls, self._answer = 0, answer

        def answer(self, question, memory, now):
            self.calls += 1
            return self._answer

    memory = SpatialMemory()
    walk(memory, 3)
    second = Fixed(Answer(True, 'ok', 'a chair', 'object', 1.0, 'm'))
    chain = ChainedAnswerer([GeometricAnswerer(), second])
    assert chain.answer('how far have I travelled?', memory.snapshot(), 0.0).unit == 'm'
    assert second.calls == 0
    assert chain.answer('how far is the chair?', memory.snapshot(), 0.0).answer == 'a chair'
    refusing = ChainedAnswerer([Fixed(Answer(False, 'not English')), second])
    assert refusing.answer('wo ist der Stuhl', memory.snapshot(), 0.0).message == 'not English'
    assert chain.name == 'geometric+fixed'


def test_new_view_by_motion_from_the_newest_keyframe():
    memory = SpatialMemory()
    assert memory.is_new_view(np.eye(4), 0.5, 0.3)
    memory.add_keyframe(0.0, np.eye(4), np.zeros((1, 2)), np.ones((1, 3)))
    assert not memory.is_new_view(make_pose(np.eye(3), [0.4, 0, 0]), 0.5, 0.3)
    assert memory.is_new_view(make_pose(np.eye(3), [0.6, 0, 0]), 0.5, 0.3)
    turned = make_pose(np.array([[np.cos(0.4), -np.sin(0.4), 0], [np.sin(0.4), np.cos(0.4), 0],
                                 [0, 0, 1]]), [0, 0, 0])
    assert memory.is_new_view(turned, 0.5, 0.3)


# Users' wordings of the trajectory questions (session 36: written before running them; 5 of 15
# answered then). Each: (question, category, value or position).
TRAJECTORY_WORDINGS = [
    ('How far has the robot travelled?', 'distance', 5.0),
    ('How far has the camera moved?', 'distance', 5.0),
    ('What distance have we covered?', 'distance', 5.0),
    ('What is the total distance travelled?', 'distance', 5.0),
    ('How many meters have I walked?', 'distance', 5.0),
    ('How far did the robot drive?', 'distance', 5.0),
    ('How much distance have you covered so far?', 'distance', 5.0),
    ('What is my position?', 'pose', (3.0, 0.0, 4.0)),
    ("What's my current location?", 'pose', (3.0, 0.0, 4.0)),
    ('Where are you now?', 'pose', (3.0, 0.0, 4.0)),
    ('Where is the camera right now?', 'pose', (3.0, 0.0, 4.0)),
    ('How long has the robot been moving?', 'duration', 5.0),
    ('For how long have you been recording?', 'duration', 5.0),
    ('Where was the robot 2 seconds ago?', 'pose', (1.8, 0.0, 2.4)),
    ('Where were we 2 s ago?', 'pose', (1.8, 0.0, 2.4)),
    # session 41, written before running them: speeds, a recent span, more starts and durations
    ('How fast am I moving?', 'speed', 1.0),
    ("What's my speed?", 'speed', 1.0),
    ('What is my average speed?', 'speed', 1.0),
    ('Am I moving?', 'speed', 1.0),
    ('How far did I move in the last 2 seconds?', 'distance', 2.0),
    ('How long ago did we start?', 'duration', 5.0),
    ('How much time has passed?', 'duration', 5.0),
    ('What was my position at the start?', 'pose', (0.0, 0.0, 0.0)),
]


@pytest.mark.parametrize('question, category, expected', TRAJECTORY_WORDINGS, ids=[w[0] for w in TRAJECTORY_WORDINGS])
def test_users_wordings_of_trajectory_questions(question, category, expected):
    memory = SpatialMemory()
    walk(memory, 11)
    answer = GeometricAnswerer().answer(question, memory.snapshot(), now=105.0)
    assert answer.success and answer.category == category, answer.message
    if category == 'pose':
        assert answer.points[0] == pytest.approx(expected)
    else:
        assert answer.value == pytest.approx(expected)


@pytest.mark.parametrize('question', ['What is the position of the chair?', 'Where is the chair?',
                                      'How far has the chair moved from the table?', 'What is my favourite colour?'])
def test_questions_about_objects_are_not_taken_for_the_trajectory(question):
    memory = SpatialMemory()
    walk(memory, 3)
    assert not GeometricAnswerer().answer(question, memory.snapshot(), 101.0).success


def test_coordinates_in_answers_never_read_minus_zero():
    from geovr_ros.memory.answerer import centimetres
    assert centimetres(-1e-17) == '0.00' and centimetres(-0.004) == '0.00'   # a pose at its frame's origin
    assert centimetres(-0.006) == '-0.01' and centimetres(1.234) == '1.23'


def test_speed_and_recent_way_after_standing_still():
    """1 m/s for 5 s, then 2 s standing: the current speed is over the last second (0: "no"),
    the average over the whole time; a recent span reaching before odometry began counts all
    of its way and says so; a span of no time is refused; a span older than the poses kept is
    refused naming when they begin."""
    memory = SpatialMemory()
    walk(memory, 11)
    for i in range(4):
        memory.record_pose(105.5 + 0.5 * i, make_pose(np.eye(3), (3.0, 0.0, 4.0)))
    ask = GeometricAnswerer().answer
    still = ask('Am I moving?', memory.snapshot(), 107.0)
    assert still.value == pytest.approx(0.0) and still.unit == 'm/s' and still.answer.startswith('no: 0.00 m/s')
    assert ask('What is my average speed?', memory.snapshot(), 107.0).value == pytest.approx(5.0 / 7.0)
    recent = ask('How far did I move in the last 3 seconds?', memory.snapshot(), 107.0)
    assert recent.value == pytest.approx(1.0) and 'since t=104.000 s' in recent.answer
    whole = ask('how far have I walked in the past minute?', memory.snapshot(), 107.0)
    assert whole.value == pytest.approx(5.0) and 'all since odometry started at t=100.000 s' in whole.answer
    assert not ask('How far did I move in the last 0 seconds?', memory.snapshot(), 107.0).success
    late = ask('How far did I move in the last 2 seconds?', memory.snapshot(), 200.0)   # no frame since 107 s
    assert not late.success and 'no frame processed in the last 2 s' in late.message
    short = SpatialMemory(max_trajectory=4)
    walk(short, 11)
    dropped = ask('How far did I move in the last 4 seconds?', short.snapshot(), 105.0)
    assert not dropped.success and 'older poses were dropped' in dropped.message
