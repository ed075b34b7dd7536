"""FLOPs of one Keras training step (forward, loss, backward) on the backend that runs it:
XLA's cost analysis of the jitted gradient on JAX (LeNet, batch 100: 1.34 GFLOP, PyTorch's
FlopCounterMode 1.32), the TensorFlow profiler's float operations of the traced gradient on
TensorFlow (2.22 GFLOP for the same step: it overcounts, so the engine reports it, not
stores it)."""

from __future__ import annotations

from typing import Any

import numpy as np


def jax_train_step(model: Any, images: np.ndarray, labels: np.ndarray) -> int:
    import jax
    import keras

    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def loss(trainable: Any, non_trainable: Any, x: Any, y: Any) -> Any:
        logits, _ = model.stateless_call(trainable, non_trainable, x, training=True)
        return loss_fn(y, logits)

    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    compiled = jax.jit(jax.grad(loss)).lower(trainable, non_trainable, images, labels).compile()
    cost = compiled.cost_analysis()
    if isinstance(cost, list):  # older jax: one dict per computation
        cost = cost[0]
    if not cost or "flops" not in cost:
        raise RuntimeError("XLA gave no cost analysis for this computation")
    return int(cost["flops"])


def tf_train_step(model: Any, images: np.ndarray, labels: np.ndarray) -> int:
    import keras
    import tensorflow as tf
    from tensorflow.python.profiler import model_analyzer, option_builder

    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def step(x: Any, y: Any) -> Any:
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        return tape.gradient(loss, model.trainable_variables)

    graph = step.get_concrete_function(
        tf.TensorSpec(images.shape, tf.float32), tf.TensorSpec(labels.shape, tf.int64)
    ).graph
    options = option_builder.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    found = model_analyzer.profile(graph, options=options)
    return int(found.total_float_ops)
