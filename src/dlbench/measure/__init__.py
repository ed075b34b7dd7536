"""Timing and statistics. Knows nothing of models or frameworks: the device sync is injected."""
