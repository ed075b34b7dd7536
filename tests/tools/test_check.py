"""dlbench baseline and dlbench check: verdicts on constructed stores, exit codes through the
command line, and one real check end to end."""

import json
import uuid

import numpy as np
import pytest
from typer.testing import CliRunner

from dlbench import api
from dlbench.cli import app
from dlbench.config import build_spec
from dlbench.launch.local import LaunchOutcome
from dlbench.launch.quiet import describe
from dlbench.measure.quality import CONTENDED_FOREIGN_SHARE, CONTENDED_STEAL_PERCENT
from dlbench.measure.stats import speed_stats
from dlbench.records import Quality, RunResult, StepRecord
from dlbench.store.database import Store
from dlbench.telemetry.interference import survey

from conftest import dlbench_here, run_dlbench

SPEC = build_spec(workload="mlp-mnist", device="cpu", steps=14, warmup=4, val_batches=1)
HARDWARE = {"hostname": "node1", "cpu": {"model": "EPYC", "usable_cpus": 2}, "gpus": []}


def _stored(store, speed, verdict="clean", spec=SPEC, tags=None, hardware=HARDWARE):
    """A finished run of ``spec`` at about ``speed`` img/s, as a real run stores one."""
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    spec = spec.model_copy(update={"tags": tags or {}})
    store.create_run(run_id, "train", spec.model_dump(mode="json"), workload=spec.workload,
                     device="cpu", batch_size=spec.batch_size)  # fmt: skip
    store.set_hardware(run_id, hardware, device="cpu", device_name="EPYC", num_gpus=0)
    rng = np.random.default_rng(len(run_id))
    times = spec.batch_size / speed * rng.lognormal(0, 0.01, 50)
    steps = tuple(StepRecord(i, 0, float(t), 0.0) for i, t in enumerate(times))
    quality = Quality(verdict, (f"{verdict} by construction",), 0.9 if verdict == "contended"
                      else 0.0, 0.0, None)  # fmt: skip
    store.finish_run(
        RunResult(
            run_id=run_id,
            status="ok",
            speed=speed_stats(times, [0.0] * 50, spec.batch_size),
            steps=steps,
            quality=quality,
        )  # fmt: skip
    )
    return run_id


@pytest.fixture
def fake_launches(monkeypatch, store):
    """Check runs that store constructed results instead of training."""
    plan = {"speeds": [100.0], "verdict": "clean", "hardware": HARDWARE}

    def run_repeats(spec, store_, count, **options):
        return [
            LaunchOutcome(
                _stored(
                    store,
                    plan["speeds"][i % len(plan["speeds"])],
                    plan["verdict"],
                    spec,
                    options.get("tags"),
                    plan["hardware"],
                ),  # fmt: skip
                "ok",
                0,
            )
            for i in range(count)
        ]

    monkeypatch.setattr(api, "run_repeats", run_repeats)
    return plan


def _cli(db_path, *args):
    return CliRunner().invoke(app, [*args, "--db", str(db_path)])


def test_baseline_set_list_and_rm(store, db_path):
    ids = [_stored(store, s) for s in (100.0, 102.0, 98.0)]
    made = _cli(db_path, "baseline", "set", "node", *ids)
    assert made.exit_code == 0, made.output
    assert "dlbench check node" in made.output
    listed = _cli(db_path, "baseline", "list", "--json")
    (kept,) = json.loads(listed.output)
    assert kept["name"] == "node" and kept["workload"] == "mlp-mnist"
    assert [r["run_id"] for r in kept["runs"]] == ids
    assert kept["runs"][0]["step_time_cv"] == pytest.approx(0.01, rel=0.5)
    assert kept["spec"]["batch_size"] == SPEC.batch_size and "tags" not in kept["spec"]
    assert kept["hardware"]["hostname"] == "node1"
    again = _cli(db_path, "baseline", "set", "node", ids[0])
    assert again.exit_code != 0 and "already exists" in str(again.exception)
    assert _cli(db_path, "baseline", "set", "node", ids[0], "--replace").exit_code == 0
    assert _cli(db_path, "baseline", "rm", "node").exit_code == 0
    assert json.loads(_cli(db_path, "baseline", "list", "--json").output) == []


def test_a_baseline_refuses_contended_failed_or_mixed_runs(store):
    from dlbench.errors import ConfigError
    from dlbench.tools.check import set_baseline

    contended = _stored(store, 100.0, verdict="contended")
    with pytest.raises(ConfigError, match="measured contended"):
        set_baseline(store, "x", [contended])
    other = _stored(store, 100.0, spec=build_spec(workload="mlp-mnist", device="cpu", steps=30))
    with pytest.raises(ConfigError, match="differ in steps"):
        set_baseline(store, "x", [_stored(store, 100.0), other])
    store.create_run("dead", "train", SPEC.model_dump(mode="json"))
    store.end_unfinished("dead", "failed", "killed")
    with pytest.raises(ConfigError, match="ended failed"):
        set_baseline(store, "x", ["dead"])


@pytest.mark.parametrize(
    ("speeds", "verdict", "code", "word"),
    [
        ([100.0, 101.0, 99.5], "clean", 0, "pass"),
        ([80.0, 79.0, 81.0], "clean", 1, "regression"),
        ([60.0, 61.0, 59.0], "contended", 3, "inconclusive"),
    ],
)
def test_check_verdicts_and_exit_codes_through_the_cli(
    store, db_path, fake_launches, speeds, verdict, code, word
):
    from dlbench.tools.check import set_baseline

    set_baseline(store, "node", [_stored(store, s) for s in (100.0, 101.0, 99.0)])
    fake_launches.update(speeds=speeds, verdict=verdict)
    done = _cli(db_path, "check", "node", "--repeat", "3", "--json", "-")
    assert done.exit_code == code, done.output
    found = json.loads(done.output[done.output.index("{") :])
    assert found["verdict"] == word
    assert set(found) >= {"verdict", "ratio", "ci95", "p_value", "runs"}
    assert len(found["runs"]) == 3
    tagged = Store(str(db_path)).list_runs(tags={"check": "node"})
    assert {r["run_id"] for r in tagged} == set(found["runs"])


def test_a_check_on_other_hardware_says_which_fields_differ(store, db_path, fake_launches):
    from dlbench.tools.check import set_baseline

    set_baseline(store, "node", [_stored(store, s) for s in (100.0, 101.0, 99.0)])
    fake_launches["hardware"] = {**HARDWARE, "cpu": {"model": "Xeon", "usable_cpus": 2}}
    done = _cli(db_path, "check", "node", "--repeat", "2")
    assert done.exit_code == 0, done.output
    assert "warning: this machine differs from the baseline's: CPU: EPYC (baseline) vs Xeon" in (
        " ".join(done.output.split())
    )


def test_check_refuses_bad_input_with_exit_2(db_path, capsys):
    missing = dlbench_here(capsys, "check", "nosuch")  # a mistyped --db makes no database
    assert missing.returncode == 2 and "no results database at" in missing.stderr
    assert not db_path.exists()
    Store(str(db_path)).close()
    done = dlbench_here(capsys, "check", "nosuch")
    assert done.returncode == 2 and "no baseline named 'nosuch'" in done.stderr
    bad = dlbench_here(capsys, "check", "nosuch", "--tolerance", "1.5")
    assert bad.returncode == 2


@pytest.mark.serial  # runs measured uncontended: no other test may run beside them
def test_quiet_runs_are_not_contended_and_a_real_check_reruns_them_here(db_path):
    found = survey(1.0)
    if found.foreign_cpu_cores - found.resolution_cores > 0.1 * found.usable_cores:
        pytest.skip(f"other work is running here now: {'; '.join(describe(found))}")
    fast = ["--device", "cpu", "--steps", "60", "--warmup", "5", "--val-batches", "1"]
    first = run_dlbench(db_path, "run", "mlp-mnist", *fast, "--repeat", "2", "--json", "-")
    assert first.returncode == 0, first.stderr
    runs = json.loads(first.stdout)
    assert len(runs["runs"]) == 2 and runs["between_runs"]["runs"] == 2
    for quality in (r["quality"] for r in runs["runs"]):
        # The hypervisor may still steal this VM's time; nothing else on it competed.
        assert quality["foreign_cpu_cores"] < CONTENDED_FOREIGN_SHARE * quality["usable_cores"]
        if quality["verdict"] == "contended":
            assert quality["steal_percent"] >= CONTENDED_STEAL_PERCENT, quality["reasons"]
    if any(r["quality_verdict"] == "contended" for r in runs["runs"]):
        pytest.skip("the hypervisor stole too much for a baseline: it needs uncontended runs")
    ids = [r["run_id"] for r in runs["runs"]]
    assert run_dlbench(db_path, "baseline", "set", "mlp", *ids).returncode == 0
    checked = run_dlbench(db_path, "check", "mlp", "--repeat", "1", "--tolerance", "0.9",
                          "--json", "-")  # fmt: skip
    found = json.loads(checked.stdout)
    assert checked.returncode == {"inconclusive": 3}.get(found["verdict"], 0), checked.stderr
    assert found["verdict"] in ("pass", "improvement", "inconclusive")
    assert len(found["runs"]) == 1 and found["reference_runs"] == ids
    assert "the single run given the other side's between-run variance" in found["method"]
    (stored,) = Store(str(db_path)).list_runs(tags={"check": "mlp"})
    assert stored["config"]["steps"] == 60


def test_contended_runs_are_kept_as_a_baseline_only_knowingly_and_said_so(
    store, db_path, fake_launches
):
    ids = [_stored(store, s, verdict="contended") for s in (60.0, 61.0)]
    refused = _cli(db_path, "baseline", "set", "shared", *ids)
    assert refused.exit_code != 0 and "--accept-contended" in str(refused.exception.hint)
    kept = _cli(db_path, "baseline", "set", "shared", *ids, "--accept-contended")
    assert kept.exit_code == 0, kept.output
    listed = _cli(db_path, "baseline", "list")
    assert "2 contended (accepted)" in " ".join(listed.output.split())
    (record,) = json.loads(_cli(db_path, "baseline", "list", "--json").output)
    assert [r["accepted_contended"] for r in record["runs"]] == [True, True]
    fake_launches["speeds"] = [100.0]
    checked = _cli(db_path, "check", "shared", "--repeat", "2")
    said = " ".join(checked.output.split())
    assert "were measured contended and kept knowingly (--accept-contended)" in said


def test_repeats_show_each_runs_verdict_and_how_to_keep_contended_ones(store, capsys):
    from dlbench.render.run_lists import baseline_hint, repeat_line

    ids = [_stored(store, s, verdict="contended") for s in (60.0, 61.0)]
    runs = [store.run(r) for r in ids]
    assert "contended" in repeat_line(runs[0]) and "img/s" in repeat_line(runs[0])
    hint = baseline_hint(runs)
    assert f"dlbench baseline set NAME {ids[0]} {ids[1]} --accept-contended" in hint
    assert "--cpus auto" in hint
