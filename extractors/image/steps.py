"""The ResNet50 training recipe's cumulative steps and their measured table, as ``fuse report`` shows it.

The steps go from the from-scratch baseline to the default :class:`ImageRecipe`, one change each.
``scripts/bench_image_extractor.sh`` (``scripts/bench/image_extractor/``) trains every step, measures what each
adds and writes the table to ``<cache>/pipeline/image_steps.json``; this module finds that table for the
extractor a report evaluates and renders it (Markdown, terminal).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from rich.table import Table

from swarmfuse.extractors.data import cache_root
from swarmfuse.extractors.image.train import ImageRecipe

STEPS_FILE = "image_steps.json"


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
