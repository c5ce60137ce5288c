"""The training loop: single process or DistributedDataParallel under torchrun.

`train(config)` trains GeoVR-S (`model.preset` 'v2' or 'tiny', plus any ModelArgsV2 field)
from a resolved config dict and returns a summary. Under torchrun (WORLD_SIZE > 1) it uses
gloo on CPU and nccl on GPU with a DistributedSampler; only rank 0 writes logs and checkpoints.
"""

from __future__ import annotations

import math
import os
import random
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler

from geovr_training.losses import LossConfig, geovr_loss, make_targets
from geovr_training.model import (GeoVRv2Model, ModelArgsV2, build_model, checkpoint_model_args, count_flops,
                                  count_parameters, model_args_from_dict, read_checkpoint, save_checkpoint)
from geovr_training.model.export import normalize_images
from geovr_training.train.config import ConfigError, config_sha256


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


# Model settings a fine-tuning run (init_from) may set on the checkpoint's architecture, and
# the parameters they add (initialised fresh): a training-only category head; the canonical
# camera (adds none: the scale head learns to read its scale in the canonical camera, or, with
# a learned exponent, the exponent starts at canonical_exponent: 0 is the checkpoint's scale);
# how much of the backbone trains (adds none: a bigger machine's fine-tune may free more); the
# depth decoder's convex upsampling (starts as the bilinear upsampling it replaces) and its
# image guidance (starts at zero: the decoder as it was).
INIT_FROM_ADDABLE = {'semantic_classes': ('semantic_head.',), 'canonical_focal': (), 'canonical_width': (),
                     'canonical_exponent': (), 'learn_canonical_exponent': ('canonical_exponent',),
                     'frozen_stages': (), 'freeze_backbone_bn': (),
                     'depth_upsampling': ('depth_decoder.upsample.',),
                     'depth_guidance': ('depth_decoder.guide', 'depth_decoder.upsample.guide_in.')}


def model_args_from_config(config: dict, teacher_channels: list[int] | None = None) -> ModelArgsV2:
    """Model arguments from the `model` section (`preset` 'v2' | 'tiny', plus any ModelArgsV2
    field) and the teacher's widths."""
    values = dict(config['model'])
    if teacher_channels:
        values['distill_dims'] = list(teacher_channels)
        layers = config['teacher'].get('student_layers') or []
        if layers:
            values['distill_layers'] = list(layers)
    return model_args_from_dict(values)


def parameter_groups(model: torch.nn.Module, weight_decay: float, lr_scale: dict[str, float]) -> list[dict]:
    """AdamW groups of the trainable parameters: weight decay on matrices and kernels only,
    and a learning-rate factor per name prefix (`optim.lr_scale`, first match wins; 1 otherwise)."""
    groups: dict[tuple[float, bool], list] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        factor = next((float(f) for prefix, f in lr_scale.items() if name.startswith(prefix)), 1.0)
        groups.setdefault((factor, param.ndim >= 2), []).append(param)
    return [{'params': params, 'weight_decay': weight_decay if decays else 0.0, 'lr_scale': factor}
            for (factor, decays), params in sorted(groups.items(), key=lambda kv: (kv[0][0], not kv[0][1]))]


class _Distributed:
    def __init__(self):
        self.world = int(os.environ.get('WORLD_SIZE', '1'))
        self.rank = int(os.environ.get('RANK', '0'))
        self.local_rank = int(os.environ.get('LOCAL_RANK', '0'))
        self.enabled = self.world > 1
        if torch.cuda.is_available():
            self.device = torch.device('cuda', self.local_rank)
            torch.cuda.set_device(self.device)
            torch.backends.cuda.matmul.allow_tf32 = True  # fp32 weights, TF32 products (as cuDNN's convolutions)
            torch.backends.cudnn.benchmark = True  # one input size per run
        else:
            self.device = torch.device('cpu')
        if self.enabled and not dist.is_initialized():
            dist.init_process_group('nccl' if self.device.type == 'cuda' else 'gloo')

    @property
    def main(self) -> bool:
        return self.rank == 0

    def mean(self, value: float, count: float) -> float:
        if not self.enabled:
            return value / max(count, 1)
        t = torch.tensor([value, count], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return float(t[0] / t[1].clamp_min(1))

    def any(self, flag: bool) -> bool:
        if not self.enabled:
            return flag
        t = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(t)
        return bool(t.item() > 0)

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()


def _lr_at(step: int, total: int, base: float, warmup: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def _to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def train(config: dict, resume: str | Path | None = None, progress: bool = True) -> dict:
    """Train from a resolved config. Returns {'best': path, 'last': path, 'epochs': n,
    'best_val': float, 'history': [...], 'seconds': float} (rank 0; others get the same keys)."""
    from tqdm import tqdm

    from geovr_training.train.data import build_datasets

    ddp = _Distributed()
    try:
        seed_everything(int(config['seed']) + ddp.rank)
        out_dir = Path(config['out_dir'])
        loss_config = LossConfig.from_dict(config['loss'])

        teacher = None
        teacher_channels = None
        if config['teacher'].get('onnx') and loss_config.distill:
            from geovr_training.train.teacher import OnnxTeacher
            teacher = OnnxTeacher(config['teacher']['onnx'], config['teacher']['outputs'],
                                  config['teacher'].get('threads', 1))
            width, height = config['data']['resolution']
            teacher_channels = teacher.channels(height, width)

        start_epoch, state = 0, None
        if resume:
            state = read_checkpoint(resume)
            args = checkpoint_model_args(state, resume)
            start_epoch = int(state['epoch']) + 1
        elif config.get('init_from'):
            init = read_checkpoint(config['init_from'])
            added = {k: v for k, v in config['model'].items() if k in INIT_FROM_ADDABLE}
            args = replace(checkpoint_model_args(init, config['init_from']), **added)
        else:
            args = model_args_from_config(config, teacher_channels)
        if state is None and args.canonical_focal > 0 and 'canonical_width' not in config['model']:
            args = replace(args, canonical_width=int(config['data']['resolution'][0]))
        model: GeoVRv2Model = build_model(args).to(ddp.device)
        if state is not None:
            model.load_state_dict(state['model'])
        elif config.get('init_from'):
            missing, unexpected = model.load_state_dict(init['model'], strict=False)
            new_heads = tuple(p for arg in added for p in INIT_FROM_ADDABLE[arg])
            if unexpected or any(not key.startswith(new_heads) for key in missing):
                raise ValueError(f'init_from {config["init_from"]} does not match the model: '
                                 f'missing {missing}, unexpected {unexpected}')

        train_set, val_set = build_datasets(config, seed=int(config['seed']))
        data = config['data']
        sampler = DistributedSampler(train_set, ddp.world, ddp.rank, shuffle=True, seed=int(config['seed'])) \
            if ddp.enabled else None
        generator = torch.Generator().manual_seed(int(config['seed']) + ddp.rank)
        train_loader = DataLoader(train_set, batch_size=int(data['batch_size']), shuffle=sampler is None,
                                  sampler=sampler, num_workers=int(data['num_workers']), drop_last=len(train_set) >= int(data['batch_size']),
                                  generator=generator, persistent_workers=int(data['num_workers']) > 0)
        val_sampler = DistributedSampler(val_set, ddp.world, ddp.rank, shuffle=False) if ddp.enabled else None
        val_loader = DataLoader(val_set, batch_size=int(data['batch_size']), shuffle=False, sampler=val_sampler,
                                num_workers=int(data['num_workers']))  # in order: set data.val_clip_stride to spread it

        optim_cfg = config['optim']
        trainable = tuple(optim_cfg.get('trainable') or ())
        if trainable:  # parameters the model itself freezes (v2's early stages) stay frozen
            for name, param in model.named_parameters():
                param.requires_grad_(param.requires_grad and name.startswith(trainable))
        if not any(p.requires_grad for p in model.parameters()):
            raise ConfigError(f'optim.trainable {list(trainable)} matches no parameter of the model')
        optimizer = torch.optim.AdamW(parameter_groups(model, float(optim_cfg['weight_decay']),
                                                       dict(optim_cfg.get('lr_scale') or {})),
                                      lr=float(optim_cfg['lr']))
        if state is not None and state.get('optimizer'):
            optimizer.load_state_dict(state['optimizer'])
        net = model
        if ddp.enabled:
            net = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[ddp.device.index] if ddp.device.type == 'cuda' else None,
                find_unused_parameters=True)

        epochs = int(optim_cfg['epochs'])
        steps_per_epoch = len(train_loader)
        if optim_cfg.get('max_steps_per_epoch'):
            steps_per_epoch = min(steps_per_epoch, int(optim_cfg['max_steps_per_epoch']))
        max_steps = int(optim_cfg['max_steps']) if optim_cfg.get('max_steps') else None
        if max_steps:  # a step budget, whatever the size of the data: as many passes as it takes
            steps_per_epoch = min(steps_per_epoch, max_steps)
            epochs = -(-max_steps // steps_per_epoch)
        total_steps = max(1, max_steps or epochs * steps_per_epoch)
        step = start_epoch * steps_per_epoch
        best_val = float(state['metrics'].get('best_val', float('inf'))) if state else float('inf')
        stale = int(state['metrics'].get('stale_epochs', 0)) if state else 0
        history = list(state['metrics'].get('history', [])) if state else []
        writer = None
        if ddp.main:
            out_dir.mkdir(parents=True, exist_ok=True)
            from torch.utils.tensorboard import SummaryWriter
            writer = SummaryWriter(str(out_dir / 'tb'))
            writer.add_text('config', f'```\n{config}\n```', 0)
            writer.add_scalar('model/gflops_per_clip', count_flops(model, 192, 256) / 1e9, 0)
            writer.add_scalar('model/params_m', count_parameters(model) / 1e6, 0)
        started = time.time()
        max_seconds = float(optim_cfg['max_time_min']) * 60 if optim_cfg.get('max_time_min') else None
        distill = teacher is not None
        width, height = data['resolution']
        epoch = start_epoch - 1
        best_path, last_path = out_dir / 'best.pt', out_dir / 'last.pt'
        out_of_time = False
        for epoch in range(start_epoch, epochs):
            if sampler is not None:
                sampler.set_epoch(epoch)
            if hasattr(train_set, 'set_epoch'):
                train_set.set_epoch(epoch)
            net.train()
            bar = tqdm(total=steps_per_epoch, desc=f'epoch {epoch + 1}/{epochs}', disable=not (progress and ddp.main),
                       dynamic_ncols=True)
            running = 0.0
            for index, batch in enumerate(train_loader):
                if index >= steps_per_epoch or (max_steps and step >= max_steps):
                    break
                batch = _to_device(batch, ddp.device)
                images = normalize_images(batch['images'])
                teacher_feats = teacher(images, batch['K']) if distill else None
                outputs = net(images, batch['K'], with_distill=distill)
                loss, logs = geovr_loss(outputs, make_targets(batch), loss_config, teacher_feats)
                lr = _lr_at(step, total_steps, float(optim_cfg['lr']), int(optim_cfg['warmup_steps']))
                for group in optimizer.param_groups:
                    group['lr'] = lr * group.get('lr_scale', 1.0)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if optim_cfg.get('grad_clip'):
                    torch.nn.utils.clip_grad_norm_(model.parameters(), float(optim_cfg['grad_clip']))
                optimizer.step()
                running += logs['total']
                step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{logs['total']:.3f}", lr=f'{lr:.1e}')
                if writer is not None and step % int(config['log_every']) == 0:
                    for name, value in logs.items():
                        writer.add_scalar(f'train/{name}', value, step)
                    writer.add_scalar('train/lr', lr, step)
                if max_seconds and time.time() - started > max_seconds:
                    out_of_time = True
                    break
            bar.close()
            out_of_time = ddp.any(out_of_time)
            val = evaluate_loss(net, val_loader, loss_config, ddp, teacher, optim_cfg.get('max_val_batches'))
            train_loss = running / max(1, min(index + 1, steps_per_epoch))
            record = {'epoch': epoch, 'train_loss': train_loss, **{f'val_{k}': v for k, v in val.items()},
                      'seconds': time.time() - started}
            history.append(record)
            improved = val['total'] < best_val - float(config['early_stopping']['min_delta'])
            if improved:
                best_val, stale = val['total'], 0
            else:
                stale += 1
            if ddp.main:
                for name, value in val.items():
                    writer.add_scalar(f'val/{name}', value, epoch)
                metrics = {'best_val': best_val, 'stale_epochs': stale, 'history': history, 'val': val}
                extra = {'config_sha256': config_sha256(config)}
                save_checkpoint(last_path, model, config, epoch, optimizer, metrics, extra)
                if improved:
                    save_checkpoint(best_path, model, config, epoch, None, metrics, extra)
                print(f"epoch {epoch + 1}: train {train_loss:.4f} val {val['total']:.4f} best {best_val:.4f}",
                      flush=True)
            if stale >= int(config['early_stopping']['patience']):
                if ddp.main:
                    print(f'early stopping after {stale} epochs without improvement', flush=True)
                break
            if out_of_time:
                if ddp.main:
                    print(f'stopping: optim.max_time_min = {optim_cfg["max_time_min"]} reached', flush=True)
                break
        if writer is not None:
            writer.close()
        ddp.barrier()  # rank 0 may still be writing checkpoints: tear gloo down together
        return {'best': str(best_path), 'last': str(last_path), 'epochs': epoch + 1, 'best_val': best_val,
                'history': history, 'seconds': time.time() - started}
    finally:
        ddp.close()


@torch.no_grad()
def evaluate_loss(net, loader, loss_config: LossConfig, ddp: _Distributed, teacher=None,
                  max_batches: int | None = None) -> dict[str, float]:
    """Mean of each loss term over the validation loader (all ranks reduced)."""
    net.eval()
    sums: dict[str, float] = {}
    count = 0
    for index, batch in enumerate(loader):
        if max_batches and index >= int(max_batches):
            break
        batch = _to_device(batch, ddp.device)
        images = normalize_images(batch['images'])
        feats = teacher(images, batch['K']) if teacher is not None else None
        outputs = net(images, batch['K'], with_distill=feats is not None)
        _, logs = geovr_loss(outputs, make_targets(batch), loss_config, feats)
        n = images.shape[0]
        for key, value in logs.items():
            sums[key] = sums.get(key, 0.0) + value * n
        count += n
    keys = sorted(sums) if sums else ['total']
    return {k: ddp.mean(sums.get(k, 0.0), count) for k in keys}
