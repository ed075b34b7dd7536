"""Per-run result files of a sweep: one file per run, even when runs finish at once."""

import json
import threading

from dlbench.config import build_spec
from dlbench.sweep.execute import write_result_file
from dlbench.sweep.file import SweepRun


def _run(batch):
    spec = build_spec(workload="mlp-mnist", device="cpu", batch_size=batch, steps=13)
    return SweepRun(spec, spec.run_key, False, {"batch_size": batch})


def test_runs_sharing_a_name_get_a_file_each_and_a_rerun_replaces_its_own(tmp_path):
    first, second = _run(16), _run(32)
    a = write_result_file(tmp_path, {"mean_speed": 1.0}, first, "cpu")
    b = write_result_file(tmp_path, {"mean_speed": 2.0}, second, "cpu")
    assert a != b and a.name.endswith("cpu:1:none.json") and second.key[:8] in b.name
    again = write_result_file(tmp_path, {"mean_speed": 3.0}, first, "cpu")
    assert again == a and json.loads(a.read_text())["mean_speed"] == 3.0
    assert len(list(tmp_path.glob("*.json"))) == 2


def test_runs_finishing_at_once_never_share_a_file(tmp_path):
    runs = [_run(8 * (i + 1)) for i in range(6)]
    barrier = threading.Barrier(len(runs))

    def write(run):
        barrier.wait()
        write_result_file(tmp_path, {"run": run.key}, run, "cpu")

    threads = [threading.Thread(target=write, args=(r,)) for r in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    written = {json.loads(p.read_text())["run_key"] for p in tmp_path.glob("*.json")}
    assert written == {r.key for r in runs}
