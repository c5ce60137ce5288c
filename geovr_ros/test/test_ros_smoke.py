"""Real ROS 2 between two real processes, over the project's loopback-only DDS profile."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PEER = Path(__file__).with_name('smoke_peer.py')


def test_service_tf_and_images_up_to_full_hd_cross_between_processes(ros_env):
    server = subprocess.Popen([sys.executable, str(PEER), 'serve'], env=ros_env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        client = subprocess.run([sys.executable, str(PEER), 'client'], env=ros_env,
                                capture_output=True, text=True, timeout=90)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    assert client.returncode == 0, client.stderr
    report = json.loads(client.stdout.strip().splitlines()[-1])
    assert report.get('answer') == {'success': True, 'answer': 'echo: how far is the chair?',
                                    'value': 21.0, 'unit': 'count'}, report
    assert ['odom', 'camera_optical_frame', 1.5] in report['tf']
    # The DDS profile's shared-memory transport is what makes this hold for
    # best-effort 640x480 images: every one of the 100 must arrive, intact.
    assert report['image_ok']
    assert report['images_received'] == 100, report
    assert report['hd_images_received'] == 5, report


def test_network_settings_are_loopback_only(ros_env):
    assert ros_env['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'LOCALHOST'
    assert ros_env['ROS_LOCALHOST_ONLY'] == '1'
    profile = Path(ros_env['FASTDDS_DEFAULT_PROFILES_FILE']).read_text()
    assert '<useBuiltinTransports>false</useBuiltinTransports>' in profile
    assert '<address>127.0.0.1</address>' in profile
    assert 0 < int(ros_env['ROS_DOMAIN_ID']) <= 232
