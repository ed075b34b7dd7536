"""compare, scaling, cost and the report, from runs in a real store."""

import json
import re

import pytest

from dlbench.analysis import bottleneck
from dlbench.analysis.compare import compare
from dlbench.analysis.cost import find_price, load_prices, run_cost
from dlbench.errors import ConfigError, DlbenchError
from dlbench.records import Quality
from dlbench.report.html import build
from dlbench.store.stored import StoredRun
from synthetic_runs import stored_device_run as _run

from conftest import dlbench_here, run_dlbench


def test_gpu_vs_cpu_verdict_with_both_hypotheses(store):
    _run(store, "cpu-1", "cpu", 0.41, util=98)
    _run(store, "gpu-1", "cuda:0", 0.01, util=12, seed=1, gpu_util=95, name="NVIDIA H100")
    result = compare(store, ["cpu-1", "gpu-1"], by="device")
    (c,) = result.contrasts
    assert result.groups[0].value == "cpu" and c.group == "cuda:0"
    assert c.speedup.low < c.speedup.estimate < c.speedup.high
    assert 38 < c.speedup.estimate < 44
    pattern = (
        r"device=cuda:0 is 4\d\.\d\dx faster than device=cpu \(95% CI [\d.]+-[\d.]+, "
        r"Welch p < 1e-9\); CPU utilisation median 1\d% vs 9\d%"
    )
    assert re.fullmatch(pattern, c.verdict), c.verdict
    assert c.hypothesis_a.startswith("A (resource use differs): supported")
    assert c.hypothesis_b.startswith("B (device=cuda:0 accelerates training): supported")
    util = next(m for m in c.metrics if m.metric == "cpu.util_percent")
    assert util.differs and util.cliffs_delta == -1.0


def test_generation_runs_are_compared_as_generation(store):
    _run(store, "g-cpu", "cpu", 0.4, util=98, workload="llama", kind="generate")
    _run(store, "g-gpu", "cuda:0", 0.02, util=10, seed=1, workload="llama", kind="generate")
    (c,) = compare(store, ["g-cpu", "g-gpu"], by="device").contrasts
    assert c.hypothesis_b.startswith("B (device=cuda:0 accelerates generation): supported")
    assert "CPU utilisation during generation" in c.hypothesis_a


def test_compare_refuses_what_it_cannot_compare(store):
    _run(store, "a", "cpu", 0.1, util=90)
    _run(store, "b", "cpu", 0.1, util=90, seed=2)
    with pytest.raises(DlbenchError, match="every run has the same device"):
        compare(store, ["a", "b"], by="device")
    with pytest.raises(ConfigError, match="--by 'colour'"):
        compare(store, ["a", "b"], by="colour")
    with pytest.raises(DlbenchError, match="at least two runs"):
        compare(store, ["a"], by="device")


def test_cost_arithmetic(store):
    _run(store, "g", "cuda:0", 0.5, util=10, gpu_util=99, name="NVIDIA A100-SXM4-80GB")
    summary = store.run("g")
    step = summary.mean_step_time_s
    cost = run_cost(summary, dataset_size=6400, epochs=3, price_per_hour=2.0)
    assert cost.epoch_s == pytest.approx(100 * step)  # ceil(6400 / 64) steps
    assert cost.usd_per_epoch == pytest.approx(100 * step / 3600 * 2.0)
    assert cost.usd_total == pytest.approx(3 * cost.usd_per_epoch)
    assert cost.kwh_per_epoch is None and "no energy counter" in cost.energy_note
    table = load_prices()
    assert find_price("NVIDIA A100-SXM4-80GB", table).usd_per_gpu_hour == 1.79
    assert find_price("Tesla T4", table).usd_per_gpu_hour == 0.526
    assert find_price("AMD EPYC", table) is None
    by_table = run_cost(summary, dataset_size=6400, table=table)
    assert by_table.usd_per_epoch == pytest.approx(100 * step / 3600 * 1.79)


def test_energy_per_epoch_from_measured_joules():
    summary = StoredRun.from_summary(
        {
            "run_id": "e",
            "kind": "train",
            "status": "ok",
            "workload": "resnet18",
            "batch_size": 10,
            "mean_step_time_s": 0.1,
            "num_gpus": 1,
            "device_name": "NVIDIA H100",
            "config": {"gpus": 1},
            "telemetry": {
                "phases": {"train": {"images_per_joule": 2.0, "energy_j": {"gpu0": 500.0}}}
            },
        }
    )
    cost = run_cost(summary, dataset_size=7_200_000, epochs=2, price_per_kwh=0.25)
    assert cost.kwh_per_epoch == pytest.approx(7_200_000 / 2.0 / 3.6e6)  # 1 kWh
    assert cost.energy_usd_total == pytest.approx(2 * 1.0 * 0.25)


@pytest.mark.slow
def test_report_compare_scaling_and_cost_from_real_runs(db_path, tmp_path, capsys):
    for batch in ("16", "32"):
        done = run_dlbench(
            db_path,
            "run",
            "mlp-mnist",
            "--batch-size",
            batch,
            "--steps",
            "40",
            "--warmup",
            "5",
            "--val-batches",
            "1",
            "--interval",
            "0.1",
        )
        assert done.returncode == 0, done.stderr
    runs = json.loads(dlbench_here(capsys, "runs", "--json").stdout)
    ids = [r["run_id"] for r in runs]
    compared = dlbench_here(capsys, "compare", *ids, "--by", "batch_size")
    assert compared.returncode == 0, compared.stderr
    assert "Hypothesis A" in compared.stdout and "Welch" in compared.stdout
    scaled = dlbench_here(capsys, "scaling")
    assert scaled.returncode == 0 and "batch_size" in scaled.stdout
    costed = dlbench_here(capsys, "cost", ids[0], "--price-per-hour", "1.5", "--epochs", "10")
    assert costed.returncode == 0 and "60,000 x 10" in costed.stdout
    out = tmp_path / "report.html"
    made = dlbench_here(capsys, "report", "--all", "--out", str(out))
    assert made.returncode == 0, made.stderr
    page = out.read_text()
    assert all(run_id in page for run_id in ids)
    bad = dlbench_here(capsys, "report", "--out", str(out))
    assert bad.returncode == 2 and "give run ids, --sweep NAME or --all" in bad.stderr


CONTENDED = Quality(
    "contended",
    ("other work took 1.10 of the 2 usable cores (55%) over 30.0 s (contended above 25%)",),
    1.1,
    0.2,
    None,
)


def test_a_contended_side_is_warned_about_beside_every_claim(store):
    _run(store, "cpu-1", "cpu", 0.41, util=98, quality=CONTENDED)
    _run(store, "gpu-1", "cuda:0", 0.01, util=12, seed=1, gpu_util=95, name="NVIDIA H100")
    (c,) = compare(store, ["cpu-1", "gpu-1"], by="device").contrasts
    assert c.quality_warning.startswith("Warning: measured under contention: device=cpu has 1 of")
    assert "(other work took up to 1.10 cores)" in c.quality_warning
    # A sentence pasted on its own still carries the caveat, "large" effects included.
    assert "(large)" in c.hypothesis_a
    for sentence in (c.verdict, c.hypothesis_a, c.hypothesis_b):
        assert sentence.endswith("the difference measures the contention as much as the hardware")
    page = build(store, store.runs(), "CPU vs GPU")
    assert "<p class='bad'>Warning: measured under contention" in page
    assert (
        "title='other work took 1.10 of the 2 usable cores" in page and ">contended</span>" in page
    )
    verdicts = bottleneck.verdicts(store.run("cpu-1"))
    assert verdicts[0].name == "contended" and "1.10 of the 2 usable cores" in verdicts[0].evidence


def test_clean_runs_carry_no_warning(store):
    _run(store, "cpu-1", "cpu", 0.41, util=98)
    _run(store, "gpu-1", "cuda:0", 0.01, util=12, seed=1, gpu_util=95, name="NVIDIA H100")
    (c,) = compare(store, ["cpu-1", "gpu-1"], by="device").contrasts
    assert c.quality_warning is None and "contention" not in c.verdict


def test_without_by_runs_are_grouped_by_the_first_field_they_differ_in(store, capsys):
    from conftest import call_main

    _run(store, "a", "cpu", 0.10, util=90, batch=64)
    _run(store, "b", "cpu", 0.06, util=90, batch=32, seed=2)
    result = compare(store, ["a", "b"])
    assert result.by == "batch_size" and result.by_chosen
    _run(store, "c", "cpu", 0.10, util=90, batch=64, seed=3)
    with pytest.raises(DlbenchError, match="agree on every field"):
        compare(store, ["a", "c"])
    code, out, _ = call_main(capsys, "compare", "a", "b", "--db", store.url)
    assert code == 0 and "grouped by batch_size, the first field these runs differ in" in out


def test_cost_of_a_cpu_run_is_per_machine_hour_and_says_why_no_energy(store, capsys):
    from conftest import call_main

    _run(store, "c", "cpu", 0.2, util=95)
    code, out, err = call_main(
        capsys, "cost", "c", "--price-per-hour", "0.1", "--dataset-size", "6400", "--db", store.url
    )
    assert code == 0, err
    assert "$0.100/h (the machine)" in out and "GPU-h" not in out
    assert "c: kWh — no energy counter on this machine" in out


def _sweep_of_two_workloads(store):
    """lenet and mlp, each at batch 32, 64 and 128: a batch-size sweep, one run each."""
    for workload, step in (("lenet-mnist", 0.05), ("mlp-mnist", 0.03)):
        for batch in (32, 64, 128):
            _run(store, f"{workload}-{batch}", "cpu", step * batch / 32, util=90, batch=batch,
                 seed=batch, workload=workload)  # fmt: skip


def test_groups_that_mix_configurations_are_compared_within_each_one(store, capsys):
    """Three batch sizes are not three repeats: each batch is a contrast of its own, over its
    steps, and the workloads are set against each other at the same batch only."""
    from conftest import call_main

    _sweep_of_two_workloads(store)
    ids = [r.run_id for r in store.runs()]
    result = compare(store, ids, by="workload")
    assert sorted(c.within for c in result.contrasts) == [
        "batch_size=128", "batch_size=32", "batch_size=64"
    ]  # fmt: skip
    assert all("over steps" in c.method and "repeats" not in c.method for c in result.contrasts)
    for c in result.contrasts:
        assert 1.5 < c.speedup.estimate < 1.8 or 1 / 1.8 < c.speedup.estimate < 1 / 1.5
    code, out, err = call_main(capsys, "compare", *ids)
    assert code == 0, err
    shown = " ".join(out.split())
    assert re.search(r"workload=\S+ vs \S+ at batch_size=32", shown), shown
    page = build(store, store.runs(), "sweep")
    assert "Within batch_size=64:" in page and "bootstrap over repeats" not in page


def test_groups_that_share_no_configuration_are_refused_saying_why(store):
    _run(store, "l32", "cpu", 0.05, util=90, batch=32, workload="lenet-mnist")
    _run(store, "m64", "cpu", 0.06, util=90, batch=64, seed=1, workload="mlp-mnist")
    with pytest.raises(DlbenchError, match="share no configuration apart from workload: they "
                       "also differ in batch_size"):  # fmt: skip
        compare(store, ["l32", "m64"], by="workload")


def test_a_configuration_one_side_lacks_is_named_and_left_out(store):
    _run(store, "l32", "cpu", 0.05, util=90, batch=32, workload="lenet-mnist")
    _run(store, "l64", "cpu", 0.10, util=90, batch=64, seed=1, workload="lenet-mnist")
    _run(store, "m32", "cpu", 0.03, util=90, batch=32, seed=2, workload="mlp-mnist")
    result = compare(store, ["l32", "l64", "m32"], by="workload")
    assert [c.within for c in result.contrasts] == ["batch_size=32"]
    assert result.unmatched == ["workload=lenet-mnist at batch_size=64"]


def test_the_terminal_says_a_contention_warning_once_per_contrast(store, capsys):
    from conftest import call_main

    _run(store, "cpu-1", "cpu", 0.41, util=98, quality=CONTENDED)
    _run(store, "gpu-1", "cuda:0", 0.01, util=12, seed=1, gpu_util=95, name="NVIDIA H100")
    code, out, err = call_main(capsys, "compare", "cpu-1", "gpu-1")
    assert code == 0, err
    assert out.count("measured under contention") == 1


def test_scaling_says_when_its_runs_were_contended(store, capsys):
    from conftest import call_main

    _run(store, "b32", "cpu", 0.05, util=90, batch=32, quality=CONTENDED)
    _run(store, "b64", "cpu", 0.09, util=90, batch=64, seed=1, quality=CONTENDED)
    code, out, err = call_main(capsys, "scaling")
    assert code == 0, err
    assert "2 of 2 runs of this series were measured contended" in " ".join(out.split())
