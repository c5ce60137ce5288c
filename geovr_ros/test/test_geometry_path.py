"""PathOdometer: path length at a resolution, jitter below it does not add up."""
import numpy as np
import pytest

from geovr_ros.geometry import PathOdometer, path_length


def test_a_straight_walk_is_measured_exactly_at_any_resolution():
    positions = np.c_[np.linspace(0, 3.0, 301), np.zeros(301), np.zeros(301)]
    for resolution in (0.0, 0.1, 0.25, 1.0):
        assert path_length(positions, resolution) == pytest.approx(3.0)


def test_jitter_adds_up_frame_by_frame_but_not_at_a_resolution():
    rng = np.random.default_rng(0)
    t = np.linspace(0, 10.0, 1001)                      # a 10 m straight walk, 1 cm per frame
    positions = np.c_[t, np.zeros_like(t), np.zeros_like(t)] + rng.normal(0, 0.01, (len(t), 3))
    assert path_length(positions) > 15.0                # 1 cm of jitter per axis: +50 % frame by frame
    assert path_length(positions, 0.25) == pytest.approx(10.0, rel=0.03)


def test_standing_still_with_jitter_travels_less_than_the_resolution():
    positions = np.random.default_rng(1).normal(0, 0.02, (500, 3))
    assert path_length(positions) > 10.0
    assert path_length(positions, 0.25) < 0.25


def test_a_circle_is_measured_by_chords():
    angle = np.linspace(0, 2 * np.pi, 2001)
    positions = np.c_[np.cos(angle), np.sin(angle), np.zeros_like(angle)]   # radius 1 m
    assert path_length(positions, 0.25) == pytest.approx(2 * np.pi, rel=0.01)


def test_the_odometer_follows_the_newest_position_and_ignores_non_finite_ones():
    odometer = PathOdometer(0.5)
    assert odometer.distance == 0.0
    odometer.add([0, 0, 0])
    odometer.add([0.3, 0, 0])
    assert odometer.distance == pytest.approx(0.3)          # the way since the last counted point
    odometer.add([np.nan, 0, 0])
    odometer.add([0.6, 0, 0])
    assert odometer.distance == pytest.approx(0.6)
    odometer.reset()
    assert odometer.distance == 0.0
    with pytest.raises(ValueError, match='resolution_m'):
        PathOdometer(-0.1)
