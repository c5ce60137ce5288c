#!/usr/bin/env bash
# The demo command (`make demo`): set up (idempotent), then run the whole system for real on a
# short rendered sequence and write demo_out/ (see docs/demo.md).
#
#   bash scripts/demo.sh [demo.py args...]     e.g. --frames 40, --out DIR, --rate 1.0
#
# Uses the models shipped in models/ and fails, naming what is missing, when there are none.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/bootstrap.sh
# A private ROS domain of its own (tests use 100..199), unless one is given.
export GEOVR_ROS_DOMAIN_ID="${GEOVR_ROS_DOMAIN_ID:-$((200 + RANDOM % 33))}"
# shellcheck source=ros_env.sh
source scripts/ros_env.sh
exec .venv/bin/python scripts/demo.py "$@"
