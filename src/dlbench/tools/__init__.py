"""Tools beside the benchmark proper: the largest batch that fits, the live monitor,
the quick start, folder inference, and the baseline check."""
