"""Scores over seeds and the evaluation report: JSON, Markdown, a confusion matrix and a bar chart."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score  # noqa: E402

from swarmfuse.extractors.fusion.methods import METHODS, FeatureSet, MethodRun  # noqa: E402


@dataclass(frozen=True)
class Score:
    """Mean and standard deviation (over seeds) of test accuracy and macro-F1."""

    accuracy_mean: float
    accuracy_std: float
    f1_mean: float
    f1_std: float
    per_seed_accuracy: list[float]


def score(fs: FeatureSet, runs: list[MethodRun]) -> dict[str, Score]:
    y = fs.labels[fs.mask("test")]
    out = {}
    for method in METHODS:
        preds = [run.probabilities[method].argmax(1) for run in runs]
        acc = [float(accuracy_score(y, p)) for p in preds]
        f1 = [float(f1_score(y, p, average="macro", zero_division=0)) for p in preds]
        out[method] = Score(float(np.mean(acc)), float(np.std(acc)), float(np.mean(f1)), float(np.std(f1)), acc)
    return out


def _bar_chart(scores: dict[str, Score], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 4))
    names = list(scores)
    x = np.arange(len(names))
    ax.bar(x - 0.2, [scores[m].accuracy_mean for m in names], 0.4, yerr=[scores[m].accuracy_std for m in names],
           label="accuracy", capsize=3)
    ax.bar(x + 0.2, [scores[m].f1_mean for m in names], 0.4, yerr=[scores[m].f1_std for m in names],
           label="macro-F1", capsize=3)
    ax.set_xticks(x, names, rotation=20)
    ax.set_ylim(0, 1)
    ax.set_ylabel("test score (mean ± std over seeds)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _confusion(fs: FeatureSet, probs: np.ndarray, path: Path, title: str) -> None:
    y = fs.labels[fs.mask("test")]
    cm = confusion_matrix(y, probs.argmax(1), labels=range(len(fs.classes)))
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(fs.classes)), fs.classes, rotation=45, ha="right")
    ax.set_yticks(range(len(fs.classes)), fs.classes)
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=8, color="white" if v > cm.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(fs: FeatureSet, runs: list[MethodRun], out_dir: Path, context: dict) -> dict[str, Score]:
    """Write ``report.json``, ``report.md``, ``methods.png``, ``confusion_intermediate.png`` and the
    first seed's fusion head (``fusion_head.npz``, SHA-256 in the report) into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    scores = score(fs, runs)
    head_sha = runs[0].fusion_head.save(out_dir / "fusion_head.npz")
    _bar_chart(scores, out_dir / "methods.png")
    _confusion(fs, runs[0].probabilities["intermediate"], out_dir / "confusion_intermediate.png",
               f"intermediate fusion, test split, seed {runs[0].seed}")
    doc = {"seeds": [r.seed for r in runs], "test_entities": int(fs.mask("test").sum()),
           "fusion_head": {"file": "fusion_head.npz", "sha256": head_sha}, "context": context,
           "methods": {m: asdict(s) for m, s in scores.items()}}
    (out_dir / "report.json").write_text(json.dumps(doc, indent=1, default=str) + "\n")
    lines = ["# Fusion evaluation", "", f"Seeds {doc['seeds']}, {doc['test_entities']} test entities.", "",
             "| method | accuracy | macro-F1 |", "|---|---|---|"]
    lines += [f"| {m} | {s.accuracy_mean:.3f} ± {s.accuracy_std:.3f} | {s.f1_mean:.3f} ± {s.f1_std:.3f} |"
              for m, s in scores.items()]
    lines += ["", f"Fusion head: `fusion_head.npz` sha256 `{head_sha}`", "",
              "![methods](methods.png)", "", "![confusion](confusion_intermediate.png)", ""]
    (out_dir / "report.md").write_text("\n".join(lines))
    return scores
