"""Data-centre views of one fusion task: DC2 holds texts, DC3 images, the label holder the labels,
each written as a site manifest (JSON Lines: ``entity_id`` plus ``text``, ``image`` or ``label``).

Each data centre holds its own, partly overlapping, subset of the entities (as real organisations
do): every entity is in a DC's view with that DC's coverage probability, drawn with a fixed seed.
Only entities present at all three parties can be used for supervised fusion; the summary
reports that intersection.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from swarmfuse.extractors.data.cache import DataError, atomic_dir
from swarmfuse.extractors.data.emoji import Manifest

DataCentre = Literal["dc1", "dc2", "dc3"]


@dataclass(frozen=True)
class PartitionConfig:
    """Coverage of each party (fraction of entities it holds), who holds labels, and the seed."""

    seed: int = 7
    text_coverage: float = 0.9
    image_coverage: float = 0.9
    label_coverage: float = 0.9
    label_holder: DataCentre = "dc1"

    def __post_init__(self) -> None:
        for name in ("text_coverage", "image_coverage", "label_coverage"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise DataError(f"{name} must be in (0, 1], got {value}")
        if self.label_holder not in ("dc1", "dc2", "dc3"):
            raise DataError(f"label holder must be dc1, dc2 or dc3, got {self.label_holder!r}")


@dataclass(frozen=True)
class PartitionSummary:
    """How many entities each party holds and how many all parties share."""

    texts: int
    images: int
    labels: int
    shared_by_all: int
    label_holder: str


def partition(manifest: Manifest, out_dir: Path, config: PartitionConfig = PartitionConfig()) -> PartitionSummary:
    """Write the three views under ``out_dir`` (replaced atomically) and return their summary."""
    ids = sorted(e.id for e in manifest.entities)
    rng = np.random.default_rng(config.seed)
    draws = rng.random((3, len(ids)))
    coverage = (config.text_coverage, config.image_coverage, config.label_coverage)
    held = [{i for i, d in zip(ids, row) if d < c} for row, c in zip(draws, coverage)]
    texts, images, labels = held
    by_id = manifest.by_id()
    with atomic_dir(out_dir) as scratch:
        for dc in ("dc1", "dc2", "dc3"):
            (scratch / dc).mkdir()
        _write_manifest(scratch / "dc2" / "texts.jsonl", [{"entity_id": i, "text": by_id[i].text} for i in sorted(texts)])
        (scratch / "dc3" / "images").mkdir()
        rows = []
        for i in sorted(images):
            rel = f"images/{Path(by_id[i].image).name}"
            shutil.copyfile(manifest.image_path(by_id[i]), scratch / "dc3" / rel)
            rows.append({"entity_id": i, "image": rel, "image_sha256": by_id[i].image_sha256})
        _write_manifest(scratch / "dc3" / "images.jsonl", rows)
        _write_manifest(scratch / config.label_holder / "labels.jsonl",
                        [{"entity_id": i, "label": by_id[i].group, "split": by_id[i].split} for i in sorted(labels)])
        summary = PartitionSummary(len(texts), len(images), len(labels), len(texts & images & labels),
                                   config.label_holder)
        _write(scratch / "partition.json", {"config": asdict(config), "summary": asdict(summary),
                                            "groups": list(manifest.groups), "sources": manifest.sources})
    return summary


def _write_manifest(path: Path, rows: list[dict[str, str]]) -> None:
    """A site manifest in JSON Lines (``swarmfuse site data add`` reads it): one entity per line."""
    path.write_text("".join(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n" for row in rows))


def _write(path: Path, doc: object) -> None:
    path.write_text(json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
