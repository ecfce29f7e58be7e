"""ONNX Runtime inference for feature extractors: execution provider chosen automatically and reported."""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from swarmfuse.extractors.onnx.export import OnnxError

log = logging.getLogger(__name__)

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def available_providers() -> list[str]:
    """Providers this onnxruntime build offers (CUDA is listed by the GPU build even without a GPU)."""
    return ort.get_available_providers()


def _cuda_device_present() -> bool:
    """Whether the CUDA driver reports at least one (visible) device, asked through ctypes: no torch import."""
    names = ("nvcuda.dll",) if os.name == "nt" else ("libcuda.so.1", "libcuda.so")
    for name in names:
        try:
            driver = ctypes.CDLL(name)
        except OSError:
            continue
        count = ctypes.c_int(0)
        try:
            return driver.cuInit(0) == 0 and driver.cuDeviceGetCount(ctypes.byref(count)) == 0 and count.value > 0
        except AttributeError:
            return False
    return False


def _cuda_usable() -> bool:
    """Whether a CUDA device is really present (the GPU build lists CUDA on CPU-only machines too).

    Asks torch only when the process has already imported it; otherwise the CUDA driver directly, so
    inference-only processes (e.g. a site extracting features) never load torch.
    """
    if CUDA not in available_providers():
        return False
    torch = sys.modules.get("torch")
    if torch is not None:
        return bool(torch.cuda.is_available())
    return _cuda_device_present()


def _resolve(providers: str | Sequence[str]) -> list[str]:
    if providers == "auto":
        if _cuda_usable():
            preload = getattr(ort, "preload_dlls", None)
            if preload is not None:
                preload()
            return [CUDA, CPU]
        return [CPU]
    chosen = [providers] if isinstance(providers, str) else list(providers)
    unknown = [p for p in chosen if p not in available_providers()]
    if unknown:
        raise OnnxError(f"execution provider(s) {', '.join(unknown)} not available; have {available_providers()}")
    return chosen


def session_options(threads: int | None = None) -> ort.SessionOptions:
    """All graph optimisations, intra-op threads = cores (or ``threads``), sequential execution, memory arena.

    Idle worker threads sleep instead of spinning: extraction shares its machine with Fabric peers and
    other work, and spinning threads take CPU from them (and from each other when cores are oversubscribed).
    """
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads or os.cpu_count() or 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.enable_cpu_mem_arena = True
    opts.enable_mem_pattern = True
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3  # the GPU build's CUDA fall-back warning is reported through ``provider``
    return opts


@dataclass
class FeatureExtractor:
    """An ONNX model with one input and one output, run batch by batch on the chosen provider."""

    session: ort.InferenceSession
    path: Path

    @classmethod
    def from_onnx(cls, path: Path, providers: str | Sequence[str] = "auto", threads: int | None = None
                  ) -> FeatureExtractor:
        """Open ``path``; ``providers="auto"`` takes CUDA when a GPU is present, else the CPU."""
        path = Path(path)
        if not path.is_file():
            raise OnnxError(f"ONNX model {path} does not exist")
        try:
            session = ort.InferenceSession(str(path), sess_options=session_options(threads),
                                           providers=_resolve(providers))
        except OnnxError:
            raise
        except Exception as exc:
            raise OnnxError(f"cannot load ONNX model {path}: {exc}") from exc
        if len(session.get_inputs()) != 1:
            raise OnnxError(f"{path} has {len(session.get_inputs())} inputs; a feature extractor takes one")
        extractor = cls(session, path)
        log.info("%s runs on %s", path.name, extractor.provider)
        return extractor

    @property
    def provider(self) -> str:
        """The execution provider that actually runs the model."""
        return self.session.get_providers()[0]

    @property
    def input_name(self) -> str:
        return self.session.get_inputs()[0].name

    def run(self, x: np.ndarray) -> np.ndarray:
        """Features of one batch: ``x`` as the model expects it (e.g. float32 NCHW, int64 token IDs)."""
        expected = self.session.get_inputs()[0]
        rank = len(expected.shape)
        if x.ndim != rank:
            raise OnnxError(f"{self.path.name}: input {expected.name} must have {rank} dimensions, got shape {x.shape}")
        return self.session.run(None, {expected.name: x})[0]
