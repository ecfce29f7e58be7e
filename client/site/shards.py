"""The files a round moves between sites (the model file is the leader's: :mod:`swarmfuse.client.site.fusion`).

- features: ``.npy`` float32 ``[n, d]``, one row per aligned entity in ID order, from the site's
  ONNX extractor (under agreed DP terms the release of :mod:`swarmfuse.client.privacy.release`, ``[n, k]``,
  with ``features.npy.privacy.json`` saying how it was made);
- labels: ``.npz`` with ``labels`` (int64 ``[n]``), ``classes`` and ``split`` (train/val/test of
  each row, from the label holder's manifest).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from swarmfuse.chaincode.contracts.records import PrivacyTerms, ReleasePrivacy
from swarmfuse.client.site.manifest import Manifest
from swarmfuse.files import write_atomic

if TYPE_CHECKING:
    from swarmfuse.client.site.agent import Holding

def _save(path: Path, write: Callable[[io.BytesIO], None]) -> None:
    buffer = io.BytesIO()
    write(buffer)
    write_atomic(path, buffer.getvalue())


def extract(holding: Holding, ids: Sequence[str]) -> np.ndarray:
    """Features of ``ids`` (in that order) from the site's extractor."""
    assert holding.source is not None
    manifest = holding.manifest
    values = [manifest.row(entity).value for entity in ids]
    features = np.asarray(holding.source.extract(values, manifest.path.parent), dtype=np.float32)
    if features.shape != (len(ids), holding.source.feature_dim):
        raise ValueError(f"extractor returned {features.shape}, expected ({len(ids)}, {holding.source.feature_dim})")
    return features


def write_features(path: Path, holding: Holding, ids: Sequence[str]) -> None:
    """Features of ``ids`` (in that order) from the site's extractor."""
    features = extract(holding, ids)
    _save(path, lambda buffer: np.save(buffer, features, allow_pickle=False))


def write_release(path: Path, holding: Holding, ids: Sequence[str], terms: PrivacyTerms, dataset_sha256: str,
                  cache: Path) -> ReleasePrivacy:
    """The DP release of the features of ``ids`` (:mod:`swarmfuse.client.privacy.release`) and how it was made (kept
    beside it as ``<path>.privacy.json``). A release of the same rows, extractor and terms made before is sent
    again from ``cache`` rather than drawn afresh: new noise on the same rows would spend budget again."""
    from swarmfuse.chaincode.contract.canonical import canonical_json
    from swarmfuse.client.privacy.release import release

    assert holding.source is not None
    key = hashlib.sha256(b"\n".join([*(i.encode() for i in ids), holding.source.sha256.encode(),
                                      canonical_json(terms), dataset_sha256.encode()])).hexdigest()
    cached, made = cache / f"{key}.npy", cache / f"{key}.privacy.json"
    if not (cached.exists() and made.exists()):
        result = release(extract(holding, ids), terms, holding.source.sha256, dataset_sha256)
        _save(cached, lambda buffer: np.save(buffer, result.features, allow_pickle=False))
        write_atomic(made, result.record.model_dump_json().encode())
    record = ReleasePrivacy.model_validate_json(made.read_bytes())
    write_atomic(privacy_path(path), made.read_bytes())
    write_atomic(path, cached.read_bytes())
    return record


def privacy_path(shard: Path) -> Path:
    """Where a DP release's record is kept beside its file."""
    return shard.with_name(shard.name + ".privacy.json")


def write_labels(path: Path, manifest: Manifest, ids: Sequence[str]) -> None:
    """Labels of ``ids`` as class indices, the class names, and each row's split (``train`` when not given)."""
    classes = sorted({row.value for row in manifest.rows})
    index = {name: i for i, name in enumerate(classes)}
    rows = [manifest.row(entity) for entity in ids]
    labels = np.array([index[row.value] for row in rows], dtype=np.int64)
    split = np.array([row.extra.get("split") or "train" for row in rows])
    _save(path, lambda buffer: np.savez(buffer, labels=labels, classes=np.array(classes), split=split))


def load_labels(path: Path) -> tuple[np.ndarray, list[str], np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return data["labels"], [str(c) for c in data["classes"]], data["split"]
