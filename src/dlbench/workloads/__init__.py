"""The workload catalogue: what each standard benchmark trains, framework-free.

A ``WorkloadSpec`` says what a workload is (input, classes, batch, optimiser, data format) and
where each framework's model builder lives; engines import the builder on use. Adding a model
is one entry here plus its builder module.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dlbench.errors import ConfigError
from dlbench.frameworks import FRAMEWORKS
from dlbench.registry import unknown_name
from dlbench.workloads.llama_configs import LLAMA_CONFIGS


@dataclass(frozen=True)
class OptimizerSpec:
    name: str  # sgd | adam | adamw | rmsprop
    lr: float
    momentum: float = 0.0
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)  # Adam and AdamW


@dataclass(frozen=True)
class WorkloadSpec:
    name: str
    description: str
    family: str
    # channels, height, width (the default --image-size); a language model's is
    # (1, seq_len, 1): one channel of seq_len tokens (the default --seq-len)
    input_shape: tuple[int, int, int]
    num_classes: int  # a language model's: its vocabulary (the default --vocab)
    default_batch_size: int
    optimizer: OptimizerSpec
    data_format: str  # a key of dlbench.datasets.FORMATS
    datasets: tuple[str, ...]  # values --dataset accepts; the first is the default
    builders: dict[str, str] = field(default_factory=dict)  # framework -> "module:function"
    task: str = "classify"  # classify | detect | language (next-token prediction)
    resizable: bool = False  # takes any --image-size of at least min_image_size
    min_image_size: int = 1
    image_size_multiple: int = 1  # a ViT's patches: the side must be a multiple of them
    depth: int | None = None  # weight layers, as the family counts them (resnet50 -> 50)
    parametric: bool = False  # takes --depth and --width (the calibration families)
    width_multiple: int = 1  # a transformer's --width is whole attention heads
    grouped_attention: bool = False  # takes --heads and --kv-heads (a llama_configs entry)
    generates: bool = False  # its model keeps a KV cache: dlbench generate runs it


_MNIST = ("mnist", "fashion-mnist")
_IMAGES = ("imagefolder", "cifar10", "imagenet32")
_TORCH_MNIST = "dlbench.workloads.mnist_models"
_TORCH_CIFAR = "dlbench.workloads.cifar_models"
_TORCH_ZOO = "dlbench.workloads.zoo_models"
_TORCH_DETECT = "dlbench.workloads.detection_models"
_KERAS = "dlbench.workloads.keras_models"
# Workloads Keras has (--framework tensorflow / jax): the same architecture, layer for layer.
_KERAS_ZOO = {"vgg16": "vgg16", "vgg19": "vgg19", "resnet50": "resnet50", "model-a": "model_a"}
# ImageNet recipes (torchvision references), scaled linearly from batch 256 to the default.
_SGD_IMAGENET = OptimizerSpec("sgd", lr=0.025, momentum=0.9, weight_decay=1e-4)
_SGD_VGG = OptimizerSpec("sgd", lr=0.0025, momentum=0.9, weight_decay=5e-4)
_ADAM_KERAS = OptimizerSpec("adam", lr=1e-4)  # the seed notebooks' Keras default


def _zoo(
    name: str,
    description: str,
    family: str,
    depth: int | None,
    batch: int,
    *,
    size: int = 224,
    min_size: int = 32,
    optimizer: OptimizerSpec = _SGD_IMAGENET,
    builder: str | None = None,
    multiple: int = 1,
) -> WorkloadSpec:
    return WorkloadSpec(
        name=name,
        description=description,
        family=family,
        input_shape=(3, size, size),
        num_classes=1000,
        default_batch_size=batch,
        optimizer=optimizer,
        data_format="images",
        datasets=_IMAGES,
        builders={
            "pytorch": f"{_TORCH_ZOO}:{builder or name.replace('-', '_')}",
            **({"keras": f"{_KERAS}:{_KERAS_ZOO[name]}"} if name in _KERAS_ZOO else {}),
        },
        resizable=True,
        min_image_size=min_size,
        image_size_multiple=multiple,
        depth=depth,
    )


def _detector(name: str, description: str, builder: str) -> WorkloadSpec:
    return WorkloadSpec(
        name=name,
        description=description,
        family="fasterrcnn",
        input_shape=(3, 512, 512),
        num_classes=2,  # background + Waldo; a COCO folder brings its own categories
        default_batch_size=4,
        optimizer=OptimizerSpec("sgd", lr=0.005, momentum=0.9, weight_decay=1e-4),
        data_format="coco",
        datasets=("coco",),
        builders={"pytorch": f"{_TORCH_DETECT}:{builder}"},
        task="detect",
        resizable=True,
        min_image_size=64,
    )


_TORCH_PARAMETRIC = "dlbench.workloads.parametric_models"


def _parametric(family: str, description: str, depth: int, width: int, batch: int) -> WorkloadSpec:
    return WorkloadSpec(
        name=f"param-{family}",
        description=f"{description} (--depth, default {depth}; --width, default {width})",
        family=family,
        input_shape=(3, 32, 32),
        num_classes=10,
        default_batch_size=batch,
        optimizer=OptimizerSpec("sgd", lr=0.01, momentum=0.9),
        data_format="images",
        datasets=_IMAGES,
        builders={"pytorch": f"{_TORCH_PARAMETRIC}:{family}"},
        resizable=True,
        min_image_size=8,
        depth=depth,
        parametric=True,
    )


_TORCH_LANGUAGE = "dlbench.workloads.language_models"
_TEXT = ("text",)
# GPT-2/GPT-3 small's recipe (nanoGPT's train_gpt2 defaults): AdamW, betas (0.9, 0.95)
_ADAMW_GPT = OptimizerSpec("adamw", lr=6e-4, weight_decay=0.1, betas=(0.9, 0.95))


def _language(
    name: str, description: str, family: str, seq_len: int, vocab: int, batch: int, depth: int
) -> WorkloadSpec:
    return WorkloadSpec(
        name=name,
        description=description,
        family=family,
        input_shape=(1, seq_len, 1),
        num_classes=vocab,
        default_batch_size=batch,
        optimizer=_ADAMW_GPT,
        data_format="text",
        datasets=_TEXT,
        builders={
            "pytorch": f"{_TORCH_LANGUAGE}:{family}",
            "keras": f"{_KERAS}:{family}",
        },
        task="language",
        depth=depth,
        parametric=True,
        width_multiple=64,  # GPT-2's head width: heads = width / 64
        generates=True,  # with PyTorch: a KV cache (the Keras model has none)
    )


_LANGUAGE = (
    _language(
        "gpt",
        "GPT-2-style decoder: pre-norm blocks, causal SDPA attention, GELU MLP, tied "
        "embeddings (--depth 12, --width 768, --seq-len 1024, --vocab 50257: GPT-2 small, "
        "124 M parameters)",
        "gpt",
        1024,
        50257,
        12,
        12,
    ),
    _language(
        "param-transformer",
        "The gpt decoder, small, for calibration (--depth, default 4; --width, default 256; "
        "--seq-len 256; --vocab 256)",
        "transformer",
        256,
        256,
        16,
        4,
    ),
)

# Llama's own recipe (Touvron et al. 2023): AdamW, betas (0.9, 0.95), weight decay 0.1.
_ADAMW_LLAMA = OptimizerSpec("adamw", lr=3e-4, weight_decay=0.1, betas=(0.9, 0.95))


def _llama(name: str, description: str, batch: int) -> WorkloadSpec:
    config = LLAMA_CONFIGS[name]
    return WorkloadSpec(
        name=name,
        description=description,
        family="llama",
        input_shape=(1, config.seq_len, 1),
        num_classes=config.vocab,
        default_batch_size=batch,
        optimizer=_ADAMW_LLAMA,
        data_format="text",
        datasets=_TEXT,
        builders={"pytorch": f"{_TORCH_LLAMA}:{name.replace('.', '_').replace('-', '_')}"},
        task="language",
        depth=config.depth,
        parametric=True,
        grouped_attention=True,
        generates=True,
    )


_TORCH_LLAMA = "dlbench.workloads.llama_models"
_LLAMAS = (
    _llama(
        "llama",
        "Llama-architecture decoder, small: RMSNorm, RoPE, grouped-query SDPA attention, "
        "SwiGLU, untied head (--depth 4, --width 256, --heads 4, --kv-heads 2, --seq-len 512, "
        "--vocab 32000: 19 M parameters)",
        8,
    ),
    _llama(
        "llama-3.2-1b",
        "Llama 3.2 1B as published (16 x 2048, 32 heads sharing 8 KV heads, SwiGLU 8192, "
        "vocab 128,256, tied head: 1,236 M parameters), random weights",
        4,
    ),
    _llama(
        "llama-3.2-3b",
        "Llama 3.2 3B as published (28 x 3072, 24 heads sharing 8 KV heads, SwiGLU 8192, "
        "vocab 128,256, tied head: 3,213 M parameters), random weights",
        2,
    ),
    _llama(
        "qwen2.5-0.5b",
        "Qwen2.5 0.5B as published (24 x 896, 14 heads sharing 2 KV heads, SwiGLU 4864, "
        "vocab 151,936, QKV biases, tied head: 494 M parameters), random weights",
        4,
    ),
)

_PARAMETRIC = (
    _parametric("mlp", "MLP of depth - 1 hidden layers of width units", 3, 512, 128),
    _parametric("vgg", "VGG: depth - 3 convolutions in 5 stages, 3 FC", 11, 64, 64),
    _parametric("resnet", "ResNet of basic blocks, 4 stages", 18, 64, 64),
    _parametric("inception", "Inception modules (1x1, 3x3, 5x5, pool branches)", 6, 32, 64),
)

_ZOO = (
    *(
        _zoo(f"vgg{d}", f"VGG-{d} (torchvision)", "vgg", d, 64, optimizer=_SGD_VGG)
        for d in (11, 16, 19)
    ),
    *(_zoo(f"resnet{d}", f"ResNet-{d} (torchvision)", "resnet", d, 64) for d in (18, 50, 101, 152)),
    _zoo(
        "inception-v3",
        "Inception v3 (torchvision), auxiliary logits in training at 299x299",
        "inception",
        48,
        64,
        size=299,
        min_size=75,
        optimizer=OptimizerSpec("sgd", lr=0.01125, momentum=0.9, weight_decay=1e-4),
    ),
    _zoo(
        "xception",
        "Xception (timm legacy_xception, Keras' Xception)",
        "xception",
        71,
        32,
        size=299,
        min_size=71,
    ),
    *(
        _zoo(
            f"vit-{size}16",
            f"ViT-{size.upper()}/16 (torchvision VisionTransformer, width {width}, 12 layers, "
            "16x16 patches; --image-size a multiple of 16)",
            "vit",
            12,
            64,
            min_size=16,
            multiple=16,
            # torchvision's ViT recipe: AdamW, lr 3e-3 for batch 512, weight decay 0.3
            optimizer=OptimizerSpec("adamw", lr=3e-3, weight_decay=0.3),
        )
        for size, width in (("b", 768), ("s", 384))
    ),
    _zoo(
        "model-a",
        "Seed model A: VGG19 convolutional base + 4 conv + global average pooling + 3 FC "
        "with dropout",
        "vgg",
        19 + 4 + 3,
        32,
        optimizer=_ADAM_KERAS,
    ),
    _zoo(
        "model-b",
        "Seed model B: Xception and ResNet152V2 bases side by side, concatenated + conv + "
        "global average pooling + 3 FC with dropout",
        "ensemble",
        None,
        16,
        size=299,
        min_size=71,
        optimizer=_ADAM_KERAS,
    ),
    _detector(
        "fasterrcnn",
        "Faster R-CNN, ResNet-50 FPN (torchvision): find Waldo in cluttered scenes",
        "fasterrcnn_resnet50_fpn",
    ),
    _detector(
        "fasterrcnn-mobilenet",
        "Faster R-CNN, MobileNetV3-Large FPN (torchvision): find Waldo in cluttered scenes",
        "fasterrcnn_mobilenet_v3_large_fpn",
    ),
)

WORKLOADS: dict[str, WorkloadSpec] = {
    spec.name: spec
    for spec in (
        WorkloadSpec(
            name="lenet-mnist",
            description="LeNet (conv20-pool-conv50-pool-fc500-fc10), Caffe's MNIST example",
            family="lenet",
            input_shape=(1, 28, 28),
            num_classes=10,
            default_batch_size=100,
            optimizer=OptimizerSpec("sgd", lr=0.01, momentum=0.9, weight_decay=5e-4),
            data_format="mnist-idx",
            datasets=_MNIST,
            builders={"pytorch": f"{_TORCH_MNIST}:lenet", "keras": f"{_KERAS}:lenet"},
            depth=4,  # weight layers
        ),
        WorkloadSpec(
            name="deepmnist",
            description="TensorFlow's Deep MNIST CNN (conv32-pool-conv64-pool-fc1024-dropout-fc10)",
            family="cnn",
            input_shape=(1, 28, 28),
            num_classes=10,
            default_batch_size=50,
            optimizer=OptimizerSpec("adam", lr=1e-4),
            data_format="mnist-idx",
            datasets=_MNIST,
            builders={"pytorch": f"{_TORCH_MNIST}:deep_mnist", "keras": f"{_KERAS}:deep_mnist"},
            depth=4,  # weight layers
        ),
        WorkloadSpec(
            name="cifar10-cnn",
            description="TensorFlow's CIFAR-10 CNN (2 x conv+pool+LRN, fc384, fc192, fc10)",
            family="cnn",
            input_shape=(3, 32, 32),
            num_classes=10,
            default_batch_size=64,
            optimizer=OptimizerSpec("sgd", lr=0.05, momentum=0.9),
            data_format="cifar10-python",
            datasets=("cifar10",),
            builders={"pytorch": f"{_TORCH_CIFAR}:cifar10_cnn", "keras": f"{_KERAS}:cifar10_cnn"},
            depth=5,  # weight layers
        ),
        WorkloadSpec(
            name="mlp-mnist",
            description="Multilayer perceptron (784-512-512-10, dropout 0.2), Keras' MNIST MLP",
            family="mlp",
            input_shape=(1, 28, 28),
            num_classes=10,
            default_batch_size=128,
            optimizer=OptimizerSpec("rmsprop", lr=1e-3),
            data_format="mnist-idx",
            datasets=_MNIST,
            builders={"pytorch": f"{_TORCH_MNIST}:mlp", "keras": f"{_KERAS}:mlp"},
            depth=3,  # weight layers
        ),
        *_ZOO,
        *_PARAMETRIC,
        *_LANGUAGE,
        *_LLAMAS,
    )
}


def frameworks_of(workload: WorkloadSpec) -> list[str]:
    """The --framework values a workload runs under (its Keras model serves two)."""
    return [name for name, entry in FRAMEWORKS.items() if entry.builder in workload.builders]


def get_workload(name: str) -> WorkloadSpec:
    try:
        return WORKLOADS[name]
    except KeyError:
        raise unknown_name("workload", name, WORKLOADS) from None


def check_dataset(workload: WorkloadSpec, dataset: str | None) -> str:
    """The dataset a run uses: the one asked for, if the workload takes it, else its default."""
    if dataset is None:
        return workload.datasets[0]
    if dataset not in workload.datasets:
        raise ConfigError(
            f"workload {workload.name} does not train on dataset {dataset!r}",
            f"use --dataset {' or '.join(workload.datasets)}",
        )
    return dataset
