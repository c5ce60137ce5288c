#!/usr/bin/env bash
# Set up the GeoVR-ROS development environment in .venv. Idempotent: each step is
# skipped when its inputs are unchanged since it last succeeded (stamps in .venv/.stamps).
#
#   bash scripts/bootstrap.sh
#
# Steps: the venv and its pinned packages (ROS 2 Kilted wheels, torch CPU, ...), the
# wheels' CMake files mended for this interpreter, geovr_interfaces built and installed
# into the venv, tf2_msgs and vision_msgs stand-ins where none exist, geovr_ros and
# geovr_training installed in editable mode, and the network-safety start-up hook.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${GEOVR_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
STAMPS="$VENV/.stamps"
BUILD="$ROOT/build"
start=$(date +%s)

log() { printf '[bootstrap %3ds] %s\n' "$(( $(date +%s) - start ))" "$*"; }

# stamp_ok NAME HASH: true when step NAME last succeeded with the same input hash.
stamp_ok() { [[ -f "$STAMPS/$1" && "$(cat "$STAMPS/$1")" == "$2" ]]; }
stamp_set() { mkdir -p "$STAMPS"; printf '%s' "$2" > "$STAMPS/$1"; }
hash_of() { cat "$@" | sha256sum | cut -c1-16; }      # hash of files' contents

quiet_pip() {
  # pip's find-links warnings on this machine are noise; keep errors. Returns pip's status (the
  # filter's own is ignored), so that a failed install (a full disk) stops the bootstrap.
  local status=0
  "$PY" -m pip "$@" 2>&1 | { grep -v -e 'is ignored: it is neither a file nor a directory' \
    -e '^\s*$' || true; } || status=$?
  return "$status"
}

# --- 1. venv and pinned packages -------------------------------------------------------
if [[ ! -x "$PY" ]]; then
  log "creating $VENV"
  python3 -m venv "$VENV"
fi
req_hash=$(hash_of "$ROOT/scripts/requirements.txt")
if ! stamp_ok requirements "$req_hash"; then
  log "installing pinned packages (scripts/requirements.txt); a first run takes a few minutes"
  quiet_pip install --quiet --disable-pip-version-check -r "$ROOT/scripts/requirements.txt"
  stamp_set requirements "$req_hash"
else
  log "pinned packages up to date"
fi

# --- 2. mend the wheels' CMake files -----------------------------------------------------
# The wheels' exported CMake files name the wheel builder's Python include folders.
if ! stamp_ok cmake-paths "$req_hash"; then
  log "rewriting wheel CMake include paths for this interpreter"
  "$PY" - "$VENV" <<'PYEOF'
import pathlib, re, sys, sysconfig
import numpy
venv = pathlib.Path(sys.argv[1])
py_inc = sysconfig.get_paths()["include"]
np_inc = numpy.get_include()
builder = re.compile(r"/opt/python/cp311-cp311/[^;\"\s)]*")
def local(m):
    p = m.group(0)
    if "numpy" in p:
        return np_inc
    if p.rstrip("/").endswith("include/python3.11"):
        return py_inc
    return p
changed = 0
for f in (venv / "share").rglob("*.cmake"):
    text = f.read_text()
    new = builder.sub(local, text)
    if new != text:
        f.write_text(new)
        changed += 1
print(f"  {changed} CMake files rewritten")
PYEOF
  stamp_set cmake-paths "$req_hash"
fi

# --- 3. interface packages ---------------------------------------------------------------
build_interface_package() {  # NAME SOURCE_DIR
  local name=$1 src=$2
  local h
  h=$(hash_of <(echo "$req_hash") <(find "$src" -type f -not -name '*.md' | sort | xargs cat))
  if stamp_ok "$name" "$h"; then
    log "$name up to date"; return
  fi
  log "building $name into $VENV"
  rm -rf "$BUILD/$name"
  (
    export PATH="$VENV/bin:$PATH"
    export CMAKE_PREFIX_PATH="$VENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
    export AMENT_PREFIX_PATH="$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
    cmake -S "$src" -B "$BUILD/$name" -DCMAKE_INSTALL_PREFIX="$VENV" \
      -DPython3_EXECUTABLE="$PY" -DPYTHON_EXECUTABLE="$PY" -DBUILD_TESTING=OFF \
      -DCMAKE_BUILD_TYPE=Release > "$BUILD/$name.configure.log" 2>&1 \
      || { cat "$BUILD/$name.configure.log"; exit 1; }
    cmake --build "$BUILD/$name" -j "$(nproc)" > "$BUILD/$name.build.log" 2>&1 \
      || { tail -50 "$BUILD/$name.build.log"; exit 1; }
    cmake --install "$BUILD/$name" > "$BUILD/$name.install.log" 2>&1 \
      || { tail -50 "$BUILD/$name.install.log"; exit 1; }
  )
  stamp_set "$name" "$h"
}
mkdir -p "$BUILD"
build_interface_package geovr_interfaces "$ROOT/geovr_interfaces"

# tf2_msgs and vision_msgs are no wheels: build the wire-compatible stand-ins where none is
# importable (scripts/standins/README.md).
for standin in tf2_msgs vision_msgs; do
  if "$PY" -c "import $standin.msg" 2>/dev/null \
      && ! grep -qs 'Stand-in' "$VENV/share/$standin/package.xml"; then
    log "$standin provided by the ROS installation"
  else
    build_interface_package "$standin" "$ROOT/scripts/standins/$standin"
  fi
done

# --- 4. the project's own packages, editable ------------------------------------------
own_hash=$(hash_of "$ROOT/geovr_ros/setup.py" "$ROOT/geovr_ros/setup.cfg" \
  "$ROOT/training/pyproject.toml" <(echo "$req_hash $ROOT"))
if ! stamp_ok own-packages "$own_hash"; then
  log "installing geovr_ros and geovr_training (editable)"
  quiet_pip install --quiet --no-deps --no-build-isolation \
    -e "$ROOT/geovr_ros" -e "$ROOT/training"
  stamp_set own-packages "$own_hash"
else
  log "geovr_ros and geovr_training up to date"
fi

# --- 5. network safety for every Python started from the venv -------------------------
site=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
profile="$ROOT/geovr_ros/config/fastdds_loopback.xml"
domain=$(( 1 + $(printf '%s' "$ROOT" | cksum | cut -d' ' -f1) % 99 ))   # as scripts/ros_env.sh
cat > "$site/geovr_network_safety.pth.tmp" <<PTH
import os; os.environ.update(ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST', ROS_LOCALHOST_ONLY='1', RMW_IMPLEMENTATION='rmw_fastrtps_cpp', FASTDDS_DEFAULT_PROFILES_FILE='$profile'); os.environ.setdefault('ROS_DOMAIN_ID', '$domain')
PTH
mv "$site/geovr_network_safety.pth.tmp" "$site/geovr_network_safety.pth"

# --- 6. check ----------------------------------------------------------------------------
"$PY" -c 'import rclpy, torch, onnxruntime, pybullet, cv2
from geovr_interfaces.srv import SpatialQuery
from tf2_msgs.msg import TFMessage
from vision_msgs.msg import Detection3DArray
import geovr_ros, geovr_training' > /dev/null \
  || { echo "bootstrap: the environment does not import; see above" >&2; exit 1; }
log "environment ready: $VENV"
