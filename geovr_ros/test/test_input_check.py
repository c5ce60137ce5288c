"""Why an input topic stays silent, from what the ROS graph shows (pure; the node's use is in
test_node_bad_input.py)."""
from __future__ import annotations

from geovr_ros.ros.input_check import Endpoint, endpoints, incompatible_qos, message_type_name, silent_topic_reason

IMAGE = 'sensor_msgs/msg/Image'


def reason(publishers, reliability='best_effort', topic_types=(), own_topics=frozenset()):
    return silent_topic_reason('/camera/image_raw', IMAGE, publishers, reliability, 'volatile',
                               list(topic_types), 5.0, 'remap image:=<topic>', own_topics)


def test_no_publisher_names_the_topics_that_carry_the_type():
    said = reason([], topic_types=[('/camera/color/image_raw', [IMAGE]), ('/rosout', ['rcl_interfaces/msg/Log']),
                                   ('/camera/image_raw', [IMAGE])])
    assert said.startswith('nothing received on /camera/image_raw for 5 s: no node publishes it')
    assert 'published on /camera/color/image_raw (remap image:=<topic>)' in said and '/rosout' not in said
    many = reason([], topic_types=[(f'/cam{k}/image', [IMAGE]) for k in range(8)])
    assert '/cam4/image and 3 more' in many
    alone = reason([], topic_types=[('/rosout', ['rcl_interfaces/msg/Log']), ('/depth', [IMAGE])],
                   own_topics=frozenset({'/depth'}))   # the node's own depth output is no camera
    assert 'no topic here carries sensor_msgs/msg/Image' in alone and 'ROS_DOMAIN_ID' in alone


def test_another_type_on_the_topic():
    said = reason([Endpoint('/driver', 'sensor_msgs/msg/CompressedImage', 'reliable', 'volatile')])
    assert said.endswith('it carries sensor_msgs/msg/CompressedImage, not sensor_msgs/msg/Image')


def test_a_qos_that_never_matches_says_which_policy_and_the_fix():
    best_effort = Endpoint('/driver', IMAGE, 'best_effort', 'volatile')
    said = reason([best_effort], reliability='reliable')
    assert 'publisher (/driver) offers reliability best_effort and this node asks reliable' in said
    assert 'qos_reliability:=best_effort' in said
    assert incompatible_qos(best_effort, 'best_effort', 'volatile') is None      # best effort takes both
    assert incompatible_qos(Endpoint('/d', IMAGE, 'reliable', 'volatile'), 'reliable', 'volatile') is None
    assert incompatible_qos(best_effort, 'system_default', 'volatile') is None   # not judged
    assert incompatible_qos(best_effort, 'best_effort', 'transient_local') == 'durability'


def test_matching_publishers_that_send_nothing():
    said = reason([Endpoint('/a', IMAGE, 'reliable', 'volatile'), Endpoint('/b', IMAGE, 'best_effort', 'volatile')])
    assert 'although 2 publishers match (/a, /b): is the camera streaming?' in said
    # one publisher that matches among others that cannot: not a QoS problem
    mixed = reason([Endpoint('/a', IMAGE, 'reliable', 'volatile'), Endpoint('/b', IMAGE, 'best_effort', 'volatile')],
                   reliability='reliable')
    assert 'although 1 publisher matches (/a)' in mixed


def test_rclpy_endpoint_infos_and_message_types_are_read():
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from rclpy.topic_endpoint_info import TopicEndpointInfo
    from sensor_msgs.msg import Image
    info = TopicEndpointInfo(node_name='driver', node_namespace='/camera', topic_type=IMAGE,
                             qos_profile=QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT,
                                                    durability=DurabilityPolicy.VOLATILE))
    assert endpoints([info]) == [Endpoint('/camera/driver', IMAGE, 'best_effort', 'volatile')]
    root = TopicEndpointInfo(node_name='driver', node_namespace='/', topic_type=IMAGE, qos_profile=QoSProfile(depth=1))
    assert endpoints([root])[0].node == '/driver'
    assert message_type_name(Image) == IMAGE
