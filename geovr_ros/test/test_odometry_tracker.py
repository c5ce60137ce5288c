"""OdometryTracker: composition against references, stamp checks, velocities."""
import numpy as np
import pytest

from geovr_ros.geometry import make_pose, relative_pose
from geovr_ros.odometry import OdometryTracker, StampCheck


def rot_z(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def trajectory(n):
    return [make_pose(rot_z(0.05 * i), [0.1 * i, 0.02 * i * i, 0.0]) for i in range(n)]


def test_exact_relative_poses_reproduce_the_trajectory_across_reference_switches():
    poses = trajectory(40)
    tracker = OdometryTracker(reference_translation=0.25, reference_rotation=0.2,
                              max_reference_frames=7)
    tracker.start(0.0)
    T_odom_ref, switches = poses[0], 0
    for i in range(1, len(poses)):
        update = tracker.update(0.1 * i, relative_pose(T_odom_ref, poses[i]))
        assert np.allclose(update.T_odom_cam, relative_pose(poses[0], poses[i]), atol=1e-9)
        if update.new_reference:
            T_odom_ref, switches = poses[i], switches + 1
    assert switches >= 5
    steps = [np.linalg.norm(poses[i][:3, 3] - poses[i - 1][:3, 3]) for i in range(1, 40)]
    assert tracker.distance_travelled == pytest.approx(sum(steps))


def test_velocity_is_in_the_camera_frame():
    tracker = OdometryTracker()
    tracker.start(1.0)
    step = make_pose(rot_z(0.1), [0.0, 0.0, 0.5])
    update = tracker.update(1.5, step)
    assert np.allclose(update.linear_velocity, [0, 0, 1.0])
    assert np.allclose(update.angular_velocity, [0, 0, 0.2])


@pytest.mark.parametrize('stamp, verdict', [(10.0, StampCheck.REPEATED),
                                            (9.5, StampCheck.OUT_OF_ORDER),
                                            (5.0, StampCheck.JUMP_BACK),
                                            (10.1, StampCheck.OK)])
def test_stamp_checks(stamp, verdict):
    tracker = OdometryTracker(time_jump_threshold=1.0)
    tracker.start(10.0)
    assert tracker.check_stamp(stamp) is verdict


def test_bad_updates_raise_with_the_value():
    tracker = OdometryTracker()
    with pytest.raises(ValueError, match='before start'):
        tracker.update(1.0, np.eye(4))
    tracker.start(1.0)
    with pytest.raises(ValueError, match='not newer'):
        tracker.update(1.0, np.eye(4))
    bad = np.eye(4)
    bad[0, 3] = np.nan
    with pytest.raises(ValueError, match='finite'):
        tracker.update(2.0, bad)
    with pytest.raises(ValueError, match='reference_translation'):
        OdometryTracker(reference_translation=-1)
    with pytest.raises(ValueError, match='max_reference_frames must be >= 1, got 0'):
        OdometryTracker(max_reference_frames=0)


def test_one_frame_references_chain_every_frame_to_the_previous():
    """max_reference_frames=1 (geovr_node's default): each frame becomes the reference, even
    without motion, and the poses still compose exactly."""
    poses = trajectory(6)
    poses[3] = poses[2]  # a frame that does not move
    tracker = OdometryTracker(max_reference_frames=1)
    tracker.start(0.0)
    for i in range(1, 6):
        update = tracker.update(float(i), relative_pose(poses[i - 1], poses[i]))
        assert update.new_reference
        np.testing.assert_allclose(update.T_odom_cam, relative_pose(poses[0], poses[i]), atol=1e-9)


def test_stamp_gate_one_outlier_frame_never_restarts_anything():
    from geovr_ros.odometry import StampGate
    gate = StampGate(time_jump_threshold=1.0, confirm_frames=3)
    assert gate.check(10.1, 10.0) is StampCheck.OK
    for outlier in (0.0, 1e9, 5.0):           # stamped 0, far in the future, a bag loop
        assert gate.check(outlier, 10.1) is StampCheck.JUMP_PENDING
        assert gate.check(10.2, 10.1) is StampCheck.OK      # the old timeline goes on
        assert gate.pending == 0
    assert gate.check(10.1, 10.1) is StampCheck.REPEATED
    assert gate.check(9.5, 10.1) is StampCheck.OUT_OF_ORDER


def test_stamp_gate_a_sustained_jump_restarts_after_three_consecutive_frames():
    from geovr_ros.odometry import StampGate
    gate = StampGate(time_jump_threshold=1.0, confirm_frames=3)
    assert [gate.check(s, 60.0) for s in (10.0, 10.0, 10.1, 10.1, 10.2)] == [
        StampCheck.JUMP_PENDING] * 4 + [StampCheck.JUMP_BACK]   # resends neither count nor reset
    # Candidates must form one timeline: scattered outliers never add up to a jump.
    assert [gate.check(s, 60.0) for s in (10.0, 0.0, 10.1, 5.0, 30.0)] == [
        StampCheck.JUMP_PENDING] * 5
    # A long pause forwards is believed after the same confirmation, without a restart.
    gate = StampGate(1.0, 3)
    assert [gate.check(s, 60.0) for s in (70.0, 70.1, 70.2)] == [
        StampCheck.JUMP_PENDING, StampCheck.JUMP_PENDING, StampCheck.JUMP_FORWARD]
    assert gate.check(0.0, None) is StampCheck.OK   # nothing accepted yet: any stamp starts


def test_stamp_gate_believes_a_pause_the_receive_clock_saw_too():
    """A camera that stops for two minutes and then sends one frame every 5 s (a client that
    waits for each depth): with arrival times the pause is believed at once; without, such a
    sender could never confirm it (each candidate more than the threshold after the last)."""
    from geovr_ros.odometry import StampGate
    gate = StampGate(time_jump_threshold=1.0, confirm_frames=3)
    assert gate.check(100.0, None, arrival=5000.0) is StampCheck.OK
    assert gate.check(100.1, 100.0, arrival=5000.1) is StampCheck.OK
    assert gate.check(220.1, 100.1, arrival=5120.2) is StampCheck.JUMP_FORWARD   # 120 s both ways
    assert gate.check(225.1, 220.1, arrival=5125.2) is StampCheck.JUMP_FORWARD   # 5 s later: still a pause
    # a stamp far in the future that the receive clock did not see stays an outlier...
    assert gate.check(1e9, 225.1, arrival=5125.3) is StampCheck.JUMP_PENDING
    assert gate.check(225.2, 225.1, arrival=5125.4) is StampCheck.OK
    # ...unless a run of frames confirms it, their stamps advancing like their arrivals
    assert [gate.check(s, 225.2, arrival=a) for s, a in ((900.0, 5126.0), (905.0, 5131.0), (910.0, 5136.0))] \
        == [StampCheck.JUMP_PENDING, StampCheck.JUMP_PENDING, StampCheck.JUMP_FORWARD]
    slow = StampGate(1.0, 3)                              # the same sender without arrival times
    slow.check(100.0, None)
    assert [slow.check(s, 100.0) for s in (220.0, 225.0, 230.0, 235.0)] == [StampCheck.JUMP_PENDING] * 4


def test_stamp_gate_confirms_a_jump_of_frames_close_in_stamps_whatever_their_arrival():
    """A bag looped and replayed slowly: stamps 0.1 s apart arriving 2 s apart are one timeline."""
    from geovr_ros.odometry import StampGate
    gate = StampGate(1.0, 3)
    assert gate.check(60.0, None, arrival=0.0) is StampCheck.OK
    assert [gate.check(s, 60.0, arrival=a) for s, a in ((10.0, 2.0), (10.1, 4.0), (10.2, 6.0))] == [
        StampCheck.JUMP_PENDING, StampCheck.JUMP_PENDING, StampCheck.JUMP_BACK]
