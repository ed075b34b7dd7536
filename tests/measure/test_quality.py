"""The quality verdict from constructed interference accounts: thresholds, and why."""

import pytest

from dlbench.measure import quality
from dlbench.measure.quality import busy_reasons, judge
from dlbench.records import GpuProcess, Interference


def _account(foreign=0.0, usable=2.0, own=1.9, window=20.0, steal=0.3, **more):
    defaults = {
        "window_s": window,
        "usable_cores": usable,
        "busy_cores": foreign + own,
        "own_cpu_cores": own,
        "foreign_cpu_cores": foreign,
        "resolution_cores": 0.08 / window,
        "steal_percent": steal,
        "load_per_core": 1.0,
    }
    return Interference(**{**defaults, **more})


def test_a_quiet_machine_is_clean_and_says_its_figures():
    found = judge(_account(foreign=0.04))
    assert found.verdict == "clean"
    assert "other work took 0.04 of the 2 usable cores (2%)" in found.reasons[0]
    assert "stole 0.3%" in found.reasons[1]


@pytest.mark.parametrize(
    ("foreign", "verdict"),
    [(0.1, "clean"), (0.3, "noisy"), (0.55, "contended"), (1.0, "contended")],
)
def test_other_work_against_the_usable_cores(foreign, verdict):
    found = judge(_account(foreign=foreign))
    assert found.verdict == verdict
    assert found.foreign_cpu_cores == foreign
    if verdict == "contended":
        assert "(contended above 25%)" in found.reasons[0]


def test_the_thresholds_scale_with_the_cores_the_run_may_use():
    # Half a core of other work is contended on 2 cores, noise on 4, nothing on 64.
    assert judge(_account(foreign=0.6, usable=2)).verdict == "contended"
    assert judge(_account(foreign=0.6, usable=4)).verdict == "noisy"
    assert judge(_account(foreign=0.6, usable=64)).verdict == "clean"


def test_a_phase_too_short_to_resolve_is_noisy_never_contended():
    # 30 ms of timed steps: the counters' 10 ms ticks make any share possible.
    found = judge(_account(foreign=0.9, window=0.03, resolution_cores=2.7))
    assert found.verdict == "noisy"
    assert "too short to tell" in found.reasons[0]


@pytest.mark.parametrize(("steal", "verdict"), [(1.0, "clean"), (3.0, "noisy"), (12, "contended")])
def test_hypervisor_steal(steal, verdict):
    found = judge(_account(steal=steal))
    assert found.verdict == verdict and found.steal_percent == steal
    assert judge(_account(steal=None)).steal_percent is None  # not reported: not zero


def test_another_process_on_the_runs_gpu_is_contention_named_with_its_memory():
    other = GpuProcess(gpu=0, pid=4242, name="python", memory_bytes=3 * 2**30)
    found = judge(_account(gpus=(0,), other_gpu_processes=(other,)))
    assert found.verdict == "contended"
    assert found.reasons[0] == "1 other process(es) computed on GPU 0: pid 4242 python (3.0 GiB)"


def test_a_gpu_process_seen_only_by_the_sampler_counts_too():
    metrics = {"gpu1.other_processes": {"max": 2.0}, "gpu0.other_processes": {"max": 0.0}}
    found = judge(_account(gpus=(1,), other_gpu_processes=()), metrics)
    assert found.verdict == "contended"
    assert "2 other process(es) computed on GPU 1" in found.reasons[0]
    assert judge(_account(gpus=(0,), other_gpu_processes=()), metrics).verdict == "clean"


def test_clocks_slowed_by_heat_are_noise_a_power_cap_is_not():
    hot = {"gpu0.throttle_reasons": {"reasons": ["hardware thermal slowdown"], "mask": 0x40}}
    capped = {"gpu0.throttle_reasons": {"reasons": ["software power cap"], "mask": 0x4}}
    assert judge(_account(gpus=(0,), other_gpu_processes=()), hot).verdict == "noisy"
    assert judge(_account(gpus=(0,), other_gpu_processes=()), capped).verdict == "clean"


def test_unknown_gpu_processes_are_said_not_assumed():
    found = judge(_account(gpus=(0,), other_gpu_processes=None, gpu_note="NVML lists none"))
    assert found.verdict == "clean" and found.other_gpu_processes is None
    assert any("not known: NVML lists none" in r for r in found.reasons)


def test_no_account_no_verdict():
    assert judge(None) is None


def test_a_quiet_machine_has_no_reason_to_wait():
    assert busy_reasons(0.05, 0.02, 2, 0.5, None) == []
    reasons = busy_reasons(1.9, 0.02, 2, 5.0, (GpuProcess(0, 7, "x", None),))
    assert reasons[0] == "other work takes 1.90 of the 2 usable cores"
    assert "steals 5.0%" in reasons[1] and "pid 7 x (memory unknown)" in reasons[2]
    assert quality.NOISY_FOREIGN_SHARE < quality.CONTENDED_FOREIGN_SHARE


def test_a_pinned_run_says_where_it_measured_and_auto_without_an_idle_cpu_says_so():
    from dlbench.records import Quality

    base = Quality("contended", ("other work took 2.0 cores",), 2.0, 0.0, ())
    chosen = quality.on_cpus(base, "1", 1, 2, "auto")
    assert chosen.reasons[-1].startswith("measured on CPUs 1 of the 2 online (the idle ones")
    listed = quality.on_cpus(base, "0,2-3", 3, 4, "0,2-3")
    assert "(--cpus 0,2-3)" in listed.reasons[-1]
    none_idle = quality.on_cpus(base, "0-1", 2, 2, "auto")
    assert none_idle.reasons[-1] == (
        "--cpus auto found no idle CPU: measured on all 2 online, beside other work"
    )
    assert quality.on_cpus(None, "0", 1, 2, "auto") is None
