"""Keras 3 models of the workloads, layer for layer the PyTorch ones (same parameter counts),
for ``--framework tensorflow`` and ``--framework jax``.

Keras is channels-last: inputs are (H, W, C). Every builder takes the PyTorch builders'
arguments, ``input_shape`` as (C, H, W). Imported only in a run's own process, after
``KERAS_BACKEND`` is set (engines/keras).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers, ops


def _input(input_shape: tuple[int, int, int]) -> Any:
    channels, height, width = input_shape
    return keras.Input((height, width, channels))


def lenet(input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """Caffe's LeNet for MNIST: conv 20@5x5, pool, conv 50@5x5, pool, fc 500, relu, fc."""
    return keras.Sequential(
        [
            _input(input_shape),
            layers.Conv2D(20, 5),
            layers.MaxPooling2D(2),
            layers.Conv2D(50, 5),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(500, activation="relu"),
            layers.Dense(num_classes),
        ],
        name="lenet",
    )


def deep_mnist(input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """TensorFlow's "Deep MNIST for experts": two 5x5 'same' conv+pool, fc 1024, dropout 0.5."""
    return keras.Sequential(
        [
            _input(input_shape),
            layers.Conv2D(32, 5, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 5, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(1024, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(num_classes),
        ],
        name="deep_mnist",
    )


def mlp(input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """Keras' mnist_mlp example: 512-512 ReLU with dropout 0.2."""
    return keras.Sequential(
        [
            _input(input_shape),
            layers.Flatten(),
            layers.Dense(512, activation="relu"),
            layers.Dropout(0.2),
            layers.Dense(512, activation="relu"),
            layers.Dropout(0.2),
            layers.Dense(num_classes),
        ],
        name="mlp",
    )


@keras.saving.register_keras_serializable(package="dlbench")
class LocalResponseNorm(layers.Layer):
    """tf.nn.lrn(depth_radius=4, bias=1, alpha=0.001/9, beta=0.75) over channels, written in
    keras.ops so that every backend runs it (the same as torch's LocalResponseNorm(9, 0.001))."""

    radius, bias, alpha, beta = 4, 1.0, 0.001 / 9, 0.75

    def call(self, x: Any) -> Any:
        channels = x.shape[-1]
        squares = ops.pad(ops.square(x), [[0, 0], [0, 0], [0, 0], [self.radius, self.radius]])
        total = sum(squares[..., i : i + channels] for i in range(2 * self.radius + 1))
        return x / ops.power(self.bias + self.alpha * total, self.beta)


def cifar10_cnn(input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """TensorFlow's CIFAR-10 tutorial network (conv-pool-norm, conv-norm-pool, fc384, fc192)."""
    return keras.Sequential(
        [
            _input(input_shape),
            layers.Conv2D(64, 5, padding="same", activation="relu"),
            layers.MaxPooling2D(3, strides=2, padding="same"),
            LocalResponseNorm(),
            layers.Conv2D(64, 5, padding="same", activation="relu"),
            LocalResponseNorm(),
            layers.MaxPooling2D(3, strides=2, padding="same"),
            layers.Flatten(),
            layers.Dense(384, activation="relu"),
            layers.Dense(192, activation="relu"),
            layers.Dense(num_classes),
        ],
        name="cifar10_cnn",
    )


def _application(name: str, input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    channels, height, width = input_shape
    build = getattr(keras.applications, name)
    return build(
        weights=None,
        input_shape=(height, width, channels),
        classes=num_classes,
        classifier_activation=None,  # logits, as the PyTorch models give
    )


def vgg16(input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """keras.applications.VGG16 (at 224x224 its parameters are torchvision's exactly)."""
    return _application("VGG16", input_shape, num_classes)


def vgg19(input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    return _application("VGG19", input_shape, num_classes)


def resnet50(input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """keras.applications.ResNet50: ResNet v1 with biases in its convolutions, so 79,680
    parameters more than torchvision's v1.5 (25,636,712 vs 25,557,032); said in the docs."""
    return _application("ResNet50", input_shape, num_classes)


def model_a(input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """VGG19's convolutional base, four 3x3 convolutions, global average pooling, 3 FC."""
    channels, height, width = input_shape
    base = keras.applications.VGG19(
        weights=None, include_top=False, input_shape=(height, width, channels)
    )
    x = base.output
    for filters in (512, 512, 256, 256):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(1024, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    x = layers.Dense(512, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    return keras.Model(base.input, layers.Dense(num_classes)(x), name="model_a")


HEAD_WIDTH = 64  # as language_models.HEAD_WIDTH: heads = width / 64


class GPTBlock(layers.Layer):
    """GPT-2's pre-norm block, as language_models.Block: causal attention, GELU MLP."""

    def __init__(self, width: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.width, self.heads = width, max(1, width // HEAD_WIDTH)
        self.ln_1 = layers.LayerNormalization(epsilon=1e-5)
        self.qkv = layers.Dense(3 * width)
        self.proj = layers.Dense(width)
        self.ln_2 = layers.LayerNormalization(epsilon=1e-5)
        self.fc = layers.Dense(4 * width)
        self.fc_out = layers.Dense(width)

    def call(self, x: Any) -> Any:
        length = x.shape[1]  # static; the batch may not be known in a traced graph
        shape = (-1, length, self.heads, self.width // self.heads)
        q, k, v = (ops.reshape(t, shape) for t in ops.split(self.qkv(self.ln_1(x)), 3, axis=-1))
        attended = ops.dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(ops.reshape(attended, (-1, length, self.width)))
        hidden = keras.activations.gelu(self.fc(self.ln_2(x)), approximate=True)
        return x + self.fc_out(hidden)


class GPT(keras.Model):
    """language_models.GPT in Keras: token and position embeddings, pre-norm blocks, a final
    layer norm, logits through the token embedding's transpose (tied, as in GPT-2)."""

    def __init__(self, vocab: int, seq_len: int, depth: int, width: int) -> None:
        super().__init__(name="gpt")
        init = keras.initializers.RandomNormal(stddev=0.02)
        self.width = width
        self.wte = layers.Embedding(vocab, width, embeddings_initializer=init)
        self.wpe = layers.Embedding(seq_len, width, embeddings_initializer=init)
        self.blocks = [GPTBlock(width) for _ in range(depth)]
        self.ln_f = layers.LayerNormalization(epsilon=1e-5)

    def call(self, tokens: Any, training: bool | None = None) -> Any:
        x = self.wte(tokens) + self.wpe(ops.arange(tokens.shape[1]))
        for block in self.blocks:
            x = block(x)
        x = self.ln_f(x)
        table = ops.cast(self.wte.embeddings, x.dtype)
        return ops.cast(ops.matmul(x, ops.transpose(table)), "float32")


def gpt(
    input_shape: tuple[int, int, int], num_classes: int, depth: int = 12, width: int = 768
) -> keras.Model:
    """The gpt workload (input_shape (1, seq_len, 1), num_classes the vocabulary), built."""
    model = GPT(num_classes, input_shape[1], depth, width)
    model(ops.zeros((1, input_shape[1]), dtype="int32"))
    return model


def transformer(
    input_shape: tuple[int, int, int], num_classes: int, depth: int = 4, width: int = 256
) -> keras.Model:
    return gpt(input_shape, num_classes, depth, width)
