"""Test-session set-up shared by every geovr_ros test.

Every rclpy process of this project must run with the loopback-only network settings
(scripts/ros_env.sh). This file refuses to run the tests without them and gives the
session a private ROS domain, so parallel test runs never see each other.
"""
from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import pytest

try:  # property tests draw the same examples on every run: CI is reproducible
    from hypothesis import settings as _hypothesis_settings
    _hypothesis_settings.register_profile('geovr', derandomize=True)
    _hypothesis_settings.load_profile('geovr')
except ImportError:
    pass

REPO_ROOT = Path(__file__).resolve().parents[2]
LOOPBACK_PROFILE = REPO_ROOT / 'geovr_ros' / 'config' / 'fastdds_loopback.xml'


def _network_safety_problems(env: dict[str, str]) -> list[str]:
    problems = []
    if env.get('ROS_AUTOMATIC_DISCOVERY_RANGE') != 'LOCALHOST':
        problems.append('ROS_AUTOMATIC_DISCOVERY_RANGE is not LOCALHOST')
    if env.get('ROS_LOCALHOST_ONLY') != '1':
        problems.append('ROS_LOCALHOST_ONLY is not 1')
    profile = env.get('FASTDDS_DEFAULT_PROFILES_FILE', '')
    if not profile or Path(profile).resolve() != LOOPBACK_PROFILE.resolve():
        problems.append(f'FASTDDS_DEFAULT_PROFILES_FILE={profile!r} is not {LOOPBACK_PROFILE}')
    return problems


def pytest_configure(config: pytest.Config) -> None:
    problems = _network_safety_problems(dict(os.environ))
    if problems:
        pytest.exit('refusing to run: the loopback-only ROS environment is not set ('
                    + '; '.join(problems) + '). Run `source scripts/ros_env.sh` or use '
                    'the .venv created by scripts/bootstrap.sh.', returncode=3)
    # A private domain per test session (Fast DDS accepts 0..232; keep clear of 0).
    if 'GEOVR_TEST_DOMAIN_FIXED' not in os.environ:
        os.environ['ROS_DOMAIN_ID'] = str(random.Random(os.getpid()).randint(100, 199))


@pytest.fixture(scope='session')
def ros_env() -> dict[str, str]:
    """Environment for subprocesses that start rclpy: loopback-only, this session's domain."""
    env = dict(os.environ)
    env['PYTHONUNBUFFERED'] = '1'
    assert not _network_safety_problems(env)
    return env


@pytest.fixture(scope='session')
def venv_python() -> str:
    """The interpreter running the tests (the project's .venv), for subprocesses."""
    return sys.executable
