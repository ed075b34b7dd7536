import numpy as np

from dlbench.datasets.digits import load_digits


def test_digits_resized_and_split_for_each_input_shape():
    grey = load_digits((1, 28, 28))
    assert grey.train_x.shape == (1437, 1, 28, 28) and grey.test_x.shape == (360, 1, 28, 28)
    assert grey.train_x.dtype == np.uint8 and grey.train_x.max() == 255
    assert grey.train_x[:, :, :4].max() == 0  # an MNIST-like empty margin
    colour = load_digits((3, 32, 32))
    assert colour.train_x.shape == (1437, 3, 32, 32)
    np.testing.assert_array_equal(colour.train_x[:, 0], colour.train_x[:, 2])
    assert sorted(set(grey.test_y)) == list(range(10))  # stratified: every class in test
