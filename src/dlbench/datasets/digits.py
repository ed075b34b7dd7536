"""scikit-learn's bundled 8x8 handwritten digits, resized to a workload's input.

1,797 real images that ship with scikit-learn, so a real-data accuracy run works offline.
Like MNIST, each digit is scaled into the centre of the frame with a margin.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from dlbench.datasets import ArrayData
from dlbench.errors import require

TEST_FRACTION = 0.2
SPLIT_SEED = 0


def load_digits(input_shape: tuple[int, int, int]) -> ArrayData:
    require("sklearn", "digits", "--data digits (scikit-learn's bundled digits)")
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    bunch = sklearn_digits()
    images = _resize(bunch.images, input_shape)
    train_x, test_x, train_y, test_y = train_test_split(
        images,
        bunch.target.astype(np.int64),
        test_size=TEST_FRACTION,
        random_state=SPLIT_SEED,
        stratify=bunch.target,
    )
    return ArrayData("digits", "scikit-learn digits", train_x, train_y, test_x, test_y)


def _resize(images: np.ndarray, input_shape: tuple[int, int, int]) -> np.ndarray:
    channels, height, width = input_shape
    margin_h, margin_w = height // 7, width // 7  # MNIST: a 20x20 digit in a 28x28 frame
    inner = (height - 2 * margin_h, width - 2 * margin_w)
    zoom = (1.0, inner[0] / images.shape[1], inner[1] / images.shape[2])
    scaled = ndimage.zoom(images.astype(np.float64), zoom, order=1)
    scaled = np.clip(scaled / 16.0 * 255.0, 0, 255).astype(np.uint8)
    framed = np.zeros((len(images), height, width), dtype=np.uint8)
    framed[:, margin_h : margin_h + scaled.shape[1], margin_w : margin_w + scaled.shape[2]] = scaled
    return np.repeat(framed[:, None], channels, axis=1)
