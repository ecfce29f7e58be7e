"""ONNX export, ONNX Runtime inference, INT8 quantisation and torch-vs-ORT parity.

Public interface::

    export_onnx(module, example_inputs, path, input_names, output_names, dynamic_axes, opset=17) -> sha256 hex
    FeatureExtractor.from_onnx(path, providers="auto", threads=None) -> FeatureExtractor
    FeatureExtractor.run(x: np.ndarray) -> np.ndarray;  .provider  # "CUDAExecutionProvider" or "CPUExecutionProvider"
    quantize_int8(src, dst, calibration=None) -> sha256 hex  # static QDQ with calibration data, else dynamic
    max_abs_diff(torch_module, extractor, inputs) -> float
    file_sha256(path) -> hex

Inference needs only NumPy and onnxruntime; torch is imported only by the export and parity helpers.
"""

import importlib

_EXPORTS = {
    **dict.fromkeys(("OnnxError", "export_onnx", "file_sha256"), "swarmfuse.extractors.onnx.export"),
    "max_abs_diff": "swarmfuse.extractors.onnx.parity",
    "quantize_int8": "swarmfuse.extractors.onnx.quantize",
    **dict.fromkeys(("FeatureExtractor", "available_providers"), "swarmfuse.extractors.onnx.runtime"),
}

__all__ = ["FeatureExtractor", "OnnxError", "available_providers", "export_onnx", "file_sha256", "max_abs_diff",
           "quantize_int8"]


def __getattr__(name: str) -> object:
    """Import the public names on first use, so importing the package (e.g. for the CLI) stays cheap."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
