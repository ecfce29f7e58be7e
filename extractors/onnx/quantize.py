"""INT8 quantisation of an ONNX model with ``onnxruntime.quantization``.

With calibration data: static QDQ quantisation, per-channel INT8 weights and UINT8 activations whose
ranges come from the calibration batches (suits convolutional networks). Global average pooling and every
node after it (flattening, any arithmetic on the pooled features) stay in FP32: they cost next to nothing, and
rounding the pooled features to one 8-bit range for all channels would erase the channels far smaller than
the largest.
Without: dynamic quantisation
of the weights (MatMul/Gemm/LSTM), activations quantised at run time (suits recurrent networks).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from swarmfuse.extractors.onnx.export import OnnxError, file_sha256

log = logging.getLogger(__name__)


class _Batches(CalibrationDataReader):
    """Feeds calibration batches to the quantiser, one input dictionary at a time."""

    def __init__(self, input_name: str, batches: Iterable[np.ndarray]) -> None:
        self._items = iter([{input_name: b} for b in batches])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._items, None)


def quantize_int8(src: Path, dst: Path, calibration: Iterable[np.ndarray] | None = None) -> str:
    """Write an INT8 variant of ``src`` to ``dst`` (static QDQ if ``calibration`` is given, else dynamic).

    Returns the SHA-256 of ``dst``. ``calibration`` yields input batches drawn from real data.
    """
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise OnnxError(f"ONNX model {src} does not exist")
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dst.parent, prefix=f".{dst.name}.") as tmp:
        prepared, out = Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
        try:
            quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
            if calibration is None:
                quantize_dynamic(prepared, out, weight_type=QuantType.QInt8)
            else:
                graph = onnx.load(str(prepared), load_external_data=False).graph
                quantize_static(prepared, out, _Batches(graph.input[0].name, calibration),
                                quant_format=QuantFormat.QDQ, per_channel=True, weight_type=QuantType.QInt8,
                                activation_type=QuantType.QUInt8, calibrate_method=CalibrationMethod.MinMax,
                                nodes_to_exclude=_pooling_and_after(graph))
        except Exception as exc:
            raise OnnxError(f"cannot quantise {src}: {exc}") from exc
        os.replace(out, dst)
    sha = file_sha256(dst)
    log.info("quantised %s to %s (%s, sha256 %s)", src.name, dst, "static QDQ" if calibration is not None
             else "dynamic", sha)
    return sha


def _pooling_and_after(graph: onnx.GraphProto) -> list[str]:
    """Names of the global average pooling nodes and of every node that uses their outputs, transitively."""
    excluded: list[str] = []
    tainted: set[str] = set()
    for node in graph.node:  # ONNX graphs are stored in topological order
        if node.op_type == "GlobalAveragePool" or tainted.intersection(node.input):
            excluded.append(node.name)
            tainted.update(node.output)
    return excluded
