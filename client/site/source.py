"""A site's extractor as the agent uses it: an ONNX bundle loaded for ONNX Runtime, and the folder it came from (what
split learning fine-tunes)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from swarmfuse.chaincode.contracts.records import ExtractorProvenance


@dataclass(frozen=True)
class BundleSource:
    """A loaded ONNX bundle (:class:`~swarmfuse.extractors.bundle.LoadedBundle`) as a
    :class:`~swarmfuse.client.site.agent.FeatureSource`."""

    loaded: Any

    @property
    def sha256(self) -> str:
        return str(self.loaded.sha256)

    @property
    def feature_dim(self) -> int:
        return int(self.loaded.feature_dim)

    @property
    def backbone(self) -> str:
        return str(self.loaded.bundle.backbone)

    @property
    def provenance(self) -> ExtractorProvenance | None:
        """The bundle's provenance as the on-chain record (``None``: unknown, a bundle exported before it existed)."""
        found = self.loaded.bundle.provenance
        return ExtractorProvenance.model_validate_json(json.dumps(asdict(found))) if found is not None else None

    @property
    def folder(self) -> Path:
        return Path(self.loaded.folder)

    @property
    def trainable(self) -> bool:
        """Whether the bundle carries its PyTorch weights (split learning can fine-tune it)."""
        return bool(self.loaded.bundle.trainable_file)

    def extract(self, values: list[str], base: Path | None) -> Any:
        return self.loaded.extract(values, base)
