import pytest
import torch

from dlbench.config import build_spec
from dlbench.engines import get_engine
from dlbench.engines.pytorch.checkpoint import load_checkpoint
from dlbench.engines.pytorch.engine import TorchEngine
from dlbench.errors import ConfigError, DataError, EngineUnavailable
from dlbench.registry import resolve
from dlbench.workloads import WORKLOADS, get_workload

# Published parameter counts: Caffe's LeNet, TensorFlow's Deep MNIST, Keras' mnist_mlp,
# and TensorFlow's CIFAR-10 model at 32x32 input (its fc384 sees 8x8x64).
KNOWN_PARAMS = {
    "lenet-mnist": 431_080,
    "deepmnist": 3_274_634,
    "mlp-mnist": 669_706,
    "cifar10-cnn": 64 * 3 * 25
    + 64
    + 64 * 64 * 25
    + 64
    + 4096 * 384
    + 384
    + 384 * 192
    + 192
    + 192 * 10
    + 10,
}


CLASSICS = sorted(
    n for n, w in WORKLOADS.items() if w.data_format not in ("images", "coco", "text")
)


@pytest.mark.parametrize("name", CLASSICS)
def test_every_classic_workload_builds_with_its_published_size_and_takes_a_step(name):
    workload = get_workload(name)
    model = resolve(workload.builders["pytorch"])(workload.input_shape, workload.num_classes)
    assert sum(p.numel() for p in model.parameters()) == KNOWN_PARAMS[name]
    engine = TorchEngine()
    engine.setup(build_spec(workload=name, device="cpu", batch_size=4), workload, None)
    before = [p.detach().clone() for p in engine.model.parameters()]
    engine.train_step(next(iter(engine.train_epoch())))
    assert any(
        not torch.equal(a, b) for a, b in zip(before, engine.model.parameters(), strict=True)
    )
    assert engine.final_train_loss() > 0


def test_cpu_device_is_named_and_cuda_without_a_gpu_is_refused():
    engine = TorchEngine()
    cpu = engine.resolve_device("cpu")
    assert cpu.device == "cpu" and cpu.num_gpus == 0 and cpu.device_name
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(EngineUnavailable, match="torch sees no CUDA GPU"):
        engine.resolve_device("cuda:0")
    assert engine.resolve_device("auto").device in ("cpu", "mps")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_device_index_is_checked():
    engine = TorchEngine()
    assert engine.resolve_device("cuda").device == "cuda:0"
    with pytest.raises(EngineUnavailable, match="CUDA device"):
        engine.resolve_device(f"cuda:{torch.cuda.device_count()}")


@pytest.mark.parametrize(
    ("error", "oom"),
    [
        (torch.OutOfMemoryError("CUDA out of memory"), True),
        (MemoryError(), True),
        (RuntimeError("[enforce fail] DefaultCPUAllocator: can't allocate memory: 8 GB"), True),
        (RuntimeError("size mismatch"), False),
        (ValueError("out of memory"), False),
    ],
)
def test_out_of_memory_is_recognised(error, oom):
    assert TorchEngine().is_out_of_memory(error) is oom


def test_checkpoint_round_trip_predicts_the_same(tmp_path):
    engine = TorchEngine()
    workload = get_workload("lenet-mnist")
    engine.setup(build_spec(workload="lenet-mnist", device="cpu", batch_size=8), workload, None)
    engine.save_checkpoint(tmp_path / "ckpt.pt")
    loaded = engine.load_checkpoint(tmp_path / "ckpt.pt")
    call, size = engine.predict_call(loaded, 8)
    engine.model.eval()
    assert size == 8
    with torch.no_grad():
        expected = engine.model(engine.task.preprocess(engine._input.sample_images(8))).argmax(1)
    assert torch.equal(call(), expected)


def test_checkpoints_cannot_run_code(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("executed",))

    torch.save({"weight": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(DataError, match="is not a plain weights checkpoint") as refused:
        load_checkpoint(torch.nn.Linear(1, 1), tmp_path / "evil.pt", torch.device("cpu"))
    assert "weights_only" not in refused.value.one_line()  # no advice to turn safety off


def test_unknown_framework():
    with pytest.raises(ConfigError, match="unknown framework 'caffe'"):
        get_engine("caffe")
