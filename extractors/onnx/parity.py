"""Torch-versus-ONNX Runtime parity on the same inputs."""

from __future__ import annotations

import numpy as np

from swarmfuse.extractors.onnx.runtime import FeatureExtractor


def max_abs_diff(module, extractor: FeatureExtractor, inputs: np.ndarray) -> float:
    """Largest absolute difference between ``module``'s (eval mode) and the ONNX model's outputs on ``inputs``."""
    import torch

    with torch.inference_mode():
        expected = module.eval()(torch.from_numpy(inputs)).numpy()
    return float(np.abs(expected - extractor.run(inputs)).max())
