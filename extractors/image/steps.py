"""What each step of the ResNet50 training recipe adds: image-only and fusion accuracy, training time.

The steps are cumulative, from the from-scratch baseline to the default :class:`ImageRecipe`. Each step's
extractor is trained through the pipeline cache (so a step trained before is not trained again; its
``train_seconds`` is the cold training time recorded when it was trained on this machine), its features
extracted with ONNX Runtime, every fusion method scored over the seeds, and the INT8 cost of its image
features measured (:mod:`swarmfuse.extractors.int8_cost`). A fresh machine's CI trains only
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
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from rich.table import Table

from swarmfuse.extractors.data import cache_root
from swarmfuse.extractors.image.train import ImageRecipe, TrainProgress
from swarmfuse.extractors.seeds import seeds_argument

log = logging.getLogger(__name__)

STEPS_FILE = "image_steps.json"
RESOLUTION = 64  # the pipeline's default image resolution (ImageConfig.resolution)


@dataclass(frozen=True)
class Step:
    name: str
    recipe: ImageRecipe


def recipe_steps(final: ImageRecipe = ImageRecipe()) -> tuple[Step, ...]:
    """The cumulative steps; the last one is ``final`` (the default recipe)."""
    base = replace(final, epochs=4, artists=False, augment=False, distill=False, quant_noise_epochs=0)
    artists = replace(base, artists=True)
    augment = replace(artists, augment=True)
    distill = replace(augment, distill=True)
    longer = replace(final, quant_noise_epochs=0)
    return (Step("baseline: Google images, labels, flips, 4 epochs", base),
            Step("+ Apple, Twitter, Facebook images of the training entities", artists),
            Step("+ augmentation (affine warp, colour jitter)", augment),
            Step("+ distillation from EfficientNet-Lite0 (val images unlabelled)", distill),
            Step(f"+ longer schedule ({final.epochs} epochs)", longer),
            Step(f"+ fine-tuning with quantisation noise ({final.quant_noise_epochs} epochs): the default recipe", final))


def steps_cache_file() -> Path:
    return cache_root() / "pipeline" / STEPS_FILE


def table_lines(doc: dict) -> list[str]:
    """The step table as Markdown lines (used by the bench's ``image_steps.md`` and the evaluate report)."""
    load = doc["load_average"]
    lines = [(f"Measured {doc['measured_at']} on {doc['cpu_count']} CPU cores, {doc['torch_threads']} torch threads "
             f"(load average {load[0]:.1f} at the start, {load[1]:.1f} at the end: other work on the machine "
             f"slows training), {doc['resolution']} px, fusion-head seeds {doc['seeds']}, text extractor "
             f"`{doc.get('text_extractor', 'not recorded')}`, test split. Training "
             "seconds are cold (recorded when the step was first trained and cached). A fresh machine's CI trains "
             "only the last step's recipe: a step's CI seconds are its training seconds minus the previous "
             "step's, plus the cold download of the images it adds. INT8 cost: test accuracy lost by a linear probe "
             "(trained on FP32 features) fed the static INT8 model's image features."), "",
             ("| step | image-only accuracy | added | INT8 cost (points) | intermediate fusion | training s (cold) "
             "| CI s added |"), "|---|---|---|---|---|---|---|"]
    for row in doc["steps"]:
        lines.append(f"| {row['step']} | {row['image_only_mean']:.3f} ± {row['image_only_std']:.3f} | "
                     f"{row['added']:+.3f} | {100 * row['int8_cost']:+.1f} | {row['intermediate_mean']:.3f} ± {row['intermediate_std']:.3f} | "
                     f"{row['train_seconds']:.0f} | {row['ci_seconds_added']:+.0f} |")
    if doc["steps"]:
        first, last = doc["steps"][0], doc["steps"][-1]
        lines += ["", (f"All steps together: {last['image_only_mean'] - first['image_only_mean']:+.3f} image-only, "
                      f"{last['intermediate_mean'] - first['intermediate_mean']:+.3f} intermediate fusion, "
                      f"{sum(r['ci_seconds_added'] for r in doc['steps']):+.0f} s of CI time "
                      f"({doc['artists_fetch_seconds']:.0f} s of it downloading the other artists' images).")]
    if not doc.get("complete", True):
        lines += ["", (f"Incomplete: {len(doc['steps'])} of {len(recipe_steps())} steps were measured "
                      "(the bench was interrupted; run it again to finish, finished steps are cached).")]
    return lines


def rich_table(doc: dict, title: str) -> Table:
    """The step table for a terminal."""
    table = Table(title=title)
    for column in ("step", "image-only", "added", "INT8 cost", "intermediate", "training s (cold)", "CI s added"):
        table.add_column(column)
    for row in doc["steps"]:
        table.add_row(row["step"], f"{row['image_only_mean']:.3f} ± {row['image_only_std']:.3f}", f"{row['added']:+.3f}",
                      f"{100 * row['int8_cost']:+.1f}", f"{row['intermediate_mean']:.3f} ± {row['intermediate_std']:.3f}",
                      f"{row['train_seconds']:.0f}", f"{row['ci_seconds_added']:+.0f}")
    return table


def measured_steps(resolution: int, recipe: ImageRecipe, text_extractor: str) -> tuple[dict | None, str]:
    """The measured step table whose last step is the extractor trained at ``resolution`` by ``recipe``, measured
    with the text extractor cached as ``text_extractor`` (its fusion column depends on it), and ``""``; or
    ``None`` and a sentence for the report saying why there is none."""
    path = steps_cache_file()
    how = f"run `scripts/bench_image_extractor.sh` to measure it (it trains each of the {len(recipe_steps())} steps once)"
    if not path.exists():
        return None, f"Not measured on this machine yet: {how}."
    try:
        doc = json.loads(path.read_text())
        last = doc["steps"][-1]
        same = last["recipe"] == asdict(recipe) and last["resolution"] == resolution
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        return None, f"The measured table {path} is unreadable ({exc}): {how}."
    if not same:
        return None, (f"The measured table {path} ends with another recipe ({last['resolution']} px, "
                      f"`{last['recipe']}`) than this extractor's: {how}.")
    if doc.get("text_extractor") != text_extractor:
        return None, (f"The measured table {path} was measured with another text extractor "
                      f"({doc.get('text_extractor', 'not recorded')}, here {text_extractor}): {how}.")
    return doc, ""


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
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from swarmfuse.extractors.fusion.methods import run_methods
    from swarmfuse.extractors.fusion.report import score
    from swarmfuse.extractors.int8_cost import measure
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
    out.mkdir(parents=True, exist_ok=True)
    for path in (out / STEPS_FILE, steps_cache_file()):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=1) + "\n")
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
