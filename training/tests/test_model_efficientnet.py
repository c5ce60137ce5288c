"""EfficientNet-Lite0 with the registry package's ImageNet weights: it must see real photographs
as ImageNet taught it (the proof that every layer, padding and normalisation is right)."""

import numpy as np
import pytest
import torch

from geovr_training.model.efficientnet import (FEATURE_CHANNELS, EfficientNetLite0, WeightsError,
                                               load_pretrained, same_padding)

skdata = pytest.importorskip('skimage.data', reason='scikit-image (sample photographs) is not installed')

EGYPTIAN_CAT, TABBY, TIGER_CAT, ESPRESSO = 285, 281, 282, 967


@pytest.fixture(scope='module')
def lite0():
    return load_pretrained(EfficientNetLite0()).eval()


def _classify(model, rgb: np.ndarray, mean=0.5, std=0.5) -> torch.Tensor:
    import cv2
    x = cv2.resize(rgb, (224, 224), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    x = torch.from_numpy((x - mean) / std).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        return model(x).softmax(-1)[0]


def test_pretrained_weights_name_real_photographs(lite0):
    cat = _classify(lite0, skdata.chelsea())
    assert int(cat.argmax()) == EGYPTIAN_CAT and float(cat[EGYPTIAN_CAT]) > 0.6
    assert {EGYPTIAN_CAT, TABBY, TIGER_CAT} <= set(cat.topk(5).indices.tolist())
    coffee = _classify(lite0, skdata.coffee())
    assert int(coffee.argmax()) == ESPRESSO and float(coffee[ESPRESSO]) > 0.8


def test_wrong_input_normalisation_is_measurably_worse(lite0):
    """The [-1, 1] scaling is part of the weights' contract: ImageNet mean/std loses confidence."""
    right = _classify(lite0, skdata.coffee())[ESPRESSO]
    imagenet = _classify(lite0, skdata.coffee(), mean=np.array([0.485, 0.456, 0.406], np.float32),
                         std=np.array([0.229, 0.224, 0.225], np.float32))[ESPRESSO]
    assert float(right) > float(imagenet) + 0.05


def test_untrained_network_does_not_know_the_cat():
    torch.manual_seed(0)
    probs = _classify(EfficientNetLite0().eval(), skdata.chelsea())
    assert float(probs.max()) < 0.05


def test_feature_strides_and_channels(lite0):
    feats = lite0.features(torch.zeros(2, 3, 96, 128))
    assert {s: tuple(f.shape) for s, f in feats.items()} == {
        s: (2, FEATURE_CHANNELS[s], 96 // s, 128 // s) for s in (2, 4, 8, 16, 32)}
    assert set(lite0.features(torch.zeros(1, 3, 64, 64), up_to_stride=8)) == {2, 4, 8}
    cams = lite0.classify_cells(feats[32])
    assert cams.shape == (2, 1000, 3, 4)
    # the mean over cells of the per-cell logits is the image's logits (linear head after pooling)
    pooled = lite0._fc(lite0.head_features(feats[32]).mean(dim=(2, 3)))
    torch.testing.assert_close(cams.mean(dim=(2, 3)), pooled, atol=1e-4, rtol=1e-4)


def test_same_padding_matches_tensorflow_rule():
    # TF SAME: total = max((ceil(n / s) - 1) s + k - n, 0), the extra pixel at the end
    for n in (96, 128, 224):
        for k, s in ((3, 1), (3, 2), (5, 1), (5, 2), (1, 1)):
            total = max((-(-n // s) - 1) * s + k - n, 0)
            left, right, top, bottom = same_padding(k, s)
            assert (left, right) == (total // 2, total - total // 2) == (top, bottom)


def test_weights_that_do_not_fit_are_refused(tmp_path):
    state = EfficientNetLite0().state_dict()
    state.pop('_conv_stem.weight')
    torch.save(state, tmp_path / 'broken.pth')
    with pytest.raises(WeightsError, match='_conv_stem.weight'):
        load_pretrained(EfficientNetLite0(), tmp_path / 'broken.pth')
