"""Sweep files: matrix expansion, exclusion, repeats, stable keys, errors at file:line."""

import re
import textwrap

import pytest

from dlbench.errors import ConfigError, DlbenchError
from dlbench.sweep.file import load


def _write(tmp_path, text, name="sweep.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_matrix_expands_minus_exclusions_times_repeats(tmp_path):
    sweep = load(
        _write(
            tmp_path,
            """
        name: scaling
        base: {workload: resnet18, image_size: 32, steps: 20, device: cpu}
        matrix:
          gpus: [1, 2, 4]
          precision: [fp32, amp-bf16]
          batch_size: [32, max]
        exclude:
          - {gpus: 4, precision: fp32}
        repeat: 2
        timeout: 600
    """,
        )
    )
    assert len(sweep.runs) == (3 * 2 - 1) * 2 * 2
    first = sweep.runs[0]
    assert first.spec.gpus == 1 and first.spec.precision == "fp32" and first.spec.batch_size == 32
    assert first.spec.sweep == "scaling" and first.spec.image_size == 32
    assert [r.spec.repeat for r in sweep.runs[:2]] == [0, 1]
    assert not any(r.spec.gpus == 4 and r.spec.precision == "fp32" for r in sweep.runs)
    maxed = [r for r in sweep.runs if r.max_batch]
    assert len(maxed) == len(sweep.runs) // 2 and maxed[0].key.endswith("-max")
    assert len({r.key for r in sweep.runs}) == len(sweep.runs)
    assert "gpus=1 precision=fp32 batch_size=32" in first.label


def test_keys_are_stable_across_reads_and_ignore_tags(tmp_path):
    text = "name: s\nbase: {workload: mlp-mnist}\nmatrix: {batch_size: [16, 32]}\n"
    one = load(_write(tmp_path, text, "a.yaml"))
    two = load(_write(tmp_path, text.replace("base: {", "base: {tags: {site: x}, "), "b.yaml"))
    assert [r.key for r in one.runs] == [r.key for r in two.runs]


def test_staging_in_the_matrix(tmp_path):
    sweep = load(
        _write(
            tmp_path,
            """
        name: tiers
        base: {workload: lenet-mnist, data: $SCRATCH/data/mnist}
        matrix:
          staging: [{from: $SCRATCH/data, to: $LOCAL}, null]
    """,
        )
    )
    staged, direct = sweep.runs
    assert staged.spec.stage_from == "$SCRATCH/data" and staged.spec.stage_to == "$LOCAL"
    assert direct.spec.stage_from is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "name: s\nbase: {workload: mlp-mnist}\nmatrix:\n  precison: [fp32]\n",
            r"sweep.yaml:4: unknown matrix key 'precison' \(did you mean precision",
        ),
        (
            "name: s\nbase: {workload: mlp-mnist}\nmatrix:\n  batch_size: [0]\n",
            "sweep.yaml:4: --batch-size",
        ),
        (
            "name: s\nbase: {workload: mlp-mnist}\nslurm: {partitio: gpu}\n",
            "sweep.yaml:3: slurm.partitio: unknown key 'partitio'",
        ),
        (
            "name: s\nbase: {workload: mlp-mnist}\ncolour: red\n",
            "sweep.yaml:3: colour: unknown key",
        ),
        ("name: s\nbase: {workload: resnet-9000}\n", "sweep.yaml:2: unknown workload"),
        (
            "name: s\nbase: {workload: mlp-mnist}\nmatrix: {gpus: [1]}\nexclude: [{gpu: 1}]\n",
            "sweep.yaml:4: exclude key 'gpu' is not in the matrix",
        ),
        (
            "name: s\nbase: {workload: mlp-mnist}\nmatrix: {staging: [/x]}\n",
            "staging is {from: DIR, to: DIR} or null",
        ),
        ("name: s\nbase: {workload: mlp-mnist}\nrepeat: 0\n", "sweep.yaml:3: repeat"),
        ("name: s\n  bad: [\n", "not valid YAML"),
        ("- a list\n", "a sweep file is a mapping"),
        ("name: s\nbase: {workload: mlp-mnist, sweep: other}\n", "unknown base key 'sweep'"),
    ],
)
def test_errors_name_the_file_line_and_key(tmp_path, text, message):
    with pytest.raises(ConfigError) as caught:
        load(_write(tmp_path, text))
    assert re.search(message, caught.value.one_line()), caught.value.one_line()


def test_a_sweep_with_every_run_excluded_is_an_error(tmp_path):
    text = "name: s\nbase: {workload: mlp-mnist}\nmatrix: {gpus: [1]}\nexclude: [{gpus: 1}]\n"
    with pytest.raises(DlbenchError, match="every combination is excluded"):
        load(_write(tmp_path, text))


def test_scaling_efficiency_compares_each_gpu_count_with_the_one_gpu_run(tmp_path, store):
    from dlbench.records import RunResult, SpeedStats
    from dlbench.sweep.execute import sweep_table_rows

    sweep = load(
        _write(
            tmp_path,
            """
        name: scale
        base: {workload: resnet18, device: cpu}
        matrix: {gpus: [1, 2, 4], batch_size: [32, 64]}
    """,
        )
    )
    speeds = {(1, 32): 100.0, (2, 32): 180.0, (4, 32): 300.0, (1, 64): 120.0, (2, 64): 240.0}
    for run in sweep.runs:
        figure = speeds.get((run.spec.gpus, run.spec.batch_size))
        if figure is None:
            continue  # the 4-GPU batch-64 run did not happen: no row
        run_id = f"r{run.spec.gpus}-{run.spec.batch_size}"
        store.create_run(
            run_id,
            "train",
            run.spec.model_dump(mode="json"),
            sweep="scale",
            run_key=run.key,
            batch_size=run.spec.batch_size,
        )
        speed = SpeedStats(10, 1.0, 1.0, 1.0, figure, figure, figure, figure, 1.0, 0.0, 0.0, 0.0)
        store.finish_run(RunResult(run_id=run_id, status="ok", speed=speed))
    rows = {
        (r.gpus, r.run.batch_size): r.scaling_efficiency for r in sweep_table_rows(sweep, store)
    }
    # The 1-GPU run is the reference, not a 100% scaling of itself: no figure.
    assert rows[(1, 32)] is None and rows[(2, 32)] == pytest.approx(0.9)
    assert rows[(4, 32)] == pytest.approx(0.75) and rows[(2, 64)] == pytest.approx(1.0)
    assert (4, 64) not in rows


def test_framework_in_the_matrix(tmp_path):
    sweep = load(
        _write(
            tmp_path,
            """
        name: frameworks
        base: {workload: lenet-mnist, steps: 20, device: cpu}
        matrix:
          framework: [pytorch, tensorflow, jax]
    """,
        )
    )
    assert [r.spec.framework for r in sweep.runs] == ["pytorch", "tensorflow", "jax"]
    assert len({r.key for r in sweep.runs}) == 3


def test_a_language_models_shape_in_the_matrix(tmp_path):
    sweep = load(
        _write(
            tmp_path,
            """
        name: gpt-shapes
        base: {workload: gpt, width: 64, vocab: 256, steps: 12, device: cpu}
        matrix:
          seq_len: [32, 64]
          depth: [1, 2]
          batch_size: [4, max]
    """,
        )
    )
    assert len(sweep.runs) == 8 and len({r.key for r in sweep.runs}) == 8
    shapes = {(r.spec.seq_len, r.spec.depth) for r in sweep.runs}
    assert shapes == {(32, 1), (32, 2), (64, 1), (64, 2)}
    assert all(r.spec.num_classes == 256 and r.spec.input_shape[1] == r.spec.seq_len
               for r in sweep.runs)  # fmt: skip
    assert "seq_len=32 depth=1" in sweep.runs[0].label
    with pytest.raises(ConfigError, match="resnet18 is not a language model"):
        load(_write(tmp_path, "name: x\nbase: {workload: resnet18}\nmatrix: {seq_len: [8]}\n"))


def test_node_counts_and_gpus_per_node_are_matrix_keys(tmp_path):
    path = tmp_path / "scale.yaml"
    path.write_text(
        "name: scale\nbase: {workload: lenet-mnist, device: cpu}\n"
        "matrix: {nodes: [1, 2, 4], gpus_per_node: [1, 2]}\n"
    )
    runs = load(path).runs
    assert sorted((r.spec.nodes or 1, r.spec.gpus) for r in runs) == [
        (1, 1), (1, 2), (2, 1), (2, 2), (4, 1), (4, 2)
    ]  # fmt: skip
    assert len({r.key for r in runs}) == 6
    assert {r.spec.processes for r in runs} == {1, 2, 4, 8}
