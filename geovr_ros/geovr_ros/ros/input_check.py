"""Why an input topic stays silent: no publisher, another message type, or a QoS that never matches.

The most common complaint about ROS perception nodes is that they receive nothing and say
nothing (a topic name off by a namespace, a driver publishing best effort to a reliable
subscription). `silent_topic_reason` turns what the ROS graph shows about a topic into one
sentence the node logs; the node gathers the graph (`Node.get_publishers_info_by_topic`,
`Node.get_topic_names_and_types`) and calls it. Pure Python, no rclpy.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoint:
    """A publisher of a topic as the ROS graph reports it.

    node: its node's full name ('/ns/name'); topic_type: 'sensor_msgs/msg/Image';
    reliability, durability: its offered QoS, lower case ('reliable', 'best_effort',
    'volatile', 'transient_local'; anything else is not judged)."""
    node: str
    topic_type: str
    reliability: str
    durability: str


def endpoints(infos) -> list[Endpoint]:
    """Endpoints of rclpy's TopicEndpointInfo objects (`Node.get_publishers_info_by_topic`;
    read by attribute: node_name, node_namespace, topic_type, qos_profile)."""
    return [Endpoint(f'{info.node_namespace.rstrip("/")}/{info.node_name}', info.topic_type,
                     info.qos_profile.reliability.name.lower(), info.qos_profile.durability.name.lower())
            for info in infos]


def message_type_name(msg_type) -> str:
    """'sensor_msgs/msg/Image' for the generated class sensor_msgs.msg.Image."""
    return f'{msg_type.__module__.split(".")[0]}/msg/{msg_type.__name__}'


def incompatible_qos(publisher: Endpoint, reliability: str, durability: str) -> str | None:
    """The policy that keeps `publisher` from ever matching a subscription asking `reliability`
    and `durability` (DDS request-offered rules), as 'reliability' or 'durability'; None when
    they match or the subscription's policy is 'system_default' (not judged)."""
    if reliability == 'reliable' and publisher.reliability == 'best_effort':
        return 'reliability'
    if durability == 'transient_local' and publisher.durability == 'volatile':
        return 'durability'
    return None


def silent_topic_reason(topic: str, expected_type: str, publishers: list[Endpoint], reliability: str,
                        durability: str, topic_types: list[tuple[str, list[str]]], silent_s: float,
                        redirect: str, own_topics: frozenset[str] = frozenset()) -> str:
    """One sentence on why nothing arrived on `topic` for `silent_s` seconds.

    expected_type: the type the node subscribes with ('sensor_msgs/msg/Image'); publishers:
    the topic's publishers; reliability, durability: the node's subscription QoS;
    topic_types: every (topic, [types]) of the graph; redirect: how the node is pointed at
    another topic (e.g. 'remap image:=<topic>'); own_topics: the node's own outputs, never
    suggested."""
    head = f'nothing received on {topic} for {silent_s:.0f} s'
    if not publishers:
        others = sorted(name for name, types in topic_types
                        if expected_type in types and name != topic and name not in own_topics)
        if others:
            shown = ', '.join(others[:5]) + (f' and {len(others) - 5} more' if len(others) > 5 else '')
            return (f'{head}: no node publishes it; {expected_type} is published on {shown} '
                    f'({redirect})')
        return (f'{head}: no node publishes it, and no topic here carries {expected_type}: is the '
                f'camera driver running, with the same ROS_DOMAIN_ID and discovery range?')
    wrong = sorted({p.topic_type for p in publishers if p.topic_type != expected_type})
    if wrong and len(wrong) == len({p.topic_type for p in publishers}):
        return f'{head}: it carries {", ".join(wrong)}, not {expected_type}'
    typed = [p for p in publishers if p.topic_type == expected_type]
    clashes = [(p, incompatible_qos(p, reliability, durability)) for p in typed]
    if all(policy is not None for _, policy in clashes):
        p, policy = clashes[0]
        offered = p.reliability if policy == 'reliability' else p.durability
        asked = reliability if policy == 'reliability' else durability
        fix = 'qos_reliability:=best_effort (matches every publisher)' if policy == 'reliability' \
            else 'a volatile subscription'
        return (f'{head}: its publisher{"s" if len(typed) > 1 else ""} ({", ".join(q.node for q, _ in clashes)}) '
                f'offer{"" if len(typed) > 1 else "s"} {policy} {offered} and this node asks {asked}: they never '
                f'match; set {fix}')
    matching = [p.node for p, policy in clashes if policy is None]
    return (f'{head} although {len(matching)} publisher{"s" if len(matching) > 1 else ""} '
            f'match{"" if len(matching) > 1 else "es"} ({", ".join(matching)}): is the camera streaming? '
            f'(some drivers publish only once triggered)')
