"""Evaluation: metrics on a tiny generated set, camera changes, the geovr-eval CLI, ablation plan."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from geovr_ros.geometry import fov_from_intrinsics, relative_pose
from geovr_ros.inference.preprocess import aspect_window
from geovr_training.evaluation.ablation import ablation_table, run_plan, target_sets
from geovr_training.evaluation.camera import DEFAULT_CHANGES, CameraChange, apply_camera_change, fit_frames
from geovr_training.evaluation.cli import main as eval_main
from geovr_training.evaluation.data import load_sequences
from geovr_training.evaluation.metrics import (clip_scales_gt, confidence_summary, constant_depth_summary,
                                                depth_edge_summary, depth_object_summary, evaluate_sequence,
                                                trajectory_summary)
from geovr_training.evaluation.predict import SequencePrediction, model_input_size, predict_sequence
from geovr_training.model import build_model, preset_args, save_checkpoint


def _perfect(seq, scale_error=0.0, depth_factor=1.0):
    n = len(seq.rgb)
    rel = np.stack([relative_pose(seq.T_world_cam[i], seq.T_world_cam[i + 1]) for i in range(n - 1)])
    traj = np.zeros((n, 4, 4))
    traj[0] = np.eye(4)
    for i in range(n - 1):
        traj[i + 1] = traj[i] @ rel[i]
    scales = clip_scales_gt(seq.depth) * (1 + scale_error)
    depth = np.nan_to_num(seq.depth, nan=1.0) * depth_factor
    return SequencePrediction(depth, rel, traj, scales, np.zeros((n, 4)), 1.0)


def test_split_all_loads_every_split_of_a_generated_dataset(tiny_data):
    import json
    splits = json.loads((tiny_data / 'manifest.json').read_text())['splits']
    every = [n for names in splits.values() for n in names]
    assert [s.name for s in load_sequences(tiny_data, 'all')] == every and len(set(every)) > 1
    with pytest.raises(ValueError, match='no sequences'):
        load_sequences(tiny_data, 'holdout')


def test_metrics_of_ground_truth_are_perfect_and_errors_show(tiny_data):
    seq = load_sequences(tiny_data, 'test')[0]
    perfect = evaluate_sequence(_perfect(seq), seq.depth, seq.T_world_cam)
    assert perfect['depth_metric_abs_rel'] == pytest.approx(0.0, abs=1e-6)
    assert perfect['depth_metric_delta1'] == pytest.approx(1.0)
    assert perfect['ate_sim3_m'] < 1e-6 and perfect['ate_se3_m'] < 1e-6
    assert perfect['rpe_rot_deg'] < 1e-4 and perfect['scale_abs_rel'] < 1e-9
    assert perfect['path_length_m'] > 0.1
    # depth 1.3x too far: metric delta1 collapses, median-scaled stays perfect
    far = evaluate_sequence(_perfect(seq, 0.2, 1.3), seq.depth, seq.T_world_cam)
    assert far['depth_metric_abs_rel'] == pytest.approx(0.3, rel=1e-5)
    assert far['depth_metric_delta1'] == 0.0 and far['depth_median_delta1'] == pytest.approx(1.0)
    assert far['scale_abs_rel'] == pytest.approx(0.2)


def test_the_floor_puts_depth_that_is_too_far_back_at_the_camera_height(tiny_data):
    """Depth 1.3x too far, rescaled frame by frame by the floor the rendered rooms show, with the
    camera's height taken from the true depth: nearly exact (the first frames before a floor
    is seen keep the model's scale); without K, no floor rows."""
    seq = load_sequences(tiny_data, 'test')[0]
    row = evaluate_sequence(_perfect(seq, 0.0, 1.3), seq.depth, seq.T_world_cam, seq.K)
    assert row['floor_camera_height'] == pytest.approx(np.median(seq.T_world_cam[:, 2, 3]), rel=0.05)   # z up, floor z = 0
    assert row['floor_frames'] > 0.5
    assert row['depth_metric_abs_rel'] == pytest.approx(0.3, rel=1e-5)
    assert row['floor_depth_metric_abs_rel'] < 0.3 * (1 - row['floor_frames']) + 0.05
    assert row['floor_depth_metric_delta1'] > row['floor_frames'] - 0.05
    assert 'floor_camera_height' not in evaluate_sequence(_perfect(seq), seq.depth, seq.T_world_cam)


def test_confidence_summary_keeps_the_confident_pixels_and_scores_them():
    """Pixels at confidence 0.95 are exact, those at 0.6 twice too far, one at 0.3 has no true
    depth: at >= 0.5 both kinds are kept (AbsRel 0.5), at >= 0.7 / 0.9 only the exact ones."""
    gt = np.full((2, 3, 4), 2.0)
    gt[0, 0, 0] = np.nan
    confidence = np.where(np.arange(24).reshape(2, 3, 4) % 2 == 0, 0.95, 0.6).astype(np.float32)
    confidence[0, 0, 0] = 0.3
    pred = np.where(confidence > 0.9, gt, 2 * gt)
    out = confidence_summary(pred, confidence, gt)
    assert out['confidence_0.5_kept'] == pytest.approx(1.0)
    assert out['confidence_0.5_abs_rel'] == pytest.approx(12 / 23)
    for level in (0.7, 0.9):
        assert out[f'confidence_{level:g}_kept'] == pytest.approx(11 / 23)
        assert out[f'confidence_{level:g}_abs_rel'] == 0.0 and out[f'confidence_{level:g}_delta1'] == 1.0
    assert 'confidence_0.99_abs_rel' not in confidence_summary(pred, confidence, gt, levels=(0.99,))


def test_depth_edge_summary_finds_a_rim_read_toward_the_wall_behind_it():
    """A box at 1 m before a wall at 2 m: exact depth has no bias anywhere; depth blurred
    across the outline (as bilinear upsampling of coarse depth does) reads the box's rim too
    far and the wall's rim too near, and leaves flat ground alone; a global scale changes nothing."""
    import cv2
    true = np.full((2, 60, 80), 2.0)
    true[:, 20:40, 30:50] = 1.0
    exact = depth_edge_summary(3.0 * true, true)
    assert exact['edge_near_log_bias'] == pytest.approx(0.0, abs=1e-9) and exact['edge_near_delta1'] == 1.0
    assert 0.05 < exact['edge_pixels'] < 0.2
    blurred = depth_edge_summary(np.stack([cv2.blur(t, (7, 7)) for t in true]), true)
    assert blurred['edge_near_log_bias'] > 0.15 and blurred['edge_far_log_bias'] < -0.05
    assert blurred['edge_near_delta1'] < 0.6 and abs(blurred['edge_flat_log_bias']) < 0.01
    true[0, :5] = np.nan  # invalid true depth is no edge
    assert depth_edge_summary(true, true)['edge_pixels'] == pytest.approx(exact['edge_pixels'], rel=0.1)


def test_depth_object_summary_puts_a_small_object_blurred_into_the_wall_too_far():
    """Two boxes before a wall at 2 m, one 10 x 10 px at 1 m, one 3 x 3 px (too few pixels to
    score): exact depth at any scale puts the object where it is; depth blurred across its
    outline reads the small box too far and smears it along the rays; a constant depth puts it
    at the wall; the room's pixels stay near 0."""
    import cv2
    true = np.full((2, 60, 80), 2.0)
    ids = np.zeros(true.shape, np.int32)
    true[:, 20:30, 30:40], ids[:, 20:30, 30:40] = 1.0, 7
    true[:, 45:48, 10:13], ids[:, 45:48, 10:13] = 1.0, 9
    exact = depth_object_summary(3.0 * true, true, ids)
    assert exact['object_views'] == 2  # the 10 x 10 box in both frames; the 3 x 3 one is too small
    assert exact['object_log_bias'] == pytest.approx(0.0, abs=1e-9) and exact['object_within_10pct'] == 1.0
    assert exact['object_extent_log_ratio'] == pytest.approx(0.0, abs=1e-9)
    assert exact['object_near_abs_log'] == pytest.approx(0.0, abs=1e-9)
    blurred = depth_object_summary(np.stack([cv2.blur(t, (9, 9)) for t in true]), true, ids)
    assert blurred['object_log_bias'] > 0.1 and blurred['object_abs_log'] == pytest.approx(blurred['object_log_bias'])
    assert blurred['object_within_10pct'] == 0.0 and blurred['object_extent_log_ratio'] > 1.0
    assert abs(blurred['object_room_log_bias']) < 0.05
    constant = depth_object_summary(np.full(true.shape, 1.7), true, ids)
    assert constant['object_log_bias'] == pytest.approx(np.log(2.0), abs=1e-6)  # read at the frame's median: the wall
    assert constant_depth_summary([true], [ids])['object_log_bias'] == pytest.approx(np.log(2.0), abs=1e-6)
    assert 'object_log_bias' not in constant_depth_summary([true])  # no segmentation, no object rows
    assert depth_object_summary(true, true, np.zeros_like(ids))['object_views'] == 0


def test_no_motion_baseline_is_the_true_spread_and_motion():
    # 5 poses 0.5 m apart on a line, turning 10 degrees about the optical axis per step
    gt = np.tile(np.eye(4), (5, 1, 1))
    for i in range(5):
        a = math.radians(10 * i)
        gt[i, :2, :2] = [[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]
        gt[i, 0, 3] = 0.5 * i
    perfect = trajectory_summary(gt.copy(), gt)
    assert perfect['static_ate_m'] == pytest.approx(math.sqrt(np.mean((0.5 * np.arange(5) - 1.0) ** 2)))
    assert perfect['static_rpe_rot_deg'] == pytest.approx(10.0)
    assert perfect['static_rpe_trans_m'] == pytest.approx(0.5)
    assert perfect['ate_sim3_m'] < 1e-9 and perfect['rpe_rot_deg'] < 1e-6
    frozen = trajectory_summary(np.tile(np.eye(4), (5, 1, 1)), gt)  # a model that never moves
    assert frozen['rpe_rot_deg'] == pytest.approx(frozen['static_rpe_rot_deg'])
    assert frozen['ate_sim3_m'] == pytest.approx(frozen['static_ate_m'])  # no scale to fit: the centroid


def test_camera_changes_update_intrinsics_consistently(tiny_data):
    seq = load_sequences(tiny_data, 'test', max_frames=2)[0]
    height, width = seq.rgb.shape[1:3]
    rgb, depth, k = apply_camera_change(CameraChange('x2', 'resize', 2.0), seq.rgb, seq.depth, seq.K)
    assert rgb.shape[1:3] == (2 * height, 2 * width)
    assert k[0, 0, 0] == pytest.approx(2 * seq.K[0, 0, 0])
    assert np.nanmax(depth) == pytest.approx(np.nanmax(seq.depth))  # nearest: values kept
    # a 3:2 camera at half its pixels: fx and fy both halved, whichever way the size is fed
    wide = fit_frames(seq.rgb, seq.depth, seq.K, (96, 64))
    for native, size in ((False, (48, 32)), (True, (32, 32))):
        rgb, depth, k = apply_camera_change(CameraChange('x0.5', 'resize', 0.5, native_size=native), *wide, multiple=32)
        assert (rgb.shape[2], rgb.shape[1]) == size and depth.shape == rgb.shape[:3]
        assert k[0, 0, 0] == pytest.approx(wide[2][0, 0, 0] / 2) and k[0, 1, 1] == pytest.approx(wide[2][0, 1, 1] / 2)
    assert k[0, 0, 2] == pytest.approx((wide[2][0, 0, 2] + 0.5) / 2 - 0.5 - 8)  # the centre 32 of 48 columns
    rgb, depth, k = apply_camera_change(CameraChange('fov', 'fov', 30.0), seq.rgb, seq.depth, seq.K)
    assert rgb.shape == seq.rgb.shape
    assert math.degrees(fov_from_intrinsics(k[0], (width, height))[0]) == pytest.approx(30.0, abs=1.0)
    rgb, depth, k = apply_camera_change(CameraChange('shift', 'shift', 8, 4), seq.rgb, seq.depth, seq.K)
    np.testing.assert_array_equal(rgb[:, 4:, 8:], seq.rgb[:, :-4, :-8])
    assert k[0, 0, 2] == pytest.approx(seq.K[0, 0, 2] + 8)
    assert np.isnan(depth[:, :4]).all()
    rgb, depth, k = apply_camera_change(CameraChange('crop', 'crop', 8, 4), seq.rgb, seq.depth, seq.K)
    assert rgb.shape[1:3] == (height - 8, width - 16)
    np.testing.assert_array_equal(rgb, seq.rgb[:, :-8, :-16])  # no unseen border
    # the principal point sits 8, 4 px right of and below the crop's centre
    assert k[0, 0, 2] - ((width - 16) / 2 - 0.5) == pytest.approx(seq.K[0, 0, 2] - (width / 2 - 0.5) + 8)
    assert k[0, 1, 2] - ((height - 8) / 2 - 0.5) == pytest.approx(seq.K[0, 1, 2] - (height / 2 - 0.5) + 4)
    rgb, depth, k = apply_camera_change(CameraChange('16:9', 'aspect', 16 / 9), seq.rgb, seq.depth, seq.K)
    cut = height - int(round(width * 9 / 16))
    assert rgb.shape[1:3] == (height - cut, width)                # a wider camera: rows cut, centred
    np.testing.assert_array_equal(rgb, seq.rgb[:, cut // 2:cut // 2 + height - cut])
    assert k[0, 1, 2] == pytest.approx(seq.K[0, 1, 2] - cut // 2) and k[0, 0, 0] == seq.K[0, 0, 0]


def test_predict_sequence_chains_relative_poses(tiny_data):
    seq = load_sequences(tiny_data, 'test', max_frames=5)[0]
    model = build_model(preset_args('tiny', descriptor_dim=8))
    pred = predict_sequence(model, seq.rgb, seq.K, input_size=(64, 64), batch_size=3)
    assert pred.depth.shape == seq.depth.shape and pred.rel_poses.shape == (4, 4, 4)
    np.testing.assert_allclose(pred.trajectory[3], pred.trajectory[2] @ pred.rel_poses[2], atol=1e-9)
    np.testing.assert_allclose(pred.trajectory[0], np.eye(4))
    # fed as the runtime feeds it: a camera of another aspect than the input's is cut to it,
    # not stretched, and its depth has no value where the cut took the frame
    height, width = seq.rgb.shape[1:3]
    x0, y0, w, h = aspect_window((width, height), model_input_size(width, height, (64, 64), 32))
    assert (w, h) != (width, height)
    inside = np.zeros(seq.depth.shape[1:], bool)
    inside[y0:y0 + h, x0:x0 + w] = True
    assert np.isfinite(pred.depth[:, inside]).all() and np.isnan(pred.depth[:, ~inside]).all()


def test_onnxruntime_and_torch_predict_the_same(tiny_data):
    from geovr_training.evaluation.predict import clip_runner
    seq = load_sequences(tiny_data, 'test', max_frames=4)[0]
    torch.manual_seed(0)
    model = build_model(preset_args('tiny', descriptor_dim=8)).eval()
    a = predict_sequence(clip_runner(model, 'torch'), seq.rgb, seq.K, input_size=(64, 64))
    b = predict_sequence(clip_runner(model, 'onnxruntime', (64, 64)), seq.rgb, seq.K, input_size=(64, 64))
    np.testing.assert_allclose(a.depth, b.depth, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(a.rel_poses, b.rel_poses, atol=1e-4)


def test_robustness_table_only_when_asked(tiny_data, tmp_path):
    model = build_model(preset_args('tiny', descriptor_dim=8))
    ckpt = save_checkpoint(tmp_path / 'm.pt', model, {'data': {'resolution': [64, 64]}}, 0)
    assert eval_main(['--checkpoint', str(ckpt), '--data', str(tiny_data), '--out', str(tmp_path / 'e'),
                      '--max-frames', '4', '--no-progress']) == 0
    assert json.loads((tmp_path / 'e' / 'metrics.json').read_text())['camera_robustness'] == {}


def test_geovr_eval_cli_writes_json_markdown_and_plots(tiny_data, tmp_path, capsys):
    torch.manual_seed(0)
    model = build_model(preset_args('tiny', descriptor_dim=8))
    ckpt = save_checkpoint(tmp_path / 'm.pt', model, {'data': {'resolution': [64, 64]}}, 0)
    out = tmp_path / 'eval'
    assert eval_main(['--checkpoint', str(ckpt), '--data', str(tiny_data), '--out', str(out),
                      '--max-frames', '4', '--no-progress', '--camera-changes']) == 0
    payload = json.loads((out / 'metrics.json').read_text())
    assert 'constant depth (the set\'s median)' in payload['baselines']
    assert set(payload['camera_robustness']) == {c.name for c in DEFAULT_CHANGES}
    robust = payload['camera_robustness']
    # as the runtime feeds it, a 2x larger camera is resized back to the trained size: nearly the original
    runtime_x2 = robust['resize x2, to the trained size (runtime)']
    assert runtime_x2['depth_metric_abs_rel'] == pytest.approx(robust['original']['depth_metric_abs_rel'], rel=0.1)
    assert 0.0 <= payload['summary']['depth_metric_delta1'] <= 1.0
    assert np.isfinite(payload['summary']['ate_sim3_m'])
    assert '| original |' in (out / 'metrics.md').read_text()
    assert 0.0 <= payload['summary']['confidence_0.5_kept'] <= 1.0
    assert '| confidence >= 0.9 |' in (out / 'metrics.md').read_text()
    assert '| rescaled by the floor |' in (out / 'metrics.md').read_text()
    assert payload['summary']['object_views'] > 0 and np.isfinite(payload['summary']['object_abs_log'])
    assert '## Depth at whole objects' in (out / 'metrics.md').read_text()
    assert 'object_log_bias' in payload['baselines']['constant depth (the set\'s median)']
    assert "At the floor's scale" in (out / 'metrics.md').read_text()             # and per camera change
    assert 0.0 <= robust['hfov 30 deg (training 45-110)']['floor_depth_metric_delta1'] <= 1.0
    for png in ('trajectory.png', 'depth_example.png', 'camera_robustness.png', 'floor_scale.png'):
        assert (out / png).read_bytes()[:4] == b'\x89PNG'
    assert eval_main(['--checkpoint', str(tmp_path / 'nope.pt'), '--data', str(tiny_data), '--out', str(out)]) == 2
    assert 'does not exist' in capsys.readouterr().err


def test_ablation_plan_covers_singles_pairs_all_camera_grid_and_backbone():
    assert len(target_sets()) == 4 + 6 + 1
    plan = run_plan(['targets', 'camera'])
    assert len(plan) == 15
    assert plan[10]['name'] == 'all four' and all(plan[10]['loss'][t] > 0 for t in ('depth', 'pose', 'scale', 'distill'))
    assert {p['name'] for p in plan if p['group'] == 'camera'} >= {'rays off, cam-aug off', 'rays on, cam-aug on'}
    # the from-scratch row is the same v2 network without the pretrained weights, all of it trained
    pretrained, scratch = run_plan(['backbone'])
    assert pretrained['model'] == {'pretrained': True}
    assert scratch['name'] == 'from scratch' and scratch['model']['pretrained'] is False
    from geovr_training.train.config import load_config
    from geovr_training.train.trainer import model_args_from_config
    base = load_config(Path(__file__).resolve().parents[1] / 'configs' / 'cpu_v2.yaml')
    base['model'].update(scratch['model'])
    args = model_args_from_config(base)
    shipped = model_args_from_config(load_config(Path(__file__).resolve().parents[1] / 'configs' / 'cpu_v2.yaml'))
    assert (args.dim, args.depth, args.decoder_dim) == (shipped.dim, shipped.depth, shipped.decoder_dim)
    model = build_model(args)
    assert all(p.requires_grad for p in model.backbone.parameters())
    table = ablation_table([{'name': 'depth', 'group': 'targets', 'depth_metric_delta1': 0.5},
                            {'name': 'distill', 'group': 'targets', 'note': 'skipped: no teacher'}])
    assert '| targets | depth | 0.500 |' in table and 'skipped: no teacher' in table


def test_geovr_eval_odometry_writes_every_row(tiny_data, tmp_path):
    """`geovr-eval odometry` through the runtime's pipeline: tracker (odom and map), pose head,
    no motion and the true-depth upper bound, with the files it promises."""
    from geovr_training.export.onnx_export import export_model
    torch.manual_seed(0)
    model = build_model(preset_args('tiny', descriptor_dim=8))
    ckpt = save_checkpoint(tmp_path / 'm.pt', model, {'data': {'resolution': [128, 96]}}, 0)
    export_model(ckpt, tmp_path / 'model', sizes=[], with_torch_program=False)
    out = tmp_path / 'odometry'
    assert eval_main(['odometry', '--model', str(tmp_path / 'model'), '--data', str(tiny_data),
                      '--out', str(out), '--max-sequences', '1', '--no-progress']) == 0
    payload = json.loads((out / 'odometry.json').read_text())
    summary = payload['summary']
    assert set(summary) == {'tracker', 'tracker_map', 'tracker_final', 'pose_head', 'static', 'truth', 'true_depth',
                            'true_depth_map', 'true_depth_final'}
    # no loop closes in 8 frames: the optimised graph is the odometry chain, and every frame
    # placed from its keyframe's final pose lands where odometry put it
    assert summary['true_depth']['loop_closures'] == 0
    for metric in ('ate_sim3_m', 'ate_se3_m', 'rpe_rot_deg'):
        assert summary['true_depth_final'][metric] == pytest.approx(summary['true_depth'][metric], abs=1e-6)
    static = summary['static']
    assert static['travelled_m'] == 0.0 and static['path_m'] > 0
    assert summary['truth']['travelled_m'] == pytest.approx(static['path_m'])
    assert 0 < summary['truth']['travelled_answer_m'] <= summary['truth']['travelled_m'] + 1e-9
    assert np.isfinite(summary['tracker']['travelled_answer_m'])   # the session's own answer
    assert static['ate_se3_pct'] == pytest.approx(100 * static['ate_se3_m'] / static['path_m'])
    assert (out / 'odometry.png').stat().st_size > 0 and '| no motion |' in (out / 'odometry.md').read_text()
    assert eval_main(['odometry', '--model', str(tmp_path / 'nowhere'), '--data', str(tiny_data),
                      '--out', str(out)]) == 2


def test_geovr_eval_localize_maps_saves_loads_and_scores_both_ways(tiny_data, tmp_path):
    """`geovr-eval localize`: a map of some frames saved and loaded by the runtime's session,
    the other frames localized in it and scored against the map and the truth, for PnP and for
    the camera put at the recognised keyframe; a bad frame range is refused."""
    from geovr_training.export.onnx_export import export_model
    torch.manual_seed(0)
    model = build_model(preset_args('tiny', descriptor_dim=8))
    ckpt = save_checkpoint(tmp_path / 'm.pt', model, {'data': {'resolution': [128, 96]}}, 0)
    export_model(ckpt, tmp_path / 'model', sizes=[], with_torch_program=False)
    out = tmp_path / 'localize'
    common = ['localize', '--model', str(tmp_path / 'model'), '--data', str(tiny_data), '--split', 'train',
              '--out', str(out), '--no-progress', '--set', 'relocalize_period=1', 'match_threshold=0.0']
    assert eval_main(common + ['--map-frames', '0:8:2', '--frames', '1:8:2']) == 0
    rows = json.loads((out / 'localize.json').read_text())
    assert len(rows) == 2
    for row in rows.values():
        assert row['frames'] == 4 and 0 <= row['localized'] <= 4 and row['map_keyframes'] >= 1
        # a proposal on every frame, each verified; a rejected one lets the next candidate
        # (match_candidates: 3) be tried, as many as the map holds keyframes
        assert 4 <= sum(row['place_matches'].values()) <= 4 * min(3, row['map_keyframes'])
        assert np.isfinite(row['map_itself']['median_m'])
        assert row['localized'] == 0 or np.isfinite(row['against_map']['median_m'])
        assert row['localized'] == 0 or 0 <= row['covariance_against_map']['within_95'] <= 1
    assert '| the map itself' in (out / 'localize.md').read_text()
    with pytest.raises(SystemExit):
        eval_main(common + ['--map-frames', '0-4', '--frames', '4:8'])
    with pytest.raises(SystemExit):   # nothing left to localize
        eval_main(common + ['--map-frames', '0:8', '--frames', '8:8'])


def test_localize_scores_the_published_covariance_by_the_errors_inside_its_ellipsoid():
    from geovr_ros.geometry import make_pose, so3_exp
    from geovr_training.evaluation.metrics import covariance_consistency as _consistency
    stated = [np.diag([0.1 ** 2] * 3 + [0.01 ** 2] * 3)] * 4
    located = [make_pose(np.eye(3), [0.1, 0, 0]),                      # 1 sigma: inside
               make_pose(np.eye(3), [0.5, 0, 0]),                      # 5 sigma: outside
               make_pose(so3_exp(np.array([0, 0, 0.05])), [0, 0, 0]),  # turned 5 sigma
               make_pose(np.eye(3), [0, 0.2, 0.2])]                    # chi-square 8 > 7.8: outside
    scored = _consistency(located, [np.eye(4)] * 4, stated)
    assert scored['within_95'] == 0.5 and scored['rotation_within_95'] == 0.75
    assert scored['sigma_median_m'] == pytest.approx(0.1)
    assert np.isnan(_consistency([], [], [])['within_95'])


def test_odometry_covariance_is_scored_by_the_errors_from_the_keyframe_inside_its_ellipsoid():
    """Frame 0 is the keyframe, turned 90 deg about z in odom: an error along its own x is
    along odom's y, where the covariance (in odom axes) is wide."""
    from geovr_ros.geometry import make_pose, so3_exp
    from geovr_training.evaluation.odometry import odometry_covariance_consistency as covariance_consistency
    keyframe = make_pose(so3_exp(np.array([0, 0, np.pi / 2])), [0, 0, 0])
    gt = np.stack([keyframe, keyframe @ make_pose(np.eye(3), [0.1, 0, 0]), keyframe @ make_pose(np.eye(3), [0.2, 0, 0])])
    odom = np.stack([keyframe, keyframe @ make_pose(np.eye(3), [0.15, 0, 0]), keyframe @ make_pose(np.eye(3), [0.2, 0, 0.05])])
    wide_y = np.diag([1e-4, 0.05 ** 2, 1e-4, 1e-4, 1e-4, 1e-4])
    scored = covariance_consistency(odom, gt, [(0, 1, wide_y), (0, 2, wide_y)])
    assert scored['covariance_within_95'] == 0.5            # 5 cm along odom y: 1 sigma; 5 cm along z: 5 sigma
    assert scored['covariance_rotation_within_95'] == 1.0
    assert covariance_consistency(odom, gt, []) == {}


def test_geovr_eval_odometry_replays_cached_model_outputs_and_takes_node_parameters(tiny_data, tmp_path):
    """--cache: a second run answers every model call from the folder with the same figures;
    --set: a node parameter changes the session (a tracker needing 10^6 inliers never tracks);
    a bad name or value is refused before any frame runs."""
    from geovr_training.export.onnx_export import export_model
    torch.manual_seed(0)
    model = build_model(preset_args('tiny', descriptor_dim=8))
    ckpt = save_checkpoint(tmp_path / 'm.pt', model, {'data': {'resolution': [128, 96]}}, 0)
    export_model(ckpt, tmp_path / 'model', sizes=[], with_torch_program=False)
    common = ['odometry', '--model', str(tmp_path / 'model'), '--data', str(tiny_data), '--max-sequences', '1',
              '--max-frames', '8', '--no-progress', '--cache', str(tmp_path / 'cache')]
    summaries = []
    for run in ('first', 'again'):
        assert eval_main(common + ['--out', str(tmp_path / run)]) == 0
        summaries.append(json.loads((tmp_path / run / 'odometry.json').read_text())['summary'])
    stored = sorted((tmp_path / 'cache').glob('*.npz'))
    assert len(stored) >= 7   # one per frame pair at least
    mtimes = [p.stat().st_mtime_ns for p in stored]
    for key in ('tracker', 'tracker_map', 'pose_head', 'true_depth'):
        for metric in ('ate_sim3_m', 'ate_se3_m', 'rpe_rot_deg', 'travelled_m'):
            assert summaries[1][key][metric] == pytest.approx(summaries[0][key][metric], rel=1e-9, abs=1e-12)
    assert [p.stat().st_mtime_ns for p in sorted((tmp_path / 'cache').glob('*.npz'))] == mtimes
    stored[0].write_bytes(stored[0].read_bytes()[:100])   # an entry cut short is computed again
    assert eval_main(common + ['--out', str(tmp_path / 'mended')]) == 0
    mended = json.loads((tmp_path / 'mended' / 'odometry.json').read_text())['summary']
    assert mended['tracker']['ate_sim3_m'] == pytest.approx(summaries[0]['tracker']['ate_sim3_m'])
    assert np.load(stored[0])['depth'].ndim == 2
    # every frame after the first fails tracking (an untrained model's depth, and no 128x96
    # frame gives PnP 300 inliers) and takes the fallback; the node parameter
    # tracking_fallback=learned makes that the learned pose head's
    orb = common + ['--set', 'tracking_correspondences=descriptors', 'tracking_min_inliers=300']
    assert eval_main(orb + ['--out', str(tmp_path / 'orb')]) == 0
    matched = json.loads((tmp_path / 'orb' / 'odometry.json').read_text())['summary']
    assert matched['tracker']['failures'] == 7
    assert matched['tracker']['ate_sim3_m'] != pytest.approx(matched['pose_head']['ate_sim3_m'])
    assert eval_main(orb + ['--out', str(tmp_path / 'learned'), '--set', 'tracking_fallback=learned']) == 0
    learned = json.loads((tmp_path / 'learned' / 'odometry.json').read_text())['summary']
    assert learned['tracker']['ate_sim3_m'] == pytest.approx(learned['pose_head']['ate_sim3_m'])
    assert learned['pose_head']['ate_sim3_m'] == pytest.approx(summaries[0]['pose_head']['ate_sim3_m'])
    for bad in ('tracking_threshold=4', 'localization_enabled=maybe', 'tracking_min_inliers=many',
                'tracking_fallback=guess', 'tracking_correspondences=sift', 'tracking_shift_recovery=sometimes',
                'tracking_shift_fallback=sometimes'):
        assert eval_main(common + ['--out', str(tmp_path / 'bad'), '--set', bad]) == 2
    # a generated dataset's truth is the render's own: no clock offset to apply
    assert eval_main(common + ['--out', str(tmp_path / 'bad'), '--truth-time-offset', '-0.015']) == 2


def test_geovr_eval_odometry_known_floor_runs_the_session_as_a_robot_that_knows_its_height(tiny_data, tmp_path):
    """--known-floor: per sequence, floor_camera_height from the true depth, odom_child base and a
    mount that levels the first frame (its true up becomes odom z); the poses still come back
    in the first frame's optical frame (tracking on the true depth: the same path as without)."""
    from geovr_ros.inference import PerceptionPipeline
    from geovr_training.evaluation.odometry import known_floor_session, run_session, session_config
    from geovr_training.export.onnx_export import export_model
    torch.manual_seed(0)
    model = build_model(preset_args('tiny', descriptor_dim=8))
    ckpt = save_checkpoint(tmp_path / 'm.pt', model, {'data': {'resolution': [128, 96]}}, 0)
    export_model(ckpt, tmp_path / 'model', sizes=[], with_torch_program=False)
    seq = load_sequences(tiny_data, 'test', max_frames=6)[0]
    config, mount = known_floor_session(seq, session_config([]))
    assert config.odom_child == 'base'
    assert config.floor_camera_height == pytest.approx(np.median(seq.T_world_cam[:, 2, 3]), rel=0.05)   # z up, floor 0
    up_first = seq.T_world_cam[0][:3, :3].T @ [0, 0, 1]
    assert np.allclose(mount[:3, :3] @ up_first, [0, 0, 1]) and np.allclose(mount[:3, :3] @ mount[:3, :3].T, np.eye(3))
    assert abs(mount[:3, :3] @ [0, 0, 1] @ [0, 1, 0]) < 1e-9      # the optical axis looks along odom x, z
    pipeline = PerceptionPipeline(tmp_path / 'model', backend='onnxruntime')
    plain = run_session(seq, pipeline, true_depth=True, config=session_config([]), progress=False)[0]
    mounted = run_session(seq, pipeline, true_depth=True, config=config, progress=False, mount=mount)[0]
    assert np.allclose(mounted, plain, atol=1e-6)
    out = tmp_path / 'floor'
    assert eval_main(['odometry', '--model', str(tmp_path / 'model'), '--data', str(tiny_data), '--out', str(out),
                      '--max-sequences', '1', '--max-frames', '6', '--no-progress', '--known-floor']) == 0
    tracker = json.loads((out / 'odometry.json').read_text())['per_sequence'][0]['tracker']
    assert 0.0 <= tracker['floor_frames'] <= 1.0 and tracker['floor_scale'] > 0


def test_the_revisit_is_where_a_true_path_comes_back_to_its_start():
    from geovr_ros.geometry import make_pose, so3_exp
    from geovr_training.evaluation.odometry import revisit_frame, trajectory_row
    angles = np.linspace(0, 2.2 * np.pi, 111)                 # a 1 m-radius circle and a bit more
    gt = np.stack([make_pose(so3_exp(np.array([0.0, a, 0.0])), np.array([np.sin(a), 0.0, 1 - np.cos(a)]))
                   for a in angles])
    j = revisit_frame(gt)
    assert j is not None and abs(angles[j] - 2 * np.pi) < 0.06
    assert revisit_frame(gt[:60]) is None                     # half a circle never comes back
    drifted = gt.copy()
    drifted[:, 0, 3] += 0.1 * angles / (2 * np.pi)             # 10 cm of drift per turn
    assert trajectory_row(drifted, gt)['revisit_error_m'] == pytest.approx(0.1, abs=0.01)
    assert np.isnan(trajectory_row(gt[:60], gt[:60])['revisit_error_m'])


def test_geovr_eval_odometry_reference_odometry_scores_the_depth_the_session_publishes(tiny_data, tmp_path):
    """--reference-odometry: the session gets the true camera path as a wheel odometry would
    give it (lengths off by --reference-length-error, positions by --reference-noise); the
    table reports the scale it reached, its samples and the published depth's metric errors
    (over every frame, and over those after the first sample); the two error flags alone, or
    out of range, are refused."""
    from geovr_ros.geometry import rotation_angle, so3_exp
    from geovr_training.evaluation.odometry import published_depth_errors, reference_poses
    from geovr_training.export.onnx_export import export_model
    path = np.stack([np.eye(4)] * 3)
    path[:, 0, 3] = [0.0, 1.0, 3.0]
    path[1:, :3, :3] = [so3_exp(np.array([0.0, 0.0, 0.2])), so3_exp(np.array([0.0, 0.0, 0.5]))]
    assert np.allclose(reference_poses(path, 0.1)[:, 0, 3], [0.0, 1.1, 3.3])
    assert np.allclose(reference_poses(path)[:, :3, :3], path[:, :3, :3])    # the true orientations
    noisy = reference_poses(path, 0.0, 0.01, seed=3)[:, :3, 3]
    assert 0 < np.abs(noisy - path[:, :3, 3]).max() < 0.06
    turned = reference_poses(path, turn_error=0.1)                            # each turn 10 % long
    assert [rotation_angle(R) for R in turned[:, :3, :3]] == pytest.approx([0.0, 0.22, 0.55])
    K = np.array([[100.0, 0, 31.5], [0, 100.0, 23.5], [0, 0, 1]])
    truth = np.full((48, 64), 2.0)
    half = K.copy()
    half[:2] *= 0.5
    half[:2, 2] = K[:2, 2] * 0.5 - 0.25                 # pixel centres: c -> s (c + 0.5) - 0.5
    assert published_depth_errors(np.full((24, 32), 2.4), half, truth, K) == pytest.approx((0.2, 1.0))
    assert published_depth_errors(np.full((24, 32), 2.5), half, np.full((48, 64), np.nan), K) is None
    torch.manual_seed(0)
    model = build_model(preset_args('tiny', descriptor_dim=8))
    ckpt = save_checkpoint(tmp_path / 'm.pt', model, {'data': {'resolution': [128, 96]}}, 0)
    export_model(ckpt, tmp_path / 'model', sizes=[], with_torch_program=False)
    common = ['odometry', '--model', str(tmp_path / 'model'), '--data', str(tiny_data), '--max-sequences', '1',
              '--max-frames', '6', '--no-progress']
    out = tmp_path / 'wheel'
    assert eval_main(common + ['--out', str(out), '--reference-odometry', '--reference-length-error', '0.05',
                               '--reference-noise', '0.001', '--set', 'scale_odometry_min_motion=0.01']) == 0
    tracker = json.loads((out / 'odometry.json').read_text())['per_sequence'][0]['tracker']
    assert tracker['odometry_scale'] > 0 and tracker['odometry_scale_samples'] >= 0
    assert tracker['depth_abs_rel'] >= 0 and 0 <= tracker['depth_delta1'] <= 1
    assert tracker['odometry_scale_samples'] >= 1 and 0 <= tracker['depth_delta1_scaled'] <= 1   # after the first sample
    assert 'reference odometry scale' in (out / 'odometry.md').read_text()
    assert 'reference_fallbacks' not in tracker   # the motion model places failed frames
    carried = tmp_path / 'carried'                # --set tracking_fallback=reference: the reference does
    assert eval_main(common + ['--out', str(carried), '--reference-odometry', '--reference-turn-error', '0.05',
                               '--set', 'tracking_fallback=reference']) == 0
    tracker = json.loads((carried / 'odometry.json').read_text())['per_sequence'][0]['tracker']
    assert 0 <= tracker['reference_fallbacks'] <= tracker['failures']
    assert eval_main(common + ['--out', str(tmp_path / 'bad'), '--reference-noise', '0.01']) == 2
    assert eval_main(common + ['--out', str(tmp_path / 'bad'), '--reference-turn-error', '0.1']) == 2
    assert eval_main(common + ['--out', str(tmp_path / 'bad'), '--reference-odometry', '--reference-noise', '-1']) == 2
    assert eval_main(common + ['--out', str(tmp_path / 'bad'), '--set', 'tracking_fallback=reference']) == 2
