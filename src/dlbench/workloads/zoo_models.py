"""PyTorch builders of the classification zoo: torchvision models (weights=None), timm where
torchvision has none (Xception, ResNet152V2), and the two seed models.

Every builder takes ``(input_shape, num_classes)``; no weights are downloaded, ever.
"""

from __future__ import annotations

from typing import Any

import torch
import torchvision
from torch import nn

INCEPTION_AUX_MIN_SIZE = 299  # below it the auxiliary head's 5x5 convolution has no input left


def _vgg(depth: int, num_classes: int) -> nn.Module:
    build = getattr(torchvision.models, f"vgg{depth}")
    return build(weights=None, num_classes=num_classes)


def vgg11(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    return _vgg(11, num_classes)


def vgg16(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    return _vgg(16, num_classes)


def vgg19(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    return _vgg(19, num_classes)


def _resnet(depth: int, num_classes: int) -> nn.Module:
    build = getattr(torchvision.models, f"resnet{depth}")
    return build(weights=None, num_classes=num_classes)


def resnet18(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    return _resnet(18, num_classes)


def resnet50(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    return _resnet(50, num_classes)


def resnet101(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    return _resnet(101, num_classes)


def resnet152(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    return _resnet(152, num_classes)


def vit_b16(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """torchvision's ViT-B/16 at the input's side (its position embeddings follow it)."""
    return torchvision.models.vit_b_16(
        weights=None, image_size=input_shape[1], num_classes=num_classes
    )


def vit_s16(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """ViT-S/16 (DeiT-S's shape: width 384, 6 heads, MLP 1536), built as torchvision builds
    ViT-B/16, which torchvision does not ship."""
    from torchvision.models.vision_transformer import VisionTransformer

    return VisionTransformer(
        image_size=input_shape[1], patch_size=16, num_layers=12, num_heads=6, hidden_dim=384,
        mlp_dim=1536, num_classes=num_classes,
    )  # fmt: skip


def inception_v3(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """Auxiliary logits in training where the input is large enough for the auxiliary head
    (the runner adds 0.4 x their loss, as the paper and torchvision's reference do)."""
    aux = input_shape[1] >= INCEPTION_AUX_MIN_SIZE
    return torchvision.models.inception_v3(
        weights=None, num_classes=num_classes, aux_logits=aux, init_weights=True
    )


def xception(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    import timm

    return timm.create_model("legacy_xception", pretrained=False, num_classes=num_classes)


def _head(features: int, num_classes: int, hidden: tuple[int, int] = (1024, 512)) -> nn.Module:
    """Global average pooling and three fully connected layers with dropout."""
    return nn.Sequential(
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(features, hidden[0]),
        nn.ReLU(inplace=True),
        nn.Dropout(0.5),
        nn.Linear(hidden[0], hidden[1]),
        nn.ReLU(inplace=True),
        nn.Dropout(0.5),
        nn.Linear(hidden[1], num_classes),
    )


def _conv(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True)]


def model_a(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """VGG19's convolutional base, four 3x3 convolutions, global average pooling, 3 FC."""
    base = torchvision.models.vgg19(weights=None).features
    extra = [*_conv(512, 512), *_conv(512, 512), *_conv(512, 256), *_conv(256, 256)]
    return nn.Sequential(base, *extra, _head(256, num_classes))


class ModelB(nn.Module):
    """Xception and ResNet152V2 bases on the same image, their feature maps concatenated,
    a 3x3 convolution, global average pooling and three FC layers with dropout."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        import timm

        xception: Any = timm.create_model("legacy_xception", pretrained=False, num_classes=0)
        resnet: Any = timm.create_model("resnetv2_152", pretrained=False, num_classes=0)
        self.xception, self.resnet = xception, resnet
        channels = int(xception.num_features) + int(resnet.num_features)
        self.conv = nn.Sequential(*_conv(channels, 512))
        self.head = _head(512, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        a = self.xception.forward_features(images)
        b = self.resnet.forward_features(images)
        if a.shape[-2:] != b.shape[-2:]:  # the two stems round odd sizes differently
            size = (min(a.shape[-2], b.shape[-2]), min(a.shape[-1], b.shape[-1]))
            a, b = (
                nn.functional.adaptive_avg_pool2d(a, size),
                nn.functional.adaptive_avg_pool2d(b, size),
            )
        return self.head(self.conv(torch.cat([a, b], dim=1)))


def model_b(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    return ModelB(num_classes)
