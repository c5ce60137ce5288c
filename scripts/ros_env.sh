# Network-safe ROS 2 environment of GeoVR-ROS. Source it; do not execute it.
#
#   source scripts/ros_env.sh
#
# Every rclpy process of this project (tests, demo, CI, experiments) runs with it:
# discovery stays on this host, and Fast DDS uses the loopback-only profile shipped in
# geovr_ros/config/fastdds_loopback.xml (shared memory + UDP whitelisted to 127.0.0.1).
# The .venv carries the same settings in a start-up hook (scripts/bootstrap.sh), so a
# Python started from .venv is safe even when this file was not sourced.

_geovr_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)"

export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST   # Kilted and later
export ROS_LOCALHOST_ONLY=1                      # the older spelling (Humble)
export RMW_IMPLEMENTATION=rmw_fastrtps_cpp
export FASTDDS_DEFAULT_PROFILES_FILE="$_geovr_root/geovr_ros/config/fastdds_loopback.xml"
# A private domain per checkout (1..99, from a hash of its path), so two checkouts on one
# host do not see each other's nodes; 0 is what every other ROS 2 process on a host uses,
# 100-199 are the test sessions' and 200-232 the demo's. GEOVR_ROS_DOMAIN_ID chooses one.
_geovr_domain=$(( 1 + $(printf '%s' "$_geovr_root" | cksum | cut -d' ' -f1) % 99 ))
export ROS_DOMAIN_ID="${GEOVR_ROS_DOMAIN_ID:-$_geovr_domain}"
if [[ -z "${GEOVR_QUIET:-}" ]]; then
  echo "ros_env: ROS_DOMAIN_ID=$ROS_DOMAIN_ID (loopback only; set GEOVR_ROS_DOMAIN_ID to choose)" >&2
fi
unset _geovr_domain

unset _geovr_root
