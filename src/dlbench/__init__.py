"""dlbench: deep-learning hardware benchmarking.

How fast, how costly and how well does this hardware train deep networks, and where does the
time go? See README.md for the quick start and the definitions of every reported figure.
"""

__version__ = "0.1.0"
