"""The Keras 3 engines (TensorFlow and JAX backends): training loop, input, FLOPs."""
