"""Compare the image backbones on the real emoji data: a linear probe on each one's features, test accuracy.

``resnet50``: the pipeline's trained ResNet50 (cached); ``efficientnet_lite0``: the ImageNet-pretrained
EfficientNet-Lite0, frozen. Both run through ONNX Runtime at the pipeline's image resolution.
Run with ``python scripts/bench/image_extractor/compare.py``.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from swarmfuse.extractors.data import fetch_emoji
from swarmfuse.extractors.image.backbone import build_backbone
from swarmfuse.extractors.image.preprocess import preprocess_images
from swarmfuse.extractors.onnx import FeatureExtractor, export_onnx
from swarmfuse.extractors.onnx.accuracy import probe_accuracy_cost
from swarmfuse.extractors.pipeline import PipelineConfig, image_extractor


def _ort_features(module: torch.nn.Module, pixels: np.ndarray, folder: Path) -> tuple[np.ndarray, float]:
    path = folder / "model.onnx"
    export_onnx(module.eval(), (torch.from_numpy(pixels[:2]),), path, ["pixels"], ["features"],
                {"pixels": {0: "batch"}, "features": {0: "batch"}})
    extractor = FeatureExtractor.from_onnx(path)
    start = time.perf_counter()
    features = np.concatenate([extractor.run(pixels[i : i + 64]) for i in range(0, len(pixels), 64)])
    return features, time.perf_counter() - start


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    config = PipelineConfig().image
    manifest = fetch_emoji()
    entities = manifest.entities
    labels = np.array([manifest.label(e) for e in entities])
    splits = np.array([e.split for e in entities])
    pixels = preprocess_images([manifest.image_path(e) for e in entities], config.resolution)
    resnet, _, _ = image_extractor(manifest, config)
    table = Table(title=f"image-only linear probe, test split, {config.resolution} px")
    for column in ("backbone", "weights", "dim", "test accuracy", "ORT extract s"):
        table.add_column(column)
    for name, module, weights in (("resnet50", resnet, f"trained here ({config.recipe.epochs} epochs)"),
                                  ("efficientnet_lite0", build_backbone("efficientnet_lite0"), "ImageNet, frozen")):
        with tempfile.TemporaryDirectory() as tmp:
            features, seconds = _ort_features(module, pixels, Path(tmp))
        probe = probe_accuracy_cost(features, features, labels, splits == "train", splits == "test")
        table.add_row(name, weights, str(features.shape[1]), f"{probe.fp32_accuracy:.4f}", f"{seconds:.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()
