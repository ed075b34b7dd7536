"""Bad input is refused before anything is stored: one line naming what is wrong, exit 2."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from fault_helpers import call_main, one_line_error

from dlbench.store.database import Store

from conftest import idx_bytes, write_cifar, write_mnist

RUN = ["run", "lenet-mnist", "--device", "cpu", "--steps", "12", "--warmup", "2"]


def _refused(capsys, db_path, *args):
    """The command's one error line; nothing was stored."""
    line = one_line_error(*call_main(capsys, *args)[::2])
    assert not db_path.exists() or Store(str(db_path)).count_runs() == 0
    return line


def _mnist(tmp_path):
    return write_mnist(tmp_path / "mnist", n_train=40, n_test=20)


def _rewrite(folder, name, blob):
    (folder / name).write_bytes(blob)


BROKEN_MNIST = {
    "truncated": lambda f: _rewrite(
        f, "train-images-idx3-ubyte", (f / "train-images-idx3-ubyte").read_bytes()[:-100]
    ),
    "more images than labels": lambda f: _rewrite(
        f, "train-images-idx3-ubyte", idx_bytes(np.zeros((50, 28, 28), np.uint8))
    ),
    "no images": lambda f: (
        _rewrite(f, "train-images-idx3-ubyte", idx_bytes(np.zeros((0, 28, 28), np.uint8))),
        _rewrite(f, "train-labels-idx1-ubyte", idx_bytes(np.zeros((0,), np.uint8))),
    ),
    "5x5 images": lambda f: _rewrite(
        f, "train-images-idx3-ubyte", idx_bytes(np.zeros((40, 5, 5), np.uint8))
    ),
    "a header claiming 4,294,967,295 images": lambda f: _rewrite(
        f,
        "train-images-idx3-ubyte",
        bytes([0, 0, 8, 3]) + struct.pack(">3I", 2**32 - 1, 28, 28) + b"\0" * 784,
    ),
    "labels up to 250": lambda f: _rewrite(
        f, "train-labels-idx1-ubyte", idx_bytes(np.full((40,), 250, np.uint8))
    ),
    "a bad magic number": lambda f: _rewrite(f, "t10k-labels-idx1-ubyte", b"GIF89a" * 4),
}


@pytest.mark.parametrize("damage", BROKEN_MNIST, ids=str)
def test_broken_mnist_files_are_refused_before_the_run(db_path, tmp_path, capsys, damage):
    folder = _mnist(tmp_path)
    BROKEN_MNIST[damage](folder)
    line = _refused(capsys, db_path, *RUN, "--data", str(folder))
    assert str(folder) in line


def test_a_corrupt_gzip_is_refused(db_path, tmp_path, capsys):
    folder = write_mnist(tmp_path / "gz", n_train=40, n_test=20, gz=True)
    blob = (folder / "train-images-idx3-ubyte.gz").read_bytes()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(blob[:20] + b"\xff" * 40 + blob[60:])
    line = _refused(capsys, db_path, *RUN, "--data", str(folder))
    assert "train-images-idx3-ubyte.gz" in line


def test_labels_beyond_num_classes_name_the_option(db_path, tmp_path, capsys):
    folder = _mnist(tmp_path)
    line = _refused(capsys, db_path, *RUN, "--data", str(folder), "--num-classes", "5")
    assert "beyond --num-classes 5" in line


def test_a_truncated_cifar_batch_is_refused(db_path, tmp_path, capsys):
    folder = write_cifar(tmp_path / "cifar", per_batch=20)
    blob = (folder / "data_batch_3").read_bytes()
    (folder / "data_batch_3").write_bytes(blob[: len(blob) // 2])
    line = _refused(
        capsys,
        db_path,
        "run",
        "cifar10-cnn",
        "--device",
        "cpu",
        "--steps",
        "12",
        "--data",
        str(folder),
    )
    assert "cifar" in line


@pytest.mark.parametrize(
    "option",
    [
        ["--timeout", "nan"],
        ["--timeout", "inf"],
        ["--timeout", "-1"],
        ["--steps", "1e26"],
        ["--steps", "10000000000"],
        ["--interval", "nan"],
        ["--lr", "inf"],
        ["--batch", "0"],
    ],
    ids=" ".join,
)
def test_absurd_numbers_are_refused(db_path, capsys, option):
    _refused(capsys, db_path, "run", "lenet-mnist", "--device", "cpu", *option)


def test_outputs_into_missing_folders_are_refused_before_the_run(db_path, tmp_path, capsys):
    missing = tmp_path / "no" / "such"
    line = _refused(capsys, db_path, *RUN, "--checkpoint", str(missing / "w.pt"))
    assert (
        line == f"error: --checkpoint: {missing} does not exist (give a path in an existing folder)"
    )
    line = _refused(capsys, db_path, *RUN, "--json", str(missing / "r.json"))
    assert line.startswith(f"error: --json: {missing} does not exist")


def test_a_sweep_whose_results_folder_cannot_exist_is_refused(db_path, tmp_path, capsys):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        "name: s\nresults: /dev/null/x\nbase: {workload: lenet-mnist, device: cpu, steps: 12}\n"
        "matrix: {batch_size: [8, 16]}\n"
    )
    line = _refused(capsys, db_path, "sweep", str(sweep))
    assert "results: cannot make the folder /dev/null/x" in line


def test_a_yaml_alias_bomb_is_refused(db_path, tmp_path, capsys):
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        levels.append(f"a{i}: &a{i} [{refs}]")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("name: bomb\n" + "\n".join(levels) + "\nbase: {workload: lenet-mnist}\n")
    line = _refused(capsys, db_path, "sweep", str(bomb))
    assert "expands to more than 100,000 values through its aliases" in line


def test_aliases_of_ordinary_size_still_work(tmp_path):
    from dlbench.sweep.file import load

    sweep = tmp_path / "ok.yaml"
    sweep.write_text(
        "name: ok\nbase: &base {workload: lenet-mnist, device: cpu, steps: 12}\n"
        "matrix: {batch_size: [8, 16]}\n"
    )
    assert len(load(sweep).runs) == 2


def test_infer_says_a_pickle_with_code_is_not_a_weights_checkpoint(tmp_path, capsys):
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"format": "x", "run": print}, protocol=2))  # code to load
    (tmp_path / "images").mkdir()
    from PIL import Image

    Image.new("L", (28, 28)).save(tmp_path / "images" / "a.png")
    code, _out, err = call_main(
        capsys,
        "infer",
        "lenet-mnist",
        "--checkpoint",
        str(evil),
        "--images",
        str(tmp_path / "images"),
        "--device",
        "cpu",
    )
    line = one_line_error(code, err)
    assert "is not a plain weights checkpoint" in line
    assert "weights_only" not in line


def test_an_image_folder_with_a_file_that_is_not_an_image_is_refused(db_path, tmp_path, capsys):
    from conftest import write_image_folder

    folder = write_image_folder(tmp_path / "images")
    broken = sorted(folder.rglob("*.png"))[0]
    broken.write_bytes(b"not a png at all")
    line = _refused(
        capsys,
        db_path,
        "run",
        "resnet18",
        "--device",
        "cpu",
        "--steps",
        "12",
        "--image-size",
        "32",
        "--data",
        str(folder),
        "--dataset",
        "imagefolder",
    )
    assert "cannot decode this image" in line


# Each command with what it needs besides the option under test (options go before a
# monitor's "--").
COMMAND_ARGS = {
    "run": ["lenet-mnist"],
    "maxbatch": ["lenet-mnist"],
    "infer": ["lenet-mnist", "--checkpoint", "w.pt", "--images", "."],
    "generate": ["llama"],
    "serve-bench": ["--url", "http://127.0.0.1:1/v1", "--model", "m"],
    "monitor": ["--", "true"],
    "sweep": ["sweep.yaml"],
    "compare": ["a", "b"],
    "cost": ["a"],
    "report": ["--all"],
    "predict": ["lenet-mnist", "--dataset-size", "100"],
    "check": ["node"],
    "baseline set": ["node", "a"],
    "baseline rm": ["node"],
    "show": ["a"],
    "tag": ["a"],
    "rm": ["a"],
    "import": ["other.sqlite"],
}


def _numeric_options():
    """(command words, option, value) for every int and float option of every command: an
    integer past 64 bits, NaN, an infinity, a float past every bound."""
    import typer

    from dlbench.cli.app import app

    found = []

    def walk(command, words):
        for name, sub in (getattr(command, "commands", None) or {}).items():
            walk(sub, [*words, name])
        for param in getattr(command, "params", ()):
            kind = getattr(getattr(param, "type_descriptor", None), "annotation", None)
            if kind not in (int, float) or not param.opts[0].startswith("--"):
                continue
            values = [str(2**70)] if kind is int else ["nan", "inf", "-inf", "1e308"]
            found.extend((" ".join(words), param.opts[0], v) for v in values)

    walk(typer.main.get_command(app), [])
    return found


@pytest.mark.parametrize("command,option,value", _numeric_options(), ids=str)
def test_every_numeric_option_has_bounds(
    db_path, tmp_path, capsys, monkeypatch, command, option, value
):
    monkeypatch.chdir(tmp_path)
    words = command.split()
    args = COMMAND_ARGS.get(command, [])
    cut = args.index("--") if "--" in args else len(args)
    line = _refused(capsys, db_path, *words, *args[:cut], option, value, *args[cut:])
    assert option in line or "Invalid value" in line or option.removeprefix("--") in line, line


def test_the_numeric_options_found_cover_every_command():
    commands = {c for c, _, _ in _numeric_options()}
    assert {"run", "sweep", "cost", "report", "predict", "calibrate", "check", "maxbatch",
            "monitor", "exporter", "dashboard", "runs"} <= commands  # fmt: skip


def test_a_language_models_width_is_whole_heads(db_path, capsys):
    line = _refused(capsys, db_path, "run", "gpt", "--device", "cpu", "--width", "7")
    assert "whole 64-wide attention heads: give a multiple of 64 (e.g. 64)" in line


def _sweep(tmp_path, body):
    path = tmp_path / "sweep.yaml"
    path.write_text("name: s\nbase: {workload: lenet-mnist, device: cpu, steps: 12}\n" + body)
    return path


@pytest.mark.parametrize(
    "body,expected",
    [
        ("matrix: {seed: [" + ", ".join(map(str, range(100))) + "], batch_size: ["
         + ", ".join(map(str, range(1, 201))) + "]}\n", "20,000 combinations x repeat 1"),
        ("matrix: {seed: [1, 2]}\nrepeat: 1000000000\n", "repeat: Input should be less than"),
        ("matrix: {batch_size: [8, 1180591620717411303424]}\n", "less than or equal to"),
        ("matrix: {seed: [18446744073709551616]}\n", "seed"),
        ("timeout: .inf\n", "timeout: Input should be"),
        ("slurm: {time: 100000000000}\n", "slurm.time"),
    ],
    ids=["a 20,000-run product", "repeat 1e9", "batch 2^70", "seed 2^64", "timeout inf",
         "slurm time"],
)  # fmt: skip
def test_absurd_sweeps_are_refused_before_anything_is_expanded(db_path, tmp_path, capsys, body,
                                                                expected):  # fmt: skip
    line = _refused(capsys, db_path, "sweep", str(_sweep(tmp_path, body)), "--dry-run")
    assert expected in line, line


def _deep_yaml(levels):
    return "name: s\nbase: " + "[" * levels + "]" * levels + "\n"


@pytest.mark.parametrize(
    "content,expected",
    [
        (_deep_yaml(3000).encode(), "nests deeper than 64 levels"),
        (_deep_yaml(100).encode(), "nests deeper than 64 levels"),
        (b"name: s\n\xff\xfe base: {}\n", "is not UTF-8 text (byte 8 cannot be decoded)"),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00", "is binary, not text"),
        (b"name: s\n# " + b"x" * (2 << 20) + b"\n", "is larger than 1 MiB"),
    ],
    ids=["3,000 levels", "100 levels", "latin-1", "an ELF binary", "2 MiB"],
)
def test_hostile_yaml_files_are_refused_in_one_line(db_path, tmp_path, capsys, content,
                                                     expected):  # fmt: skip
    path = tmp_path / "sweep.yaml"
    path.write_bytes(content)
    assert expected in _refused(capsys, db_path, "sweep", str(path))
    prices = tmp_path / "prices.yaml"
    prices.write_bytes(content)
    assert expected in _refused(capsys, db_path, "cost", "x", "--prices", str(prices))


@pytest.mark.parametrize("endless", ["/dev/zero", "link", "folder"])
def test_a_sweep_file_that_is_not_a_file_is_refused_at_once(db_path, tmp_path, capsys, endless):
    target = {"/dev/zero": Path("/dev/zero"), "link": tmp_path / "link.yaml",
              "folder": tmp_path}[endless]  # fmt: skip
    if endless == "link":
        target.symlink_to("/dev/zero")
    line = _refused(capsys, db_path, "sweep", str(target))
    assert "is not a regular file" in line or "is a folder" in line


@pytest.mark.parametrize(
    "entry,expected",
    [
        ("{match: H100, usd_per_gpu_hour: -1}", "entry 1, usd_per_gpu_hour: Input should be"),
        ("{match: H100, usd_per_gpu_hour: .nan}", "Input should be a finite number"),
        ("{match: H100, usd_per_gpu_hour: .inf}", "Input should be a finite number"),
        ("{match: '(', usd_per_gpu_hour: 1}", "entry 1, match: not a regular expression"),
        ("{match: H100, usd_per_gpu_hour: 1, colour: red}", "colour: Extra inputs"),
    ],
)
def test_price_tables_with_absurd_prices_are_refused(db_path, tmp_path, capsys, entry, expected):
    prices = tmp_path / "prices.yaml"
    prices.write_text(f"- {entry}\n")
    for command in (["cost", "x"], ["predict", "lenet-mnist", "--dataset-size", "100"]):
        line = _refused(capsys, db_path, *command, "--prices", str(prices))
        assert expected in line, line


@pytest.mark.parametrize(
    "args,expected",
    [
        (["runs", "--status", "nosuch"], "--status 'nosuch' is not one of running, ok"),
        (["runs", "--workload", "resnet5"], "--workload 'resnet5' is neither a workload"),
        (["scaling", "--sweep", "nosuch"], "--sweep 'nosuch': no run of a sweep of that name"),
        (["export", "--sweep", "nosuch", "-o", "-"], "--sweep 'nosuch': no run of a sweep"),
        (["report", "--sweep", "nosuch"], "--sweep 'nosuch': no run of a sweep"),
    ],
)
def test_a_filter_naming_nothing_known_is_an_error(store, capsys, args, expected):
    store.create_run("20260101-000000-aaaaaa", "train", {}, workload="lenet-mnist")
    code, _, err = call_main(capsys, *args)
    assert expected in one_line_error(code, err)


@pytest.mark.parametrize("host", ["0", "0x0", "::0", "0:0:0:0:0:0:0:0", "[::]", "0.0.0.0"])
def test_every_spelling_of_every_network_is_warned_about(host):
    from dlbench.telemetry.prometheus import listen_address

    bound, every = listen_address(host, "--host")
    assert every and "[" not in bound


def test_a_host_that_does_not_resolve_is_one_line(db_path, capsys):
    bogus = "no-such-host.invalid"
    for args in (
        ["dashboard", "--host", bogus],
        ["exporter", "--host", bogus],
        ["run", "lenet-mnist", "--metrics-port", "9", "--metrics-host", bogus],
    ):
        line = _refused(capsys, db_path, *args)
        assert "is not an address or a name this machine resolves" in line, line


def test_a_taken_dashboard_port_is_one_line(db_path, capsys):
    import socket

    Store(str(db_path)).close()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = call_main(capsys, "dashboard", "--port", str(port))
    assert f"--port {port}: cannot listen on 127.0.0.1:{port}" in one_line_error(code, err)


def _one_stored_run(db_path):
    store = Store(str(db_path))
    store.create_run("20260101-000000-aaaaaa", "train", {"tags": {}}, workload="lenet-mnist")
    store.close()


@pytest.mark.parametrize(
    "target,expected",
    [
        ("missing/dir/x.csv", "does not exist"),
        ("folder", "is a folder"),
        ("/proc/self/status", "is a system file"),
        ("/dev/null", "is a system file"),
        ("results.sqlite", "is a SQLite database; dlbench never writes over one"),
    ],
)
def test_export_and_report_outputs_are_checked_before_any_work(
    db_path, tmp_path, capsys, monkeypatch, target, expected
):
    _one_stored_run(db_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    import shutil

    shutil.copy(db_path, tmp_path / "results.sqlite")
    before = (tmp_path / "results.sqlite").read_bytes()
    for command in (["export", "-o", target], ["report", "--all", "-o", target]):
        code, _, err = call_main(capsys, *command)
        assert expected in one_line_error(code, err), err
    assert not (tmp_path / "missing").exists()  # no folder is made
    assert (tmp_path / "results.sqlite").read_bytes() == before


def test_report_replaces_only_an_html_file(db_path, tmp_path, capsys):
    _one_stored_run(db_path)
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    line = one_line_error(*call_main(capsys, "report", "--all", "-o", str(notes))[::2])
    assert "exists and is not what this command writes" in line
    assert notes.read_text() == "my notes"
    page = tmp_path / "report.html"
    page.write_text("<!DOCTYPE html><html></html>")
    code, _, err = call_main(capsys, "report", "--all", "-o", str(page))
    assert code == 0, err


@pytest.mark.parametrize("option", ["--json", "--checkpoint"])
def test_a_run_output_that_is_a_folder_or_a_system_file_is_refused_before_the_run(
    db_path, tmp_path, capsys, option
):
    for target, expected in ((tmp_path, "is a folder"), ("/proc/self/status", "system file")):
        line = _refused(capsys, db_path, *RUN, option, str(target))
        assert expected in line, line


def test_staging_that_would_not_move_the_data_or_would_destroy_a_folder_is_refused(
    db_path, tmp_path, capsys
):
    scratch, local = tmp_path / "scratch", tmp_path / "local"
    data = write_mnist(scratch / "mnist", n_train=40, n_test=20)
    elsewhere = write_mnist(tmp_path / "elsewhere", n_train=40, n_test=20)
    staged = ["--stage-from", str(scratch), "--stage-to", str(local)]
    line = _refused(capsys, db_path, *RUN, "--data", str(elsewhere), *staged)
    assert f"is not inside --stage-from {scratch}" in line
    precious = local / "scratch"  # a folder of the user's where the copy would go
    precious.mkdir(parents=True)
    (precious / "thesis.tex").write_text("years of work")
    line = _refused(capsys, db_path, *RUN, "--data", str(data), *staged)
    assert "exists and is not a copy dlbench staged" in line
    assert (precious / "thesis.tex").read_text() == "years of work"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([*RUN, "--nodes", "0"], "--nodes: Input should be greater than or equal to 1"),
        ([*RUN, "--nodes", "2"], "needs --node-rank and --rdzv-endpoint"),
        ([*RUN, "--nodes", "2", "--node-rank", "0"], "needs --rdzv-endpoint"),
        ([*RUN, "--nodes", "2", "--node-rank", "0", "--rdzv-endpoint", "a b:1"], "HOST:PORT"),
        ([*RUN, "--nodes", "2", "--node-rank", "0", "--rdzv-endpoint", "h:0"], "HOST:PORT"),
        ([*RUN, "--nodes", "2", "--node-rank", "5", "--rdzv-endpoint", "h:1"], "not 0 to 1"),
        ([*RUN, "--nodes", "2", "--gpus", "2"], "give --gpus-per-node 2 with --nodes 2"),
        ([*RUN, "--gpus-per-node", "0"], "--gpus-per-node must be 1 to 1024"),
        ([*RUN, "--node-rank", "1"], "give --nodes N too"),
        ([*RUN, "--nodes", "2", "--node-rank", "0", "--rdzv-endpoint", "h:1",
          "--join-timeout", "0"], "--join-timeout must be 1 to 86400"),  # fmt: skip
        (["collectives", "--sizes", "1GiB:8B"], "the first size is larger than the last"),
        (["collectives", "--sizes", "8B:1TiB"], "not a size"),
        (["collectives", "--ops", "allreduce"], "allreduce is not a collective"),
        (["collectives", "--gpus-per-node", "1"], "a collective needs two processes at least"),
        (["collectives", "--rounds", "1"], "--rounds must be 2 to 1000"),
        (["collectives", "--device", "tpu"], "collectives run on cpu or cuda"),
        (["collectives", "--nodes", "2"], "needs --node-rank and --rdzv-endpoint"),
    ],
)
def test_bad_node_and_collective_options_are_one_line(capsys, db_path, args, says):
    assert says in _refused(capsys, db_path, *args)


def test_more_processes_per_node_than_gpus_is_refused(capsys, db_path, monkeypatch):
    from dlbench.engines.pytorch import distributed

    monkeypatch.setattr(distributed, "gpus_here", lambda: 1)
    line = _refused(capsys, db_path, "collectives", "--device", "cuda", "--gpus-per-node", "2")
    assert "--gpus-per-node 2: this node has 1 GPU(s)" in line
