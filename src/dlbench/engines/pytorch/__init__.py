"""The PyTorch engine: training loop, input pipeline, tasks, DDP, inference and the
model-file descriptor."""
