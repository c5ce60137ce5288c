"""`geovr_ros.geometry.odometry_scale`: the depth's scale from a reference odometry's distances."""
from __future__ import annotations

import numpy as np
import pytest

from geovr_ros.geometry import OdometryScale, ReferenceTrajectory, ShapeError, make_pose


def at(x: float) -> np.ndarray:
    return make_pose(np.eye(3), np.array([x, 0.0, 0.0]))


def test_the_reference_is_interpolated_between_the_stamps_that_bracket_it():
    reference = ReferenceTrajectory(history_s=10.0)
    reference.add(1.0, [0.0, 0.0, 0.0])
    reference.add(2.0, [1.0, 2.0, 0.0])
    assert np.allclose(reference.position_at(1.25), [0.25, 0.5, 0.0])
    assert np.allclose(reference.position_at(2.0), [1.0, 2.0, 0.0])
    assert reference.position_at(0.5) is None and reference.position_at(2.5) is None   # no extrapolation
    reference.add(2.0, [1.0, 4.0, 0.0])                     # the same stamp again: its position replaced
    assert len(reference) == 2 and np.allclose(reference.position_at(1.5), [0.5, 2.0, 0.0])
    reference.add(20.0, [5.0, 0.0, 0.0])                    # the history keeps its last 10 s
    assert len(reference) == 1 and reference.position_at(1.5) is None
    reference.add(3.0, [0.0, 0.0, 0.0])                     # a clock that went back: a new history
    assert len(reference) == 1 and reference.position_at(20.0) is None
    with pytest.raises(ShapeError, match='finite'):
        reference.add(4.0, [np.nan, 0.0, 0.0])
    with pytest.raises(ValueError, match='stamp'):
        reference.add(float('inf'), [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match='history_s'):
        ReferenceTrajectory(history_s=0.0)


def drive(scale: OdometryScale, model_error: float, alignment: float = 1.0, steps: int = 40,
          step_m: float = 0.01, keyframe_every: int = 3, reference_error: float = 0.0) -> list[float]:
    """A camera moving step_m metres a frame along x, a keyframe every few frames, the
    tracker's distances in its keyframe's units: those of a model whose depth is `model_error`
    times the truth, times the factor applied when the keyframe was made and the tracker's own
    `alignment`; what `Session.process` feeds `OdometryScale.update`. Returns the factor
    after each frame."""
    factors, T_odom = [], np.eye(4)
    kf_units = model_error * scale.scale * alignment          # tracker units per metre, first keyframe
    for i in range(steps):
        stamp = 10.0 + i / 30
        scale.reference.add(stamp, [i * step_m * (1 + reference_error), 0.0, 0.0])
        if i:
            T_odom = T_odom @ at(step_m * kf_units)
        new_keyframe = i % keyframe_every == 0
        applied = scale.scale
        factors.append(scale.update(stamp, T_odom, i > 0, new_keyframe, kf_units / model_error))
        if new_keyframe:
            kf_units = model_error * applied * alignment
    return factors


def test_poses_are_interpolated_along_the_shortest_rotation_and_give_the_motion_between_stamps():
    from geovr_ros.geometry import invert_pose, so3_exp
    reference = ReferenceTrajectory(history_s=10.0)
    turn = so3_exp(np.array([0.0, 0.0, 0.6]))             # 0.6 rad about z between 1 s and 2 s
    reference.add(1.0, [0.0, 0.0, 0.0], np.eye(3))
    reference.add(2.0, [1.0, 0.0, 0.0], turn)
    halfway = reference.pose_at(1.5)
    np.testing.assert_allclose(halfway[:3, :3], so3_exp(np.array([0.0, 0.0, 0.3])), atol=1e-12)
    np.testing.assert_allclose(halfway[:3, 3], [0.5, 0.0, 0.0])
    motion = reference.motion(1.0, 2.0)                    # in the camera's axes at 1 s
    np.testing.assert_allclose(motion, make_pose(turn, [1.0, 0.0, 0.0]), atol=1e-12)
    np.testing.assert_allclose(reference.motion(1.5, 2.0), invert_pose(halfway) @ reference.pose_at(2.0))
    assert reference.motion(0.5, 2.0) is None and reference.motion(1.0, 2.5) is None   # not held
    ahead = reference.pose_at(2.2, extrapolate_s=0.25)     # a reference that lags: carried on at its last velocity
    np.testing.assert_allclose(ahead[:3, :3], so3_exp(np.array([0.0, 0.0, 0.72])), atol=1e-12)
    np.testing.assert_allclose(ahead[:3, 3], [1.2, 0.0, 0.0])
    assert reference.pose_at(2.2) is None and reference.pose_at(2.3, extrapolate_s=0.25) is None
    np.testing.assert_allclose(reference.motion(2.0, 2.1, 0.25)[:3, :3], so3_exp(np.array([0.0, 0.0, 0.06])), atol=1e-12)
    reference.add(3.0, [2.0, 0.0, 0.0])                    # a position alone: no orientation there
    assert reference.pose_at(2.5) is None and reference.position_at(2.5) is not None
    for bad in (np.eye(3) * 2, np.full((3, 3), np.nan)):
        with pytest.raises(ValueError, match='rotation'):
            reference.add(4.0, [0.0, 0.0, 0.0], bad)


def test_a_model_twice_too_far_is_scaled_by_a_half_without_chasing_its_own_factor():
    scale = OdometryScale(window=30, min_motion=0.05)
    assert scale.scale == 1.0
    factors = drive(scale, model_error=2.0, alignment=0.8, steps=60)
    assert scale.samples >= 5 and factors[-1] == pytest.approx(0.5, rel=1e-6)
    assert factors[0] == 1.0 and factors[5] == 1.0            # no sample before 5 cm of reference motion
    # the factor applied after the first sample is undone by the next ones: no drift, no oscillation
    assert np.allclose([f for f in factors if f != 1.0], 0.5)


def test_the_reference_errors_pass_into_the_scale_and_turning_in_place_gives_none():
    scale = OdometryScale(min_motion=0.05)
    drive(scale, model_error=2.0, reference_error=0.05)     # a wheel 5 % large
    assert scale.scale == pytest.approx(0.5 * 1.05, rel=1e-6)
    still = OdometryScale(min_motion=0.05)
    drive(still, model_error=2.0, step_m=0.0005)             # 2 cm in all: a camera turning in place
    assert still.samples == 0 and still.scale == 1.0


def test_a_fallback_keyframe_or_a_missing_reference_breaks_the_chain():
    scale = OdometryScale(min_motion=0.05)
    scale.reference.add(0.0, [0.0, 0.0, 0.0])
    scale.reference.add(10.0, [1.0, 0.0, 0.0])
    scale.update(1.0, at(0.0), True, True)
    scale.update(3.0, at(0.2), True, False)                  # tracked from the keyframe: 0.2 m both
    scale.update(4.0, at(0.35), True, True, 2.0)             # a keyframe in units 2 per model unit:
    assert scale.samples == 1 and scale.scale == pytest.approx(2.0)   # 0.2 m over 0.1 model units
    scale.update(4.5, at(0.45), True, False)
    scale.update(5.0, at(0.6), False, True, 2.0)             # placed by the motion model: no sample
    scale.update(5.5, at(0.7), True, False)
    scale.update(6.0, at(0.8), True, True)                   # the map's units unknown: no sample
    scale.update(6.5, at(0.9), True, False)
    scale.update(7.0, at(1.0), True, True, 1.0)              # straight after the unknown: a sample
    assert scale.samples == 2
    scale.update(20.0, at(1.2), True, True, 1.0)             # nothing tracked from the last keyframe
    scale.update(25.0, at(1.3), True, False)                 # past the reference's newest stamp
    scale.update(26.0, at(1.4), True, True, 1.0)
    assert scale.samples == 2
    scale.restart()                                          # the learned scale stays
    assert len(scale.reference) == 0 and scale.samples == 2 and scale.scale > 1.0


def test_the_scale_is_the_median_of_its_window():
    scale = OdometryScale(window=3, min_motion=0.05)
    for stamp in range(6):
        scale.reference.add(float(stamp), [0.1 * stamp, 0.0, 0.0])
    tracked = [0.0, 0.2, 0.3, 0.35, 0.45]                    # model units per 0.1 m: 2, 1, 0.5, 1
    for stamp, x in enumerate(tracked):
        scale.update(stamp - 0.001, at(x), True, False)     # the frame before each keyframe, where it is
        scale.update(float(stamp), at(x), True, True, 1.0)
    assert scale.samples == 4
    assert scale.scale == pytest.approx(1.0, rel=0.01)      # the last three: 1, 2, 1
    with pytest.raises(ValueError, match='window'):
        OdometryScale(window=0)
    with pytest.raises(ValueError, match='min_motion'):
        OdometryScale(min_motion=0.0)


def test_every_frame_a_keyframe_and_a_jittery_tracker_still_give_the_scale():
    """A camera turning or moving fast makes every frame a keyframe: each interval ends at the
    new keyframe itself. The tracker's positions jitter 1 cm sideways, as much as the camera
    moves in a frame: displacements are summed, not path lengths, so the jitter does not read
    as motion (summed lengths would give 0.5 / 1.41 here)."""
    scale = OdometryScale(window=30, min_motion=0.1)
    for i in range(60):
        stamp = 10.0 + i / 30
        scale.reference.add(stamp, [0.01 * i, 0.0, 0.0])
        jitter = 0.02 if i % 2 else 0.0                        # model units: 1 cm
        scale.update(stamp, make_pose(np.eye(3), np.array([0.02 * i, jitter, 0.0])), i > 0, True, 1.0)
    assert scale.samples >= 5 and scale.scale == pytest.approx(0.5, rel=0.02)


def test_a_median_within_the_tolerance_leaves_the_scale_where_it_is():
    """Every change of scale bends the tracker's map while it follows: a median within
    `tolerance` of the applied factor does not change it, one beyond does."""
    scale = OdometryScale(window=1, min_motion=0.05, tolerance=0.05)
    for stamp in range(5):
        scale.reference.add(float(stamp), [0.1 * stamp, 0.0, 0.0])
    factors = []
    for stamp, x in enumerate([0.0, 0.1, 0.197, 0.29, 0.385]):  # model units per 0.1 m: 1, 0.97, 0.93, 0.95
        scale.update(float(stamp), at(x), True, True, 1.0)
        factors.append(scale.scale)
    assert factors == pytest.approx([1.0, 1.0, 1.0, 0.1 / 0.093, 0.1 / 0.093])
    with pytest.raises(ValueError, match='tolerance'):
        OdometryScale(tolerance=-0.1)
