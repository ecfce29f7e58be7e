"""Pseudo-quantisation noise: train a network so that INT8 activations cost it little accuracy.

Static INT8 quantisation rounds each activation tensor to 256 levels spread over its calibrated range, one
range per tensor. A network whose pooled features keep information in channels far smaller than the largest
ones loses it to that rounding. While :func:`quantisation_noise` is active, every tensor that the ONNX
quantiser will round (the output of each convolution after batch norm and of each ReLU), and the pooled
features, get uniform noise of one quantisation step of that tensor's current range, so training moves the
information where INT8 keeps it. The noise is additive, so gradients flow through unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

LEVELS = 255  # steps of an 8-bit activation grid


def _add_noise(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        low, high = torch.aminmax(output)
        step = (high - low).clamp(min=1e-8) / LEVELS
        noise = (torch.rand_like(output) - 0.5) * step
    return output + noise


@contextmanager
def quantisation_noise(model: nn.Module) -> Iterator[None]:
    """Add one quantisation step of uniform noise to the outputs of ``model``'s quantised tensors while active.

    Hooks the batch norms (a convolution's output once the norm is folded into it), the ReLUs and the
    adaptive average pooling; the hooks are removed on exit. Noise is only added in training mode. The
    pooled features are not rounded by :func:`swarmfuse.extractors.onnx.quantize_int8`, but they inherit the
    rounding of the last block's output; noise of one step of their own range makes every channel carry its
    information above that level (on the emoji ResNet50 this is what brings the INT8 cost under a point).
    """
    handles = []
    for module in model.modules():
        if isinstance(module, (nn.BatchNorm2d, nn.ReLU, nn.AdaptiveAvgPool2d)):
            handles.append(module.register_forward_hook(
                lambda m, i, o: _add_noise(m, i, o) if m.training else None))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
