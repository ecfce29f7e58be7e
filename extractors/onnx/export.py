"""Export a torch module to an ONNX file with dynamic axes and identify it by its SHA-256."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from swarmfuse.errors import SwarmfuseError

log = logging.getLogger(__name__)


class OnnxError(SwarmfuseError, RuntimeError):
    """An ONNX file is missing, invalid, or cannot be exported, quantised or run."""


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file (what the data summary records for a model)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def export_onnx(module, example_inputs: tuple, path: Path, input_names: Sequence[str], output_names: Sequence[str],
                dynamic_axes: dict[str, dict[int, str]], opset: int = 17) -> str:
    """Export ``module`` (in its current train/eval mode) with the TorchScript exporter; return the file's SHA-256.

    The file is written next to ``path`` and renamed into place, so a crash never leaves a partial model.
    """
    import onnx  # both only for export: the runtime (which imports OnnxError from here) needs neither
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        with torch.inference_mode():
            torch.onnx.export(module, example_inputs, tmp, input_names=list(input_names),
                              output_names=list(output_names), dynamic_axes=dynamic_axes, opset_version=opset,
                              dynamo=False)
        onnx.checker.check_model(tmp)
        os.replace(tmp, path)
    except Exception as exc:
        raise OnnxError(f"cannot export {type(module).__name__} to {path}: {exc}") from exc
    finally:
        Path(tmp).unlink(missing_ok=True)
    sha = file_sha256(path)
    log.info("exported %s to %s (sha256 %s)", type(module).__name__, path, sha)
    return sha
