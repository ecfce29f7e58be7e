"""Throughput of both extractors: PyTorch eager versus ONNX Runtime FP32 and INT8, at batch 1 and 32.

Run with ``scripts/bench_extractors.sh``. ResNet50 runs on
real emoji images at ``--resolution``; the AWD-LSTM on random token IDs of the pipeline's length. Weights
are random (throughput does not depend on them); the INT8 ResNet50 is calibrated on real images.
PyTorch is measured under ``torch.inference_mode`` with the same thread count as ONNX Runtime, and (through
the shell script) with passively waiting OpenMP threads, as ONNX Runtime's threads wait passively.
The last line is ``resnet50_ort_vs_torch=<ratio> awd_lstm_ort_vs_torch=<ratio>`` (FP32, batch 32).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from swarmfuse.extractors.data import fetch_emoji
from swarmfuse.extractors.image import build_resnet50_features, preprocess_images
from swarmfuse.extractors.onnx import FeatureExtractor, export_onnx, quantize_int8
from swarmfuse.extractors.text import AWDConfig, AWDLSTMEncoder, TextConfig, TextFeatures

BATCHES = (1, 32)


@dataclass(frozen=True)
class Row:
    model: str
    runtime: str
    batch: int
    items_per_s: float


def throughput(fn: Callable[[], object], batch: int, min_seconds: float, min_reps: int = 3) -> float:
    """Items per second of ``fn`` on one batch, from the median call time (robust to load spikes on a shared
    machine): one warm-up call, then repeated until both minimums are met."""
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_reps or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return batch / statistics.median(times)


def _measure(name: str, module: torch.nn.Module, inputs: np.ndarray, folder: Path, threads: int, min_seconds: float,
             calibration: list[np.ndarray] | None) -> list[Row]:
    module.eval()
    fp32, int8 = folder / f"{name}.onnx", folder / f"{name}.int8.onnx"
    export_onnx(module, (torch.from_numpy(inputs[:2]),), fp32, ["x"], ["y"], {"x": {0: "batch"}, "y": {0: "batch"}})
    quantize_int8(fp32, int8, calibration)
    rows = []
    with torch.inference_mode():  # torch first, so that no ORT thread pool competes with it
        for batch in BATCHES:
            tensor = torch.from_numpy(inputs[:batch])
            rows.append(Row(name, "torch-eager", batch, throughput(partial(module, tensor), batch, min_seconds)))
    for label, path in (("ort-fp32", fp32), ("ort-int8", int8)):
        rows += _ort_rows(name, label, path, inputs, threads, min_seconds)
    return rows


def _ort_rows(name: str, label: str, path: Path, inputs: np.ndarray, threads: int, min_seconds: float) -> list[Row]:
    """One ONNX Runtime session's rows (the session, and its thread pool, end when this returns)."""
    extractor = FeatureExtractor.from_onnx(path, threads=threads)
    runtime = f"{label} ({extractor.provider.removesuffix('ExecutionProvider')})"
    rows = []
    for batch in BATCHES:
        x = inputs[:batch]
        rows.append(Row(name, runtime, batch, throughput(partial(extractor.run, x), batch, min_seconds)))
    return rows


def run(resolution: int, threads: int, min_seconds: float) -> list[Row]:
    """Measure both extractors; returns one row per model, runtime and batch size."""
    torch.manual_seed(0)
    torch.set_num_threads(threads)
    manifest = fetch_emoji()
    entities = manifest.entities
    images = preprocess_images([manifest.image_path(e) for e in entities[: max(BATCHES)]], resolution)
    calibration = [preprocess_images([manifest.image_path(e) for e in entities[i : i + 16]], resolution)
                   for i in range(0, 128, 16)]
    text_cfg = TextConfig()
    awd = TextFeatures(AWDLSTMEncoder(AWDConfig(vocab_size=text_cfg.vocab_size, emb_size=text_cfg.emb_size,
                                                hidden_size=text_cfg.hidden_size, layers=text_cfg.layers)))
    ids = np.random.default_rng(0).integers(3, text_cfg.vocab_size, size=(max(BATCHES), text_cfg.max_len))
    with tempfile.TemporaryDirectory(prefix="swarmfuse-bench-") as tmp:
        return (_measure("resnet50", build_resnet50_features(None), images, Path(tmp), threads, min_seconds,
                         calibration)
                + _measure("awd_lstm", awd, ids.astype(np.int64), Path(tmp), threads, min_seconds, None))


def _rate(rows: list[Row], model: str, runtime: str, batch: int) -> float:
    return next(r.items_per_s for r in rows if r.model == model and r.runtime.startswith(runtime) and r.batch == batch)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=224, help="ResNet50 input size in pixels")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for torch and ORT")
    parser.add_argument("--min-seconds", type=float, default=3.0, help="minimum timed seconds per measurement")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    console = Console()
    console.print(f"threads={args.threads} resolution={args.resolution} cuda={torch.cuda.is_available()}")
    rows = run(args.resolution, args.threads, args.min_seconds)
    rows.sort(key=lambda r: (r.model, r.batch))
    table = Table(title="Extractor throughput (items/s)")
    for column in ("model", "runtime", "batch", "items/s", "vs torch"):
        table.add_column(column, justify="right" if column in ("batch", "items/s", "vs torch") else "left")
    for r in rows:
        table.add_row(r.model, r.runtime, str(r.batch), f"{r.items_per_s:.1f}",
                      f"{r.items_per_s / _rate(rows, r.model, 'torch', r.batch):.2f}x")
    console.print(table)
    for model in ("resnet50", "awd_lstm"):
        for batch in BATCHES:
            console.print(f"{model} batch {batch}: int8/fp32 ORT = "
                          f"{_rate(rows, model, 'ort-int8', batch) / _rate(rows, model, 'ort-fp32', batch):.2f}")
    r50 = _rate(rows, "resnet50", "ort-fp32", 32) / _rate(rows, "resnet50", "torch", 32)
    awd_ratio = _rate(rows, "awd_lstm", "ort-fp32", 32) / _rate(rows, "awd_lstm", "torch", 32)
    print(f"resnet50_ort_vs_torch={r50:.2f} awd_lstm_ort_vs_torch={awd_ratio:.2f}")


if __name__ == "__main__":
    main()
