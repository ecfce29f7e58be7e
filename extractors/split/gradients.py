"""What a feature site accepts as the leader's gradients of one epoch: a ``.npy`` float32 array, no pickle, of its
features' shape, every value finite. The file's SHA-256 is on-chain, so a file that fails these checks is what the
leader recorded: no resend can mend it, and the site declines the round saying which check failed
(:class:`GradientError`). Their magnitude is not checked: the step a site takes is normalised (see
:meth:`~swarmfuse.extractors.split.site.TrainableExtractor.step`), so no finite float32 gradient moves its extractor
further than an honest one of the same direction."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from swarmfuse.errors import SwarmfuseError

NPY_MAGIC = b"\x93NUMPY"


class GradientError(SwarmfuseError, ValueError):
    """Gradients a site cannot apply as they are (the message says why)."""


def check_gradients(gradients: object, shape: tuple[int, ...]) -> np.ndarray:
    """``gradients`` as a native float32 array of ``shape`` with finite values, else :class:`GradientError`."""
    if not isinstance(gradients, np.ndarray):
        raise GradientError(f"the gradients are a {type(gradients).__name__}, not an array")
    if gradients.dtype.kind != "f" or gradients.dtype.itemsize != 4:
        raise GradientError(f"gradients of dtype {gradients.dtype}, not float32")
    if gradients.shape != tuple(shape):
        raise GradientError(f"gradients of shape {gradients.shape} for features of shape {tuple(shape)}")
    bad = int(np.size(gradients) - np.count_nonzero(np.isfinite(gradients)))
    if bad:
        raise GradientError(f"the gradients hold {bad} values that are not finite (NaN or infinite)")
    return gradients.astype(np.float32, copy=False)  # native byte order


def read_gradients(path: Path) -> np.ndarray:
    """The array a gradient file holds (shape, dtype and values still unchecked: :func:`check_gradients`), else
    :class:`GradientError`: a file that is not one ``.npy`` array (a pickle, a zip of arrays, anything else),
    is cut short or holds objects."""
    with path.open("rb") as file:
        if file.read(len(NPY_MAGIC)) != NPY_MAGIC:
            raise GradientError("the gradient file is not a .npy array (a pickle, an .npz or other bytes)")
        file.seek(0)
        try:
            return np.load(file, allow_pickle=False)
        except (ValueError, EOFError) as exc:  # objects (pickled) in the array, a bad header, too few bytes
            raise GradientError(f"the gradient file cannot be read as an array: {exc}") from exc
