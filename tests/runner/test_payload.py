"""The record a launcher hands the run's process: typed both ways, refused when it is not what
dlbench writes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from dlbench.config import build_spec
from dlbench.runner.payload import CollectivesPayload, TrainPayload


def test_a_train_payload_is_read_back_as_written(tmp_path):
    spec = build_spec(workload="lenet-mnist", device="cpu", steps=30, tags={"site": "lab"})
    asked = TrainPayload(spec=spec, progress=True)
    placed = asked.placed("r1", "sqlite:///x.sqlite", "/tmp/fault.txt", "/tmp/unsaved.txt")
    assert asked.run_id == ""  # placing makes a new record; the asked one is unchanged
    placed.write(tmp_path / "payload.json")
    read = TrainPayload.read(tmp_path / "payload.json")
    assert read == placed and read.spec == spec and read.spec.run_key == spec.run_key
    assert (read.run_id, read.db, read.unsaved_marker) == (
        "r1",
        "sqlite:///x.sqlite",
        "/tmp/unsaved.txt",
    )


def test_a_payload_that_is_not_what_dlbench_writes_is_refused(tmp_path):
    spec = build_spec(workload="lenet-mnist", device="cpu")
    good = TrainPayload(spec=spec).model_dump(mode="json")
    for bad in (
        {**good, "surprise": 1},  # a key dlbench never writes
        {**good, "spec": {**good["spec"], "steps": -5}},  # a spec its own checks refuse
        {key: value for key, value in good.items() if key != "spec"},
    ):
        with pytest.raises(ValidationError):
            TrainPayload.model_validate(bad)


def test_a_collectives_payload_stores_its_config_without_where_it_goes():
    payload = CollectivesPayload(
        operations=["all_reduce"], sizes=[8, 1024], gpus=2, device="cpu", warmup=2, rounds=3
    ).placed("r2", "sqlite:///y", "/tmp/f", None)
    assert payload.config() == {
        "operations": ["all_reduce"],
        "sizes": [8, 1024],
        "gpus": 2,
        "nodes": 1,
        "device": "cpu",
        "iters": None,
        "warmup": 2,
        "rounds": 3,
        "tags": {},
    }
    with pytest.raises(ValidationError):
        CollectivesPayload(operations=[], sizes=[8], gpus=2, device="cpu", warmup=0, rounds=2)
