"""What a run option may be: the bounds and patterns of ``RunSpec``'s fields."""

from __future__ import annotations

import re

DEFAULT_WARMUP = 10
DEFAULT_TIMED_STEPS = 100
DEFAULT_TTA_EPOCHS = 50  # epoch cap of a --target-accuracy run without --epochs
DEFAULT_STABLE_MAX_TIME_S = 300.0  # --until-stable without --max-time
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
TAG_KEY_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
MAX_TAG_VALUE = 1000
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
# --cpus: auto (the idle ones, chosen before each run) or a list such as 0,2-3
CPUS_PATTERN = r"^(auto|\d+(-\d+)?(,\d+(-\d+)?)*)$"
# Bounds that no real run reaches: beyond them a number is a typo (--steps 1e26), not a plan.
MAX_STEPS = 10**9
MAX_EPOCHS = 10**6
MAX_DATASET = 10**15  # images
MAX_BATCH = 2**31 - 1  # beyond any memory; below it, too large is an oom result
MAX_SEED = 2**32 - 1  # what every framework's generator takes (NumPy's is 32-bit)
MAX_SIDE = 2**16  # pixels of an image side, tokens of a sequence: 65,536
MAX_CLASSES = 2**24  # output classes or vocabulary: 16.7 million
MAX_LAYERS = 10_000
MAX_WIDTH = 2**20
MAX_PROCESSES = 1024  # GPUs of one node, threads, input workers
MAX_NODES = 4096
MAX_SECONDS = 10**7  # 116 days of timed steps
MAX_TEXT = 4096  # characters of a path, a tag value or another free-form option
