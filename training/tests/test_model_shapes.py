"""GeoVR-S output shapes, camera-ray twin of the numpy core, export wrapper and FLOPs."""

import math

import numpy as np
import pytest
import torch

from geovr_ros.geometry import matrix_from_quat_xyzw, plucker_rays as np_plucker_rays
from geovr_training.model import (CONTRACT_OUTPUTS, ModelArgs, PerceptionGraph, build_model,
                                  count_flops, count_parameters, export_forward, teacher_args)
from geovr_training.model.network import canonical_quaternion, quaternion_to_matrix
from geovr_training.model.rays import camera_rays, plucker_rays

SMALL = dict(dim=32, depth=4, num_heads=2, mlp_ratio=2.0, decoder_dim=16, descriptor_dim=24)


def _k(fx, fy, cx, cy, batch=1):
    k = torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    return k.expand(batch, 2, 3, 3).clone()


@pytest.mark.parametrize('height,width,k', [
    (192, 256, (200.0, 200.0, 127.5, 95.5)),
    (96, 128, (60.0, 70.0, 50.0, 40.0)),
    (64, 224, (300.0, 300.0, 111.5, 31.5)),
])
def test_output_shapes_for_resolutions_and_intrinsics(height, width, k):
    model = build_model(ModelArgs(**SMALL, token_grid=[3, 4], distill_dims=[8, 12]))
    images = torch.randn(2, 2, 3, height, width)
    out = model(images, _k(*k, batch=2), with_distill=True)
    assert out['depth'].shape == (2, 2, height, width)
    assert out['rel_pose'].shape == (2, 4, 4)
    assert out['scale'].shape == (2,)
    assert out['tokens'].shape == (2, 2, 12, 32)
    assert out['token_xyz'].shape == (2, 2, 12, 3)
    assert out['descriptor'].shape == (2, 2, 24)
    assert [d.shape[2] for d in out['distill']] == [8, 12]
    assert out['distill'][0].shape[-2:] == (height // 16, width // 16)
    assert torch.all(out['depth'] > 0)
    torch.testing.assert_close(out['descriptor'].norm(dim=-1), torch.ones(2, 2))
    torch.testing.assert_close(out['rel_pose'][:, 3], torch.tensor([[0.0, 0, 0, 1]] * 2))
    rot = out['rel_pose'][:, :3, :3]
    torch.testing.assert_close(rot @ rot.transpose(1, 2), torch.eye(3).expand(2, 3, 3), atol=1e-5, rtol=0)
    # metric depth = scale * relative depth; tokens lie in front of the camera
    torch.testing.assert_close(out['depth'], out['depth_rel'] * out['scale'][:, None, None, None])
    assert torch.all(out['token_xyz'][..., 2] > 0)


@pytest.mark.parametrize('height,width', [(64, 96), (96, 128)])
def test_pose_from_matching_covers_the_patch_grid(height, width):
    torch.manual_seed(0)
    model = build_model(ModelArgs(**SMALL, pose_from_matching=True)).eval()
    images, k = torch.randn(2, 2, 3, height, width), _k(80.0, 80.0, width / 2, height / 2, batch=2)
    with torch.no_grad():
        out = model(images, k)
    hp, wp = height // 16, width // 16
    assert out['match_logits'].shape == (2, hp, wp, hp * wp)
    rot = out['rel_pose'][:, :3, :3]
    torch.testing.assert_close(rot @ rot.transpose(1, 2), torch.eye(3).expand(2, 3, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(out['rel_pose'][:, :3, 3], out['trans_norm'] * out['scale'][:, None])
    regressed = model.motion
    model.motion = None  # the translation is the regressed head's, the rotation is not
    with torch.no_grad():
        plain = model(images, k)
    model.motion = regressed
    torch.testing.assert_close(plain['trans_norm'], out['trans_norm'])
    assert not torch.allclose(plain['quat'], out['quat'])


def test_weighted_rotation_recovers_rotations_and_ignores_zero_weights():
    from geovr_training.model.motion import weighted_rotation
    torch.manual_seed(0)
    cur = torch.nn.functional.normalize(torch.randn(1, 40, 3) + torch.tensor([0.0, 0.0, 2.0]), dim=-1)
    for degrees in (0.3, 8.0, 45.0, 150.0):
        angle = math.radians(degrees)
        axis = torch.nn.functional.normalize(torch.randn(3), dim=0)
        quat = torch.cat([axis * math.sin(angle / 2), torch.tensor([math.cos(angle / 2)])])[None]
        ref = cur @ quaternion_to_matrix(quat).transpose(1, 2)
        weight = torch.full((1, 40), 1 / 40)
        torch.testing.assert_close(weighted_rotation(ref, cur, weight), quat, atol=1e-5, rtol=0)
        outliers = ref.clone()
        outliers[:, :10] = torch.nn.functional.normalize(torch.randn(1, 10, 3), dim=-1)
        weight[:, :10] = 0.0
        torch.testing.assert_close(weighted_rotation(outliers, cur, weight), quat, atol=1e-5, rtol=0)


def test_matching_a_frame_against_itself_gives_no_motion():
    from geovr_training.model.motion import CrossFrameMotion
    torch.manual_seed(0)
    motion = CrossFrameMotion()
    with torch.no_grad():
        motion.logit_scale.fill_(5.0)  # sharp matches: the soft-argmax sits on the patch itself
    grid = torch.randn(1, 1, 16, 3, 4).expand(1, 2, 16, 3, 4)
    rays = torch.nn.functional.avg_pool2d(camera_rays(_k(60.0, 60.0, 31.5, 23.5)[:, 0], 48, 64), 16)
    quat, logits = motion(grid, rays[:, None].expand(1, 2, 3, 3, 4))
    torch.testing.assert_close(quat, torch.tensor([[0.0, 0.0, 0.0, 1.0]]), atol=1e-3, rtol=0)
    assert logits.shape == (1, 3, 4, 12)


def test_token_xyz_follows_depth_and_rays():
    """A constant depth map gives token z equal to that depth and x, y from K."""
    model = build_model(ModelArgs(**SMALL, token_grid=[2, 2]))
    k = _k(100.0, 100.0, 63.5, 31.5)
    with torch.no_grad():
        out = model(torch.randn(1, 2, 3, 64, 128), k)
    z = out['token_xyz'][..., 2]
    depth_mean = out['depth'].mean(dim=(-1, -2))
    assert torch.allclose(z.mean(-1), depth_mean, rtol=0.2)
    # left tokens have negative x, right tokens positive x
    xyz = out['token_xyz'][0, 0].reshape(2, 2, 3)
    assert torch.all(xyz[:, 0, 0] < 0) and torch.all(xyz[:, 1, 0] > 0)


def test_ray_embedding_changes_output_with_intrinsics_only_when_enabled():
    images = torch.randn(1, 2, 3, 64, 64)
    for use_rays in (True, False):
        torch.manual_seed(0)
        model = build_model(ModelArgs(**SMALL, use_ray_embedding=use_rays)).eval()
        with torch.no_grad():
            a = model(images, _k(50.0, 50.0, 31.5, 31.5))['descriptor']
            b = model(images, _k(120.0, 120.0, 31.5, 31.5))['descriptor']
        assert (not torch.allclose(a, b)) == use_rays


def test_torch_plucker_rays_match_numpy_core():
    rng = np.random.default_rng(0)
    k = np.array([[210.0, 0.0, 130.2], [0.0, 190.0, 92.7], [0.0, 0.0, 1.0]])
    angle = rng.normal(size=3)
    from geovr_ros.geometry import so3_exp
    pose = np.eye(4)
    pose[:3, :3] = so3_exp(angle)
    pose[:3, 3] = rng.normal(size=3)
    ref = np_plucker_rays(k, 12, 20, pose)  # (H, W, 6)
    got = plucker_rays(torch.from_numpy(k)[None], 12, 20, torch.from_numpy(pose)[None])[0]
    np.testing.assert_allclose(got.permute(1, 2, 0).numpy(), ref, atol=1e-10)
    ref_cam = np_plucker_rays(k, 12, 20)
    got_cam = plucker_rays(torch.from_numpy(k)[None], 12, 20)[0]
    np.testing.assert_allclose(got_cam.permute(1, 2, 0).numpy(), ref_cam, atol=1e-10)
    # z = 1 rays through pixel (row 3, col 7) = K^-1 [7, 3, 1]
    rays = camera_rays(torch.from_numpy(k)[None], 12, 20)[0]
    np.testing.assert_allclose(rays[:, 3, 7].numpy(), np.linalg.solve(k, [7.0, 3.0, 1.0]), atol=1e-12)


def test_quaternion_twin_matches_numpy_core():
    q = torch.tensor([[0.1, -0.4, 0.3, -0.8], [0.5, 0.5, -0.5, 0.5]], dtype=torch.float64)
    canon = canonical_quaternion(q)
    assert torch.all(canon[:, 3] >= 0)
    np.testing.assert_allclose(quaternion_to_matrix(canon).numpy(), matrix_from_quat_xyzw(q.numpy()), atol=1e-12)


def test_export_forward_returns_contract_in_order_without_distill_heads():
    model = build_model(ModelArgs(**SMALL, distill_dims=[8])).eval()
    images, k = torch.randn(1, 2, 3, 64, 96), _k(80.0, 80.0, 47.5, 31.5)
    with torch.no_grad():
        out = export_forward(model, images, k)
    assert tuple(out) == CONTRACT_OUTPUTS
    graph = torch.jit.trace(PerceptionGraph(model), (images, k))
    used = {n.kind() for n in graph.inlined_graph.nodes()}
    assert 'aten::linalg_inv' not in used
    names = str(graph.inlined_graph)
    assert 'distill_heads' not in names


@pytest.mark.parametrize('pose_from_matching', [False, True])
def test_onnx_export_with_dynamic_size_matches_torch(tmp_path, pose_from_matching):
    ort = pytest.importorskip('onnxruntime')
    from geovr_training.model import export_onnx
    torch.manual_seed(0)
    model = build_model(ModelArgs(**SMALL, pose_from_matching=pose_from_matching)).eval()
    path = export_onnx(PerceptionGraph(model), str(tmp_path / 'm.onnx'), list(CONTRACT_OUTPUTS), 64, 96)
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    for height, width in [(64, 96), (128, 160)]:
        images, k = torch.randn(1, 2, 3, height, width), _k(90.0, 95.0, width / 2, height / 2)
        got = session.run(None, {'images': images.numpy(), 'intrinsics': k.numpy()})
        with torch.no_grad():
            ref = PerceptionGraph(model)(images, k)
        for g, r in zip(got, ref):
            np.testing.assert_allclose(g, r.numpy(), atol=2e-4, rtol=1e-3)


def test_flops_and_budget_of_default_student():
    model = build_model()
    flops = count_flops(model, 192, 256)
    assert 1e9 < flops < 4e9  # about 3.2 GFLOPs per 2-frame clip at 256x192
    assert count_flops(model, 96, 128) < flops / 3
    assert count_parameters(model) < 5_000_000
    teacher = build_model(teacher_args())
    assert count_parameters(teacher) > 2 * count_parameters(model)
    assert count_flops(teacher, 192, 256) > 2 * flops


def test_invalid_model_args_raise_with_value():
    with pytest.raises(ValueError, match='num_heads 5'):
        ModelArgs(dim=32, num_heads=5)
    with pytest.raises(ValueError, match='unknown model_args'):
        ModelArgs.from_dict({'dim': 32, 'bogus': 1})
