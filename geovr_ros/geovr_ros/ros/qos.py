"""QoS profiles from string parameters."""
from __future__ import annotations

from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy)

RELIABILITIES = {'best_effort': ReliabilityPolicy.BEST_EFFORT,
                 'reliable': ReliabilityPolicy.RELIABLE,
                 'system_default': ReliabilityPolicy.SYSTEM_DEFAULT}
DURABILITIES = {'volatile': DurabilityPolicy.VOLATILE,
                'transient_local': DurabilityPolicy.TRANSIENT_LOCAL,
                'system_default': DurabilityPolicy.SYSTEM_DEFAULT}


def qos_profile(reliability: str, durability: str = 'volatile', depth: int = 1) -> QoSProfile:
    """Keep-last `depth` profile; raises ValueError naming an unknown policy string."""
    if reliability not in RELIABILITIES:
        raise ValueError(f'QoS reliability {reliability!r} is not one of {list(RELIABILITIES)}')
    if durability not in DURABILITIES:
        raise ValueError(f'QoS durability {durability!r} is not one of {list(DURABILITIES)}')
    if int(depth) < 1:
        raise ValueError(f'QoS depth must be >= 1, got {depth!r}')
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=int(depth),
                      reliability=RELIABILITIES[reliability], durability=DURABILITIES[durability])


LATCHED = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                     reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
