"""The classification zoo and the detectors: published sizes, a training step each, FLOPs."""

import pytest
import torch
import torchvision
from torch import nn

from dlbench.config import build_spec
from dlbench.engines.pytorch.engine import TorchEngine, train_step_flops
from dlbench.engines.pytorch.tasks import ClassifyTask
from dlbench.registry import resolve
from dlbench.workloads import WORKLOADS, get_workload

ZOO = sorted(n for n, w in WORKLOADS.items() if w.data_format in ("images", "coco"))

# Published parameter counts at 1000 classes (torchvision's model docs; Keras' Xception).
PUBLISHED_PARAMS = {
    "vgg11": 132_863_336,
    "vgg16": 138_357_544,
    "vgg19": 143_667_240,
    "resnet18": 11_689_512,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "inception-v3": 27_161_264,
    "xception": 22_855_952,  # Keras' trainable count (its 22,910,480 adds BN statistics)
    "vit-b16": 86_567_656,
    "vit-s16": 22_050_664,  # DeiT-S (timm's deit_small_patch16_224): the same shape
}
# torchvision's detection docs, at COCO's 91 classes, with the backbone's batch norms frozen
# (buffers); untrained, dlbench trains them, so their affine parameters are added back.
PUBLISHED_DETECTOR_PARAMS = {"fasterrcnn": 41_755_286, "fasterrcnn-mobilenet": 19_386_354}
SMALL = {"inception-v3": 75, "xception": 71, "model-b": 71, "fasterrcnn": 96}


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_zoo_models_have_their_published_size(name):
    workload = get_workload(name)
    model = resolve(workload.builders["pytorch"])(workload.input_shape, 1000)
    assert _params(model) == PUBLISHED_PARAMS[name]


@pytest.mark.parametrize("name", sorted(PUBLISHED_DETECTOR_PARAMS))
def test_detectors_have_their_published_size(name):
    workload = get_workload(name)
    model = resolve(workload.builders["pytorch"])(workload.input_shape, 91)
    norms = sum(_params(m) for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    assert norms > 0 and _params(model) - norms == PUBLISHED_DETECTOR_PARAMS[name]


def test_a_vit_takes_sides_that_are_a_multiple_of_its_patch_only():
    from dlbench.errors import ConfigError

    with pytest.raises(ConfigError, match="cuts images into 16x16 patches: .* multiple of 16"):
        build_spec(workload="vit-b16", image_size=40)
    assert build_spec(workload="vit-s16", image_size=64).input_shape == (3, 64, 64)


def test_seed_model_a_is_vgg19_base_plus_four_convs_and_three_fc():
    model = resolve(get_workload("model-a").builders["pytorch"])((3, 32, 32), 10)
    base = _params(torchvision.models.vgg19(weights=None).features)
    convs = 2 * (512 * 512 * 9 + 512) + (512 * 256 * 9 + 256) + (256 * 256 * 9 + 256)
    fc = (256 * 1024 + 1024) + (1024 * 512 + 512) + (512 * 10 + 10)
    assert _params(model) == base + convs + fc
    assert sum(isinstance(m, nn.Dropout) for m in model.modules()) == 2


@pytest.mark.parametrize("name", ZOO)
def test_every_zoo_workload_takes_a_training_step_at_a_small_input(name):
    size = SMALL.get(name, 32 if get_workload(name).task == "classify" else 64)
    spec = build_spec(workload=name, device="cpu", batch_size=2, image_size=size, num_classes=5)
    if get_workload(name).task == "detect":
        spec = spec.model_copy(update={"num_classes": None})
    engine = TorchEngine()
    engine.setup(spec, get_workload(name), None)
    before = [p.detach().clone() for p in engine.model.parameters()]
    engine.train_step(next(iter(engine.train_epoch())))
    changed = [
        not torch.equal(a, b) for a, b in zip(before, engine.model.parameters(), strict=True)
    ]
    assert any(changed)
    assert engine.final_train_loss() > 0
    stats = engine.model_stats()
    assert stats.params == _params(engine.model) and stats.flops_per_step > 0
    assert stats.input_shape == (3, size, size)


def test_inception_uses_its_auxiliary_head_at_299():
    spec = build_spec(workload="inception-v3", device="cpu", batch_size=2, num_classes=4)
    engine = TorchEngine()
    engine.setup(spec, get_workload("inception-v3"), None)
    assert engine.model.aux_logits
    images, labels = next(iter(engine.train_epoch()))
    torch.manual_seed(1)  # the same dropout masks in both passes
    out = engine.model(engine.task.preprocess(images))
    assert out.aux_logits.shape == (2, 4)
    expected = nn.functional.cross_entropy(out.logits, labels) + 0.4 * nn.functional.cross_entropy(
        out.aux_logits, labels
    )
    torch.manual_seed(1)
    assert torch.allclose(engine.task.loss(engine.model, images, labels), expected)


def test_detector_scores_waldo_scenes_with_map_at_half_iou():
    spec = build_spec(workload="fasterrcnn-mobilenet", device="cpu", batch_size=2, image_size=96)
    engine = TorchEngine()
    engine.setup(spec, get_workload("fasterrcnn-mobilenet"), None)
    images, targets = next(iter(engine.train_epoch()))
    assert images.shape == (2, 3, 96, 96) and images.dtype == torch.uint8
    assert targets[0]["boxes"].shape == (1, 4) and targets[0]["labels"].tolist() == [1]
    result = engine.validate(max_batches=1)
    assert result.images == 2 and 0.0 <= result.map50 <= 1.0 and result.accuracy is None


def test_flop_count_matches_a_hand_count():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
    task = ClassifyTask(((0.5,) * 3, (0.25,) * 3), 8, torch.device("cpu"), False)
    images = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    labels = torch.tensor([0, 3])
    conv = 2 * 2 * (4 * 6 * 6) * (3 * 3 * 3)  # 2 x N x outputs x MACs per output
    linear = 2 * 2 * (4 * 6 * 6) * 5
    # Backward: the linear layer needs gradients of its input and weight (2x its forward);
    # the first convolution only of its weight (the images need none).
    assert train_step_flops(model, task, images, labels) == conv + linear + conv + 2 * linear
    assert all(p.grad is None for p in model.parameters())


def test_bf16_autocast_runs_the_model_in_bfloat16_on_cpu():
    spec = build_spec(
        workload="resnet18", device="cpu", batch_size=2, image_size=32, precision="amp-bf16"
    )
    engine = TorchEngine()
    engine.setup(spec, get_workload("resnet18"), None)
    seen = []
    engine.model.conv1.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    engine.train_step(next(iter(engine.train_epoch())))
    assert seen == [torch.bfloat16] and engine.scaler is None
    assert all(p.dtype == torch.float32 for p in engine.model.parameters())


def test_fp16_training_scales_the_loss_and_channels_last_reorders_the_weights():
    spec = build_spec(
        workload="resnet18",
        device="cpu",
        batch_size=2,
        image_size=32,
        precision="amp-fp16",
        channels_last=True,
        optimizer="adamw",
        lr=1e-3,
    )
    engine = TorchEngine()
    engine.setup(spec, get_workload("resnet18"), None)
    engine.train_step(next(iter(engine.train_epoch())))
    assert engine.scaler is not None and engine.scaler.get_scale() > 1
    assert engine.model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert isinstance(engine.optimizer, torch.optim.AdamW)
    assert engine.optimizer.param_groups[0]["lr"] == 1e-3
