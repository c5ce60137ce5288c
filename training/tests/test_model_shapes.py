"""GeoVR-S (v2, the 'tiny' preset) output shapes, camera-ray twin of the numpy core, export
wrapper, FLOPs and argument checks."""

import numpy as np
import pytest
import torch

from geovr_ros.geometry import matrix_from_quat_xyzw, plucker_rays as np_plucker_rays
from geovr_training.model import (CONTRACT_OUTPUTS, PRESETS, ModelArgsV2, PerceptionGraph, build_model, count_flops,
                                  count_parameters, export_forward, model_args_from_dict, preset_args)
from geovr_training.model.rays import camera_rays, plucker_rays
from geovr_training.model.rotations import canonical_quaternion, quaternion_to_matrix


def tiny(**overrides) -> ModelArgsV2:
    return preset_args('tiny', descriptor_dim=24, **overrides)


def _k(fx, fy, cx, cy, batch=1):
    k = torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    return k.expand(batch, 2, 3, 3).clone()


@pytest.mark.parametrize('height,width,k', [
    (192, 256, (200.0, 200.0, 127.5, 95.5)),
    (96, 128, (60.0, 70.0, 50.0, 40.0)),
    (64, 224, (300.0, 300.0, 111.5, 31.5)),
    (480, 640, (500.0, 500.0, 319.5, 239.5)),
])
def test_output_shapes_for_resolutions_and_intrinsics(height, width, k):
    model = build_model(tiny(token_grid=[3, 4], distill_dims=[8, 12]))
    images = torch.randn(2, 2, 3, height, width)
    out = model(images, _k(*k, batch=2), with_distill=True)
    assert out['depth'].shape == (2, 2, height, width)
    assert out['rel_pose'].shape == (2, 4, 4)
    assert out['scale'].shape == (2,)
    assert out['tokens'].shape == (2, 2, 12, 32)
    assert out['token_xyz'].shape == (2, 2, 12, 3)
    assert out['descriptor'].shape == (2, 2, 24)
    assert [d.shape[2] for d in out['distill']] == [8, 12]
    assert out['distill'][0].shape[-2:] == (height // 32, width // 32)
    assert torch.all(out['depth'] > 0)
    torch.testing.assert_close(out['descriptor'].norm(dim=-1), torch.ones(2, 2))
    torch.testing.assert_close(out['rel_pose'][:, 3], torch.tensor([[0.0, 0, 0, 1]] * 2))
    rot = out['rel_pose'][:, :3, :3]
    torch.testing.assert_close(rot @ rot.transpose(1, 2), torch.eye(3).expand(2, 3, 3), atol=1e-5, rtol=0)
    # metric depth = scale * relative depth; tokens lie in front of the camera
    torch.testing.assert_close(out['depth'], out['depth_rel'] * out['scale'][:, None, None, None])
    assert torch.all(out['token_xyz'][..., 2] > 0)
    with torch.no_grad():
        graph_out = PerceptionGraph(model.eval())(images[:1], _k(*k))
    assert len(graph_out) == len(CONTRACT_OUTPUTS)


def test_token_xyz_follows_depth_and_rays():
    """A constant depth map gives token z equal to that depth and x, y from K."""
    model = build_model(tiny(token_grid=[2, 2]))
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
        model = build_model(tiny(use_ray_embedding=use_rays)).eval()
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
    model = build_model(tiny(distill_dims=[8])).eval()
    images, k = torch.randn(1, 2, 3, 64, 96), _k(80.0, 80.0, 47.5, 31.5)
    with torch.no_grad():
        out = export_forward(model, images, k)
    assert tuple(out) == CONTRACT_OUTPUTS
    graph = torch.jit.trace(PerceptionGraph(model), (images, k))
    used = {n.kind() for n in graph.inlined_graph.nodes()}
    assert 'aten::linalg_inv' not in used
    names = str(graph.inlined_graph)
    assert 'distill_heads' not in names


def test_onnx_export_with_dynamic_size_matches_torch(tmp_path):
    ort = pytest.importorskip('onnxruntime')
    from geovr_training.model import export_onnx
    torch.manual_seed(0)
    model = build_model(tiny()).eval()
    path = export_onnx(PerceptionGraph(model), str(tmp_path / 'm.onnx'), list(CONTRACT_OUTPUTS), 64, 96)
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    for height, width in [(64, 96), (128, 160)]:
        images, k = torch.randn(1, 2, 3, height, width), _k(90.0, 95.0, width / 2, height / 2)
        got = session.run(None, {'images': images.numpy(), 'intrinsics': k.numpy()})
        with torch.no_grad():
            ref = PerceptionGraph(model)(images, k)
        for g, r in zip(got, ref):
            np.testing.assert_allclose(g, r.numpy(), atol=2e-4, rtol=1e-3)


def test_flops_and_budget_of_the_v2_network_and_the_tiny_preset():
    model = build_model(preset_args('v2', pretrained=False))  # the shipped architecture, no weights package
    flops = count_flops(model, 192, 256)
    assert 1.5e9 < flops < 4e9  # about 2.6 GFLOPs per 2-frame clip at 256x192
    assert count_flops(model, 96, 128) < flops / 3
    assert count_parameters(model) < 8_000_000
    small = build_model('tiny')
    assert not small.args.pretrained and small.args.dim < model.args.dim
    assert count_parameters(small) < count_parameters(model) and count_flops(small, 192, 256) < flops
    with_distill = build_model(preset_args('tiny', distill_dims=[64, 64]))
    assert count_parameters(with_distill) == count_parameters(small)  # training-only heads are not exported
    assert count_parameters(with_distill, exported_only=False) > count_parameters(small, exported_only=False)


def test_invalid_model_args_raise_with_value():
    with pytest.raises(ValueError, match='num_heads 5'):
        ModelArgsV2(dim=32, num_heads=5)
    with pytest.raises(ValueError, match='frozen_stages'):
        ModelArgsV2(frozen_stages=9)
    with pytest.raises(ValueError, match='unknown model_args'):
        ModelArgsV2.from_dict({'family': 'geovr-s-v2', 'patch': 16})
    with pytest.raises(ValueError, match="preset 'student' is not one of"):
        preset_args('student')
    with pytest.raises(ValueError, match="family 'geovr-s'"):
        model_args_from_dict({'family': 'geovr-s'})


def test_presets_build_from_their_name_and_a_config_section():
    assert set(PRESETS) == {'v2', 'tiny'}
    assert build_model('tiny').args == preset_args('tiny') == model_args_from_dict({'preset': 'tiny'})
    section = model_args_from_dict({'preset': 'tiny', 'dim': 48, 'token_grid': [2, 2]}, pretrained=False)
    assert section.dim == 48 and section.depth == PRESETS['tiny']['depth'] and section.token_grid == [2, 2]
    assert model_args_from_dict({}, pretrained=False) == preset_args('v2', pretrained=False)
