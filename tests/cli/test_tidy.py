"""Tidying the store: dlbench rm and dlbench tag (labels, and runs kept but left out)."""

import pytest

from dlbench.errors import DlbenchError
from dlbench.predict.features import frame
from synthetic_runs import stored_device_run, stored_runs, summaries

from conftest import call_main, one_line_error


def test_rm_deletes_runs_with_their_steps_and_telemetry_after_asking(store, capsys):
    stored_device_run(store, "a-1", "cpu", 0.1, util=90)
    stored_device_run(store, "b-1", "cpu", 0.1, util=90, seed=1)
    code, _, err = call_main(capsys, "rm", "a-1", "--db", store.url)
    assert code == 2 and "needs --yes when not asked at a terminal" in one_line_error(code, err)
    assert len(store.list_runs()) == 2  # nothing deleted without consent
    code, out, _ = call_main(capsys, "rm", "a-1", "--yes", "--db", store.url)
    assert code == 0 and "deleted 1 run(s)" in out
    assert [r["run_id"] for r in store.list_runs()] == ["b-1"]
    assert store.get_steps("a-1") == [] and store.get_samples("a-1") == []
    assert len(store.get_steps("b-1")) == 200
    code, _, err = call_main(capsys, "rm", "zzz", "--yes", "--db", store.url)
    assert code == 2 and "no run 'zzz'" in one_line_error(code, err)


def test_rm_refuses_a_running_run(store, capsys):
    store.create_run("live", "train", {}, workload="lenet-mnist")
    code, _, err = call_main(capsys, "rm", "live", "--yes", "--db", store.url)
    assert code == 2 and "is still running" in one_line_error(code, err)


def test_an_excluded_run_is_kept_but_left_out_of_fits_and_comparisons(store, capsys):
    stored_runs(store, summaries(n=8))
    code, out, _ = call_main(
        capsys, "tag", "r0", "note=rerun", "--exclude", "fan broke", "--db", store.url
    )
    assert code == 0 and "exclude=fan broke" in out and "note=rerun" in out
    runs = store.runs()
    assert {r.run_id for r in runs if r.excluded} == {"r0"}
    assert "r0" not in set(frame(runs)["run_id"]) and len(frame(runs)) == 7
    stored_device_run(store, "g", "cuda:0", 0.01, util=10, gpu_util=95)
    stored_device_run(store, "c", "cpu", 0.4, util=95)
    call_main(capsys, "tag", "c", "--exclude", "wrong BIOS", "--db", store.url)
    from dlbench.analysis.compare import compare

    with pytest.raises(DlbenchError, match=r"\(c excluded with dlbench tag\)"):
        compare(store, ["g", "c"])
    code, out, _ = call_main(capsys, "tag", "c", "--include", "--db", store.url)
    assert code == 0 and "exclude" not in out
    assert compare(store, ["g", "c"]).by == "device"
    code, out, _ = call_main(capsys, "tag", "r0", "note=", "--db", store.url)
    assert "note" not in out  # key= removes the tag


def test_tag_refuses_a_bad_key_and_a_missing_database(store, capsys, tmp_path):
    stored_runs(store, summaries(n=1))
    code, _, err = call_main(capsys, "tag", "r0", "bad key=1", "--db", store.url)
    assert code == 2 and "is not key=value with a key of letters" in one_line_error(code, err)
    assert dict(store.run("r0").tags) == {}  # nothing written
    missing = tmp_path / "typo.sqlite"
    code, _, err = call_main(capsys, "tag", "r0", "a=b", "--db", str(missing))
    assert code == 2 and "no results database" in one_line_error(code, err)
    assert not missing.exists()
