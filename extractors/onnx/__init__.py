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

from swarmfuse.extractors.onnx.export import OnnxError, export_onnx, file_sha256
from swarmfuse.extractors.onnx.parity import max_abs_diff
from swarmfuse.extractors.onnx.quantize import quantize_int8
from swarmfuse.extractors.onnx.runtime import FeatureExtractor, available_providers

__all__ = ["FeatureExtractor", "OnnxError", "available_providers", "export_onnx", "file_sha256", "max_abs_diff",
           "quantize_int8"]
