"""scripts/gpu_check.sh --dry-run: the GPU-machine check proven on CPU (tiny model, 3 steps),
its one JSON holding every section with numbers that could be wrong."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip('onnxruntime', reason='onnxruntime is not installed (the check exports and runs ONNX)')


def test_gpu_check_dry_run_writes_one_json_of_every_section(tmp_path):
    env = {**os.environ, 'PYTHON': sys.executable}
    env.pop('OUT', None)
    run = subprocess.run(['bash', str(ROOT / 'scripts' / 'gpu_check.sh'), '--dry-run', '--out', str(tmp_path)],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads((tmp_path / 'gpu_check.json').read_text())
    assert result['dry_run'] is True and result['failed'] == []
    assert result['environment']['device'] == 'cpu' and 'torch' in result['environment']
    assert result['export']['ok'] and result['export']['tensorrt_static_problems'] == []
    torch_section = result['torch']
    for dtype in ('fp32', 'bf16'):
        assert torch_section[dtype]['median_ms'] > 0 and torch_section[dtype]['finite'], dtype
    assert torch_section['fp32']['depth_max_abs_diff_to_fp32_m'] == 0.0
    assert 0 < torch_section['bf16']['depth_max_abs_diff_to_fp32_m'] < 1.0  # bf16 really ran
    assert result['onnxruntime']['provider'] == 'CPUExecutionProvider'
    assert result['onnxruntime']['depth_max_abs_diff_to_torch_fp32_m'] < 1e-3
    assert 'no CUDA device' in result['cuda_memory']['skipped']
    assert 'tensorrt' in result
    training = result['training']
    assert training['steps'] == 3 and training['finite'] and training['step_ms_median'] > 0
    assert math.isfinite(training['last_loss']) and training['last_loss'] != training['first_loss']
