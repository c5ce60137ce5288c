#!/usr/bin/env bash
# One call of a lent GPU machine: unpack the carried data, fine-tune the shipped model in three
# variants side by side on the one GPU (training/configs/gpu_v2_2.yaml; its header says how
# .device/data/ is made), compact each variant's best checkpoint into $OUT, then run
# scripts/gpu_check.sh (CUDA timings). On the device tool (carry .device):
#   bash scripts/device_train.sh            the carried data (.device/data/*.npz)
#   bash scripts/device_train.sh --render   render the rooms there instead of carrying them: build
#                                           pybullet from .device/pybullet/*.tar.gz when the machine
#                                           lacks it (61 s on 16 cores), render cpu_v2_1.yaml's three
#                                           sets (about 55 s at 290 frames/s), unpack the real ones
#   bash scripts/device_train.sh --tiny     anywhere: 2 steps of each variant at 128x96 on CPU,
#                                           gpu_check's dry run (proves the script, ~2 min)
# Variants: a = the config (stages 1-3 frozen, as v2.1); b = only the stem and stage 1 frozen;
# c = nothing frozen, BatchNorm statistics learned too (a batch of 32 clips can).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TINY=0
RENDER=0
for arg in "$@"; do
    case "$arg" in
        --tiny) TINY=1 ;;
        --render) RENDER=1 ;;
        *) echo "device_train.sh: unknown argument $arg" >&2; exit 2 ;;
    esac
done
OUT="${OUT:-$ROOT/device_out}"
WORK="${DEVICE_WORK:-/tmp/geovr_device}"
PY=python3
[[ -x .venv/bin/python ]] && PY=.venv/bin/python
export PYTHONUNBUFFERED=1
export PYTHONPATH="$ROOT/training:$ROOT/geovr_ros${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT" "$WORK"
started=$SECONDS
stamp() { echo "[device_train +$((SECONDS - started)) s] $*"; }

stamp "python $($PY -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.cuda.is_available())')"
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
rm -rf "$WORK/data"
$PY -m geovr_training.data.cli unpack .device/data/*.npz --out "$WORK/data" | grep -v '^unpacked' || exit 1
stamp "data unpacked"
roots="$WORK/data/rooms, $WORK/data/close, $WORK/data/hololens, $WORK/data/tum"
repeats="[2, 2, 1, 1]"
if (( RENDER )); then
    if ! $PY -c 'import pybullet' 2> /dev/null; then
        sdist=$(ls .device/pybullet/pybullet-*.tar.gz 2> /dev/null | head -n 1)
        [[ -n "$sdist" ]] || { echo "--render: pybullet is missing and .device/pybullet/ holds no sdist" >&2; exit 1; }
        tar xzf "$sdist" -C "$WORK" || exit 1
        (cd "$WORK"/pybullet-*/ && $PY -m pip install -q --no-index --no-deps --no-build-isolation \
            --target "$WORK/site" . > "$WORK/pybullet_build.log" 2>&1) || { tail -n 20 "$WORK/pybullet_build.log"; exit 1; }
        export PYTHONPATH="$WORK/site:$PYTHONPATH"
        stamp "pybullet built"
    fi
    # cpu_v2_1.yaml's rendered sets (rooms, desk views, a robot's low camera); tiny: 2 scenes of 4
    scale=(600 320 240 16)
    (( TINY )) && scale=(2 2 2 4)
    generate=(--frames-per-scene "${scale[3]}" --resolution 256x192 --qa-per-scene 0 --workers "$(nproc)")
    rm -rf "$WORK/data/rooms" "$WORK/data/close" "$WORK/data/rooms_low"
    $PY -m geovr_training.data.cli generate --out "$WORK/data/rooms" --scenes "${scale[0]}" --seed 6 "${generate[@]}" \
        2>&1 | tail -n 1 || exit 1
    $PY -m geovr_training.data.cli generate --out "$WORK/data/close" --scenes "${scale[1]}" --seed 7 \
        --trajectories close "${generate[@]}" 2>&1 | tail -n 1 || exit 1
    $PY -m geovr_training.data.cli generate --out "$WORK/data/rooms_low" --scenes "${scale[2]}" --seed 19 \
        --camera-height 0.25,0.8 --trajectories walk,pan "${generate[@]}" 2>&1 | tail -n 1 || exit 1
    roots="$WORK/data/rooms, $WORK/data/close, $WORK/data/rooms_low, $WORK/data/hololens, $WORK/data/tum"
    repeats="[1, 1, 1, 10, 10]"
    stamp "rooms rendered"
fi

common=(--config training/configs/gpu_v2_2.yaml --no-progress
        --set "data.root=[$roots]" "data.repeats=$repeats")
tiny=()
if (( TINY )); then
    tiny=(data.resolution=[128,96] data.batch_size=2 data.num_workers=0 optim.max_steps=2 optim.max_val_batches=1)
fi
declare -A variants=(
    [a]=""
    [b]="model.frozen_stages=1"
    [c]="model.frozen_stages=0 model.freeze_backbone_bn=false"
)
for name in a b c; do
    # shellcheck disable=SC2086  # a variant's settings are words
    $PY -m geovr_training.train.cli "${common[@]}" out_dir="$WORK/run_$name" ${variants[$name]} "${tiny[@]}" \
        > "$OUT/train_$name.log" 2>&1 &
done
wait
stamp "trained"
for name in a b c; do
    tail -n 3 "$OUT/train_$name.log" | head -n 1
    if [[ -f "$WORK/run_$name/best.pt" ]]; then
        $PY -m geovr_training.model.checkpoint compact "$WORK/run_$name/best.pt" "$OUT/v2_2$name.pt"
    else
        echo "variant $name: no best.pt (see train_$name.log)"
        tail -n 20 "$OUT/train_$name.log"
    fi
done
stamp "compacted: $(ls "$OUT" | tr '\n' ' ')"

if (( TINY )); then
    bash scripts/gpu_check.sh --dry-run --out "$OUT" > "$OUT/gpu_check.log" 2>&1
else
    timeout 200 bash scripts/gpu_check.sh --out "$OUT" --steps 60 --repeats 30 > "$OUT/gpu_check.log" 2>&1
fi
echo "gpu_check rc=$?"
stamp "done"
