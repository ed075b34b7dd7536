"""Every registry entry resolves: a moved function fails here, not in a user's run."""

import pytest

from dlbench.datasets import FORMATS, SYNTHETIC_SIZES
from dlbench.frameworks import FRAMEWORKS
from dlbench.launch import LAUNCHERS
from dlbench.registry import resolve
from dlbench.sweep.executors import EXECUTORS
from dlbench.workloads import WORKLOADS, frameworks_of

# Keras builders resolve in a child process (tests/engines/test_keras.py): importing keras
# here would import TensorFlow into the test process, beside torch.
ENTRIES = (
    [
        (f"workload {n} ({fw})", p)
        for n, w in WORKLOADS.items()
        for fw, p in w.builders.items()
        if fw != "keras"
    ]
    + [(f"engine {n}", f.engine) for n, f in FRAMEWORKS.items()]
    + [(f"format {n}", p) for n, pair in FORMATS.items() for p in pair]
    + [(f"launcher {n}", p) for n, p in LAUNCHERS.items()]
    + [(f"sweep executor {n}", p) for n, p in EXECUTORS.items()]
)


@pytest.mark.parametrize(("what", "path"), ENTRIES, ids=[e[0] for e in ENTRIES])
def test_entry_resolves_to_a_callable(what, path):
    assert callable(resolve(path)), what


def test_every_workload_has_a_known_data_format_and_an_engine():
    for workload in WORKLOADS.values():
        assert workload.data_format in FORMATS and workload.data_format in SYNTHETIC_SIZES
        assert set(frameworks_of(workload)) <= set(FRAMEWORKS)
        assert workload.datasets
