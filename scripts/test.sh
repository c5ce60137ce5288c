#!/usr/bin/env bash
# The test command: set up (idempotent), then run every test of the project.
#
#   bash scripts/test.sh [pytest args...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/bootstrap.sh
# shellcheck source=ros_env.sh
source scripts/ros_env.sh
exec .venv/bin/python -m pytest geovr_ros/test training/tests "$@"
