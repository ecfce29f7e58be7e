"""What label smoothing in the text classifier's fine-tuning does to fusion, over several text trainings.

For each text-extractor training seed and each smoothing (none, and the default), the text extractor is
trained through the pipeline cache (a configuration trained before is not trained again), the features of
both extractors are extracted with ONNX Runtime (the image extractor is the default one), and every fusion
method is scored over the fusion-head seeds. The table has, per configuration, text-only and intermediate
fusion accuracy (means over the head seeds) and intermediate fusion's margin over the better single
modality (on each head seed, averaged: :func:`swarmfuse.extractors.fusion.report.margins`). Written to ``<out>/text_smoothing.json`` and ``.md``; run with ``scripts/bench_text_finetune.sh``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from swarmfuse.extractors.seeds import seeds_argument
from swarmfuse.extractors.text.classify import FinetuneConfig
from swarmfuse.extractors.text.extractor import TextConfig

log = logging.getLogger(__name__)

OUT_FILE = "text_smoothing.json"


def text_config(seed: int, smoothing: float) -> TextConfig:
    """The default text configuration with another training seed and label smoothing."""
    return TextConfig(seed=seed, finetune=replace(FinetuneConfig(), label_smoothing=smoothing))


def measure(text_seeds: tuple[int, ...], head_seeds: tuple[int, ...], smoothings: tuple[float, ...]) -> dict:
    """Train (or load) each configuration's text extractor and score the fusion methods on its features."""
    from swarmfuse.extractors.fusion.methods import run_methods
    from swarmfuse.extractors.fusion.report import margins, score
    from swarmfuse.extractors.pipeline import PipelineConfig, build_features

    rows = []
    for smoothing in smoothings:
        for seed in text_seeds:
            result = build_features(PipelineConfig(text=text_config(seed, smoothing)))
            scores = score(result.features, [run_methods(result.features, s) for s in head_seeds])
            rows.append({"label_smoothing": smoothing, "text_seed": seed,
                         "text_train_seconds": float(result.summary["text"]["train_seconds"]),
                         **{m: scores[m].accuracy_mean for m in ("text_only", "image_only", "intermediate", "late")},
                         "margin": margins(scores)["intermediate"].mean,
                         "per_seed": {m: s.per_seed_accuracy for m, s in scores.items()}})
            log.info("smoothing %s text seed %d: %s", smoothing, seed, rows[-1])
    return {"measured_at": time.strftime("%Y-%m-%d %H:%M %Z"), "cpu_count": os.cpu_count(),
            "head_seeds": list(head_seeds), "rows": rows}


COLUMNS = ("label smoothing", "text seed", "text-only", "image-only", "intermediate", "late", "margin",
           "text training s")


def _cells(doc: dict) -> list[tuple[str, ...]]:
    """The table's rows as text: one per configuration, then per smoothing the means over the text seeds."""
    def cells(smoothing: float, seed: str, r: dict, seconds: str) -> tuple[str, ...]:
        return (str(smoothing), seed, f"{r['text_only']:.3f}", f"{r['image_only']:.3f}", f"{r['intermediate']:.3f}",
                f"{r['late']:.3f}", f"{100 * r['margin']:+.1f}", seconds)

    out = [cells(r["label_smoothing"], str(r["text_seed"]), r, f"{r['text_train_seconds']:.0f}") for r in doc["rows"]]
    for smoothing in sorted({r["label_smoothing"] for r in doc["rows"]}):
        rows = [r for r in doc["rows"] if r["label_smoothing"] == smoothing]
        mean = {k: sum(r[k] for r in rows) / len(rows) for k in ("text_only", "image_only", "intermediate", "late", "margin")}
        out.append(cells(smoothing, "mean", mean, ""))
    return out


def table_lines(doc: dict) -> list[str]:
    """The table as Markdown lines."""
    return [(f"Measured {doc['measured_at']} on {doc['cpu_count']} CPU cores; test split; accuracies are means over "
            f"fusion-head seeds {doc['head_seeds']}; margin: intermediate fusion minus the better single modality "
            "on each seed, averaged, in points."), "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS),
            *("| " + " | ".join(row) + " |" for row in _cells(doc))]


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("text-smoothing"), help="folder for text_smoothing.json/.md")
    parser.add_argument("--text-seeds", type=seeds_argument, default=(0, 1, 2),
                        help="text-extractor training seeds, comma-separated")
    parser.add_argument("--head-seeds", type=seeds_argument, default=(0, 1, 2), help="fusion-head seeds, comma-separated")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch threads outside training (trainings run on reproducible.TRAIN_THREADS)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    doc = measure(args.text_seeds, args.head_seeds, (0.0, FinetuneConfig().label_smoothing))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / OUT_FILE).write_text(json.dumps(doc, indent=1) + "\n")
    (args.out / "text_smoothing.md").write_text("\n".join(["# Label smoothing in the text fine-tuning", "",
                                                           *table_lines(doc)]) + "\n")
    table = Table(*COLUMNS, title="Label smoothing in the text fine-tuning (test split)")
    for row in _cells(doc):
        table.add_row(*row)
    Console().print(table)
    print(f"written to {args.out / OUT_FILE}")


if __name__ == "__main__":
    main()
