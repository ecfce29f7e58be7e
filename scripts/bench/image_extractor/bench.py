"""What each step of the ResNet50 training recipe adds: image-only and fusion accuracy, training time.

The steps (:func:`swarmfuse.extractors.image.steps.recipe_steps`) are cumulative, from the from-scratch baseline
to the default :class:`ImageRecipe`. Each step's extractor is trained through the pipeline cache (so a step
trained before is not trained again; its ``train_seconds`` is the cold training time recorded when it was trained
on this machine), its features extracted with ONNX Runtime, every fusion method scored over the seeds, and the
INT8 cost of its image features measured (``int8_cost.py`` beside this file). A fresh machine's CI trains only
the default recipe, so the CI time a step adds is its training time minus the previous step's (plus, for the
other artists' images, their cold download, timed here in a scratch cache). The result is written to
``<out>/image_steps.json`` and ``.md`` and to ``<cache>/pipeline/image_steps.json``, where
``swarmfuse fuse report`` picks it up for its report. Run with ``scripts/bench_image_extractor.sh``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from swarmfuse.extractors.image.steps import STEPS_FILE, recipe_steps, rich_table, steps_cache_file, table_lines
from swarmfuse.extractors.image.train import ImageRecipe, TrainProgress
from swarmfuse.extractors.seeds import seeds_argument
from swarmfuse.files import write_atomic

RESOLUTION = 64  # the pipeline's default image resolution (ImageConfig.resolution)


def artists_fetch_seconds() -> float:
    """Cold download and extraction of the other artists' images, timed in a scratch cache."""
    from swarmfuse.extractors.data import fetch_emoji
    from swarmfuse.extractors.data.artists import fetch_artist_images
    from swarmfuse.extractors.data.cache import CACHE_ENV

    manifest = fetch_emoji()
    previous = os.environ.get(CACHE_ENV)
    with tempfile.TemporaryDirectory(prefix="swarmfuse-cold-") as scratch:
        os.environ[CACHE_ENV] = scratch
        try:
            start = time.perf_counter()
            fetch_artist_images(manifest)
            return time.perf_counter() - start
        finally:
            if previous is None:
                os.environ.pop(CACHE_ENV, None)
            else:
                os.environ[CACHE_ENV] = previous


def measure_steps(out: Path, seeds: tuple[int, ...] = (0, 1, 2), resolution: int = RESOLUTION,
                  final: ImageRecipe = ImageRecipe()) -> dict:
    """Train (or load) every step's extractor, score the methods over ``seeds``, write the step table."""
    import torch
    from int8_cost import measure  # beside this file (on the path when the driver runs as a script)
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from swarmfuse.extractors.fusion.methods import run_methods
    from swarmfuse.extractors.fusion.report import score
    from swarmfuse.extractors.pipeline import ImageConfig, PipelineConfig, build_features

    load_start = os.getloadavg()[0]
    fetch_seconds = artists_fetch_seconds()
    steps = recipe_steps(final)
    rows: list[dict] = []
    previous: dict | None = None
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[status]}"),
               TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn())
    with Progress(*columns) as progress:
        for step in steps:
            task = progress.add_task(step.name[:48], total=None, status="")

            def report(p: TrainProgress, task: int = task) -> None:
                progress.update(task, total=p.epochs * p.steps, completed=(p.epoch - 1) * p.steps + p.step,
                                status=f"epoch {p.epoch}/{p.epochs} loss {p.loss:.3f}")

            config = PipelineConfig(image=ImageConfig(resolution=resolution, recipe=step.recipe))
            result = build_features(config, progress=report)
            scores = score(result.features, [run_methods(result.features, s) for s in seeds])
            image = scores["image_only"].accuracy_mean
            int8 = measure(config, result)["image"]
            seconds = float(result.summary["image"]["train_seconds"])
            ci = seconds - (previous["train_seconds"] if previous else seconds)
            if step.recipe.artists and not (previous and previous["recipe"]["artists"]):
                ci += fetch_seconds
            rows.append({"step": step.name, "recipe": asdict(step.recipe), "resolution": resolution,
                         "train_seconds": seconds, "ci_seconds_added": ci,
                         "image_only_mean": image, "image_only_std": scores["image_only"].accuracy_std,
                         "added": image - previous["image_only_mean"] if previous else 0.0,
                         "int8_cost": int8.cost, "int8_probe_fp32": int8.fp32_accuracy,
                         "text_only_mean": scores["text_only"].accuracy_mean,
                         "intermediate_mean": scores["intermediate"].accuracy_mean,
                         "intermediate_std": scores["intermediate"].accuracy_std,
                         "per_seed": {m: s.per_seed_accuracy for m, s in scores.items()}})
            previous = rows[-1]
            progress.update(task, total=1, completed=1, status=f"image-only {image:.3f}")
            doc = {"measured_at": time.strftime("%Y-%m-%d %H:%M %Z"), "cpu_count": os.cpu_count(),
                   "torch_threads": torch.get_num_threads(), "load_average": [load_start, os.getloadavg()[0]],
                   "resolution": resolution, "seeds": list(seeds), "artists_fetch_seconds": fetch_seconds,
                   "text_extractor": result.text_extractor,
                   "complete": len(rows) == len(steps), "steps": rows}
            _write(doc, out)  # after every step, so a long run leaves its finished steps behind
    return doc


def _write(doc: dict, out: Path) -> None:
    """The table into ``out`` (JSON and Markdown) and into the cache, whole or not at all (``fuse report`` may
    read the cached one meanwhile)."""
    out.mkdir(parents=True, exist_ok=True)
    for path in (out / STEPS_FILE, steps_cache_file()):
        write_atomic(path, (json.dumps(doc, indent=1) + "\n").encode())
    (out / "image_steps.md").write_text("\n".join(["# ResNet50 training steps", "", *table_lines(doc)]) + "\n")


def main() -> None:
    import torch
    from rich.console import Console

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("image-steps"), help="folder for image_steps.json/.md")
    parser.add_argument("--seeds", type=seeds_argument, default=(0, 1, 2), help="fusion-head seeds, comma-separated")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch threads outside training (trainings run on reproducible.TRAIN_THREADS)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    doc = measure_steps(args.out, args.seeds)
    Console().print(rich_table(doc, "ResNet50 training steps (test split)"))
    print(f"steps written to {args.out / STEPS_FILE} and {steps_cache_file()}")


if __name__ == "__main__":
    main()
