"""Scores over seeds and the evaluation report: JSON, Markdown, a confusion matrix and a bar chart."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from swarmfuse.extractors.fusion.methods import METHODS, FeatureSet, MethodRun


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


FUSED = ("early", "late", "intermediate", "hybrid")


@dataclass(frozen=True)
class Margin:
    """A fusion method's accuracy minus the best single modality's, per seed (the better of text-only and
    image-only on that seed); it *wins* when it is above on every seed."""

    method: str
    per_seed: list[float]

    @property
    def mean(self) -> float:
        return float(np.mean(self.per_seed))

    @property
    def minimum(self) -> float:
        return float(np.min(self.per_seed))

    @property
    def wins(self) -> bool:
        return self.minimum > 0


def margins(scores: dict[str, Score]) -> dict[str, Margin]:
    """Every fusion method's margin over the best single modality."""
    best = np.maximum(scores["text_only"].per_seed_accuracy, scores["image_only"].per_seed_accuracy)
    return {m: Margin(m, [float(v) for v in np.asarray(scores[m].per_seed_accuracy) - best]) for m in FUSED}


STEPS_TITLE = "## Image extractor: what each training step adds"


def _steps_lines(steps: dict | None, note: str) -> list[str]:
    from swarmfuse.extractors.image.steps import table_lines

    body = table_lines(steps) if steps is not None else [note or "Not measured."]
    return [STEPS_TITLE, "", *body, ""]


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


def write_report(fs: FeatureSet, runs: list[MethodRun], out_dir: Path, context: dict,
                 image_steps: dict | None = None, image_steps_note: str = "") -> dict[str, Score]:
    """Write ``report.json``, ``report.md``, ``methods.png``, ``confusion_intermediate.png`` and the
    first seed's fusion head (``fusion_head.npz``, SHA-256 in the report) into ``out_dir``; ``image_steps``
    is the measured table of the image extractor's training steps (:mod:`swarmfuse.extractors.image.steps`), or
    ``None`` and ``image_steps_note`` says why there is none; either is in the report."""
    out_dir.mkdir(parents=True, exist_ok=True)
    scores = score(fs, runs)
    head_sha = runs[0].fusion_head.save(out_dir / "fusion_head.npz")
    over_best = margins(scores)
    _bar_chart(scores, out_dir / "methods.png")
    _confusion(fs, runs[0].probabilities["intermediate"], out_dir / "confusion_intermediate.png",
               f"intermediate fusion, test split, seed {runs[0].seed}")
    doc = {"seeds": [r.seed for r in runs], "test_entities": int(fs.mask("test").sum()),
           "fusion_head": {"file": "fusion_head.npz", "sha256": head_sha}, "context": context,
           "methods": {m: asdict(s) for m, s in scores.items()},
           "over_best_single_modality": {m: {"per_seed": g.per_seed, "mean": g.mean, "min": g.minimum, "wins": g.wins}
                                         for m, g in over_best.items()},
           "image_steps": image_steps, "image_steps_note": image_steps_note if image_steps is None else ""}
    (out_dir / "report.json").write_text(json.dumps(doc, indent=1, default=str) + "\n")
    lines = ["# Fusion evaluation", "", f"Seeds {doc['seeds']}, {doc['test_entities']} test entities.", "",
             f"Extractors: {context.get('regime', 'unknown')}.", "",
             "| method | accuracy | macro-F1 |", "|---|---|---|"]
    lines += [f"| {m} | {s.accuracy_mean:.3f} ± {s.accuracy_std:.3f} | {s.f1_mean:.3f} ± {s.f1_std:.3f} |"
              for m, s in scores.items()]
    lines += ["", "Fusion over the best single modality (per seed, the better of text-only and image-only):", "",
              "| method | margin mean | margin min | wins on every seed |", "|---|---|---|---|"]
    lines += [f"| {m} | {g.mean:+.3f} | {g.minimum:+.3f} | {'yes' if g.wins else 'no'} |"
              for m, g in over_best.items()]
    image = context.get("pipeline", {}).get("image", {})
    if "train_seconds" in image:
        lines += ["", (f"Image extractor: {image.get('backbone')} at {image.get('resolution')} px, trained in "
                      f"{image['train_seconds']:.0f} s (cold, when it was cached), recipe `{image.get('recipe')}`.")]
    lines += ["", *_steps_lines(image_steps, image_steps_note)]
    lines += [f"Fusion head: `fusion_head.npz` sha256 `{head_sha}`", "",
              "![methods](methods.png)", "", "![confusion](confusion_intermediate.png)", ""]
    (out_dir / "report.md").write_text("\n".join(lines))
    return scores
