"""Naming by windows: the layout of the crops, the crops themselves, and which window names
each cell (no ROS, no inference)."""
from __future__ import annotations

import numpy as np
import pytest

from geovr_ros.geometry import ShapeError
from geovr_ros.objects import Vocabulary, VocabularyError
from geovr_ros.objects.vocabulary import Category
from geovr_ros.objects.windows import crop_windows, window_boxes, window_cell_logits

BACKPACK, STUDIO_COUCH = 414, 831


@pytest.fixture(scope='module')
def vocabulary():
    return Vocabulary([Category('backpack', {BACKPACK: 'backpack'}), Category('sofa', {STUDIO_COUCH: 'studio couch'})])


def test_windows_tile_the_image_edge_to_edge_half_overlapping():
    boxes, scale = window_boxes(256, 192, (0.4, 0.7))
    sides = boxes[:, 2] - boxes[:, 0]
    np.testing.assert_allclose(sides, boxes[:, 3] - boxes[:, 1])
    np.testing.assert_allclose(sides, np.where(scale == 0, 0.4 * 192, 0.7 * 192))
    assert boxes.min() >= 0 and boxes[:, 2].max() == pytest.approx(256) and boxes[:, 3].max() == pytest.approx(192)
    for k, side in ((0, 0.4 * 192), (1, 0.7 * 192)):
        xs, ys = np.unique(boxes[scale == k, 0]), np.unique(boxes[scale == k, 1])
        assert len(xs) * len(ys) == (scale == k).sum()
        assert np.diff(xs).max() <= side / 2 + 1e-9 and np.diff(ys).max() <= side / 2 + 1e-9  # >= half overlap
    assert (scale == 0).sum() == 6 * 4 and (scale == 1).sum() == 3 * 2
    whole, _ = window_boxes(256, 192, (1.0,))
    np.testing.assert_allclose(whole, [[0, 0, 192, 192], [64, 0, 256, 192]])


@pytest.mark.parametrize('scales', [(0.0,), (1.5,), (float('nan'),)])
def test_window_scales_outside_the_image_are_refused(scales):
    with pytest.raises(VocabularyError, match='fractions of the image height'):
        window_boxes(256, 192, scales)


def test_crops_are_the_boxes_resized():
    image = np.arange(8 * 12 * 2, dtype=np.float32).reshape(8, 12, 2)
    crops = crop_windows(image, np.array([[2, 0, 6, 4], [0, 4, 4, 8]]), 2)
    assert crops.shape == (2, 2, 2, 2) and crops.dtype == np.float32
    np.testing.assert_allclose(crops[0], image[0:4, 2:6].reshape(2, 2, 2, 2, 2).mean((1, 3)))  # area mean
    np.testing.assert_allclose(crops[1], image[4:8, 0:4].reshape(2, 2, 2, 2, 2).mean((1, 3)))
    enlarged = crop_windows(image, np.array([[0, 0, 2, 2]]), 4)
    assert enlarged.shape == (1, 4, 4, 2)
    assert enlarged[0].min() >= image[0:2, 0:2].min() and enlarged[0].max() <= image[0:2, 0:2].max()


def _logits(named: dict[int, int], n: int) -> np.ndarray:
    """(n, 1000) uniform logits except window i, which names class named[i] at 10."""
    logits = np.zeros((n, 1000))
    for window, imagenet_class in named.items():
        logits[window, imagenet_class] = 10.0
    return logits


def test_each_cell_takes_the_most_confident_of_its_nearest_windows(vocabulary):
    boxes, scale = window_boxes(256, 192, (0.4, 0.7))
    small_top_left = int(np.flatnonzero((scale == 0) & (boxes[:, 0] == 0) & (boxes[:, 1] == 0))[0])
    big_bottom_right = int(np.flatnonzero(scale == 1)[-1])
    logits = _logits({small_top_left: BACKPACK, big_bottom_right: STUDIO_COUCH}, len(boxes))
    cells = window_cell_logits(logits, boxes, scale, (6, 8), (256, 192), vocabulary)
    labels, _ = vocabulary.label_cells(vocabulary.probabilities(cells))
    names = np.array(vocabulary.names + ('-',))[labels]
    # of the small windows, the top-left one (centre 38, 38 px) is the nearest to cells (0, 0)
    # and (1, 1) (centres 16 and 48 px); of the big ones, the bottom-right (121..256, 58..192)
    # to the bottom-right cells
    assert names[0, 0] == 'backpack' and names[1, 1] == 'backpack' and names[0, 3] == '-'
    assert (names[3:, 5:] == 'sofa').all() and names[0, 0] != 'sofa'
    assert set(np.unique(names)) == {'backpack', 'sofa', '-'}


def test_window_logits_that_do_not_fit_are_refused(vocabulary):
    boxes, scale = window_boxes(64, 48, (0.5,))
    with pytest.raises(ShapeError, match='same N >= 1 windows'):
        window_cell_logits(np.zeros((len(boxes) + 1, 1000)), boxes, scale, (3, 4), (64, 48), vocabulary)
    with pytest.raises(VocabularyError, match='NaN'):
        window_cell_logits(np.full((len(boxes), 1000), np.nan), boxes, scale, (3, 4), (64, 48), vocabulary)
