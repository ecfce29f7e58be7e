"""The measured accuracy cost of the INT8 extractors on the real emoji data.

Both ONNX models of the feature pipeline are quantised (ResNet50: static QDQ, per-channel, calibrated on
training images; AWD-LSTM: dynamic) and the features of every entity recomputed with ONNX Runtime. For the
image, the text and the concatenated (intermediate fusion) features, models trained on the FP32 features
are scored on FP32 and on INT8 test features: the fusion heads themselves (:func:`measure_heads`, the
measure of record: what a site running the INT8 extractors would lose, averaged over head seeds), and a
linear probe (:func:`measure`, one model, more sensitive to how the features are scaled).
Run with ``python scripts/bench/image_extractor/int8_cost.py``; the image-extractor bench (``bench.py`` beside
it) measures each training step's INT8 cost with :func:`measure`.
"""

from __future__ import annotations

import json
import logging

import numpy as np
from rich.console import Console
from rich.table import Table

from swarmfuse.extractors.data import fetch_emoji
from swarmfuse.extractors.fusion.methods import FeatureSet, fit_head
from swarmfuse.extractors.image import preprocess_images
from swarmfuse.extractors.onnx import FeatureExtractor, quantize_int8
from swarmfuse.extractors.onnx.accuracy import AccuracyCost, probe_accuracy_cost
from swarmfuse.extractors.pipeline import PipelineConfig, PipelineResult, build_features
from swarmfuse.extractors.text import cached_text_extractor

log = logging.getLogger(__name__)

CALIBRATION_IMAGES = 256
BATCH = 64


def _batched(extractor: FeatureExtractor, x: np.ndarray) -> np.ndarray:
    return np.concatenate([extractor.run(x[i : i + BATCH]) for i in range(0, len(x), BATCH)])


def int8_features(result: PipelineResult, config: PipelineConfig) -> tuple[np.ndarray, np.ndarray]:
    """INT8 (image, text) features of every entity; the quantised models are cached in ``int8-<features folder>``."""
    manifest = fetch_emoji()
    entities = manifest.entities
    pixels = preprocess_images([manifest.image_path(e) for e in entities], config.image.resolution)
    text, _ = cached_text_extractor(manifest, config.text)
    ids = text.encode([e.text for e in entities])
    folder = result.folder.with_name(f"int8-{result.folder.name}")
    image_int8, text_int8 = folder / "image.int8.onnx", folder / "text.int8.onnx"
    if not image_int8.exists():
        train = np.flatnonzero(result.features.mask("train"))[:CALIBRATION_IMAGES]
        quantize_int8(result.folder / "image.onnx", image_int8,
                      [pixels[train[i : i + 32]] for i in range(0, len(train), 32)])
    if not text_int8.exists():
        quantize_int8(result.folder / "text.onnx", text_int8)
    return (_batched(FeatureExtractor.from_onnx(image_int8), pixels),
            _batched(FeatureExtractor.from_onnx(text_int8), ids))


Pairs = dict[str, tuple[np.ndarray, np.ndarray]]  # features name -> (FP32, INT8) features of every entity


def _pairs(config: PipelineConfig, result: PipelineResult | None) -> tuple[FeatureSet, Pairs]:
    """The FP32 features and (FP32, INT8) feature pairs for ``image``, ``text`` and ``concat``."""
    result = result or build_features(config)
    fs = result.features
    image8, text8 = int8_features(result, config)
    return fs, {"image": (fs.image, image8), "text": (fs.text, text8),
                "concat": (np.hstack([fs.text, fs.image]), np.hstack([text8, image8]))}


def measure(config: PipelineConfig = PipelineConfig(), result: PipelineResult | None = None) -> dict[str, AccuracyCost]:
    """Linear-probe accuracy on FP32 and INT8 features for ``image``, ``text`` and ``concat``; ``result`` is the
    pipeline's result for ``config`` when the caller has it already."""
    return _probe_costs(*_pairs(config, result))


def measure_heads(config: PipelineConfig = PipelineConfig(), result: PipelineResult | None = None,
                  seeds: tuple[int, ...] = (0, 1, 2)) -> dict[str, AccuracyCost]:
    """The fusion heads' test accuracy (mean over ``seeds``; trained on FP32 features as the methods train them)
    on FP32 and INT8 features for ``image`` (image-only head), ``text`` and ``concat`` (intermediate fusion)."""
    return _head_costs(*_pairs(config, result), seeds)


def _probe_costs(fs: FeatureSet, pairs: Pairs) -> dict[str, AccuracyCost]:
    train, test = fs.mask("train"), fs.mask("test")
    return {name: probe_accuracy_cost(a, b, fs.labels, train, test) for name, (a, b) in pairs.items()}


def _head_costs(fs: FeatureSet, pairs: Pairs, seeds: tuple[int, ...]) -> dict[str, AccuracyCost]:
    test = fs.mask("test")
    costs = {}
    for name, (fp32, int8) in pairs.items():
        heads = [fit_head(fs, fp32, seed) for seed in seeds]
        costs[name] = AccuracyCost(*(float(np.mean([(h.predict_proba(x[test]).argmax(1) == fs.labels[test]).mean()
                                                    for h in heads])) for x in (fp32, int8)))
    return costs


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    fs, pairs = _pairs(PipelineConfig(), None)
    measured = {"fusion heads (seeds 0, 1, 2)": _head_costs(fs, pairs, (0, 1, 2)), "linear probe": _probe_costs(fs, pairs)}
    table = Table("features", "model", "FP32 accuracy", "INT8 accuracy", "cost (points)",
                  title="INT8 accuracy cost (test split, 9 groups)")
    for model, costs in measured.items():
        for name, c in costs.items():
            table.add_row(name, model, f"{c.fp32_accuracy:.4f}", f"{c.int8_accuracy:.4f}", f"{100 * c.cost:+.2f}")
    Console().print(table)
    print(json.dumps({model: {k: {"fp32": v.fp32_accuracy, "int8": v.int8_accuracy} for k, v in costs.items()}
                      for model, costs in measured.items()}))


if __name__ == "__main__":
    main()
