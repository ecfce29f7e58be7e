"""The image extractor's step table: the cumulative steps, where it is kept, and how the report shows it (fast)."""

from __future__ import annotations

import dataclasses
import itertools
import json

import pytest
from bench_drivers import bench_module
from test_fusion_head import FAST, synthetic

from swarmfuse.extractors.data.cache import CACHE_ENV
from swarmfuse.extractors.fusion import run_methods, write_report
from swarmfuse.extractors.fusion.evaluate import _image_steps
from swarmfuse.extractors.image import ImageRecipe
from swarmfuse.extractors.image.steps import measured_steps, recipe_steps, steps_cache_file
from swarmfuse.extractors.pipeline import ImageConfig, PipelineConfig

TEXT = "text-0123456789abcdef"  # the text extractor's cache folder the table was measured with


def _row(step, accuracy: float, seconds: float, ci: float) -> dict:
    return {"step": step.name, "recipe": dataclasses.asdict(step.recipe), "resolution": 64, "train_seconds": seconds,
            "ci_seconds_added": ci, "image_only_mean": accuracy, "image_only_std": 0.01, "added": 0.0,
            "int8_cost": 0.004, "int8_probe_fp32": accuracy, "text_only_mean": 0.8, "intermediate_mean": accuracy + 0.2, "intermediate_std": 0.02, "per_seed": {}}


def _doc(rows: list[dict], complete: bool = True) -> dict:
    return {"measured_at": "2026-12-05 07:00 UTC", "cpu_count": 2, "torch_threads": 2, "load_average": [0.5, 0.7],
            "resolution": 64, "seeds": [0, 1, 2], "artists_fetch_seconds": 12.0, "text_extractor": TEXT,
            "complete": complete, "steps": rows}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_steps_add_one_thing_each_and_end_at_the_default_recipe():
    steps = recipe_steps()
    base = steps[0].recipe
    assert not (base.artists or base.augment or base.distill)
    assert steps[-1].recipe == ImageRecipe()
    for before, after in itertools.pairwise(steps):
        changed = {f.name for f in dataclasses.fields(ImageRecipe)
                   if getattr(before.recipe, f.name) != getattr(after.recipe, f.name)}
        assert len(changed) == 1, (after.name, changed)


def test_the_measured_table_is_found_only_for_the_extractor_it_ends_with(cache, tmp_path):
    doc, note = measured_steps(64, ImageRecipe(), TEXT)
    assert doc is None and "Not measured on this machine yet" in note and "bench_image_extractor.sh" in note
    steps = recipe_steps()
    measured = _doc([_row(s, 0.5 + 0.05 * i, 100.0 * (i + 1), 100.0) for i, s in enumerate(steps)])
    bench_module("image_extractor")._write(measured, tmp_path / "bench")  # what the bench writes
    assert steps_cache_file().is_relative_to(cache) and json.loads(steps_cache_file().read_text()) == measured
    assert "| + augmentation" in (tmp_path / "bench" / "image_steps.md").read_text()
    assert measured_steps(64, ImageRecipe(), TEXT) == (measured, "")
    for resolution, recipe in ((48, ImageRecipe()), (64, dataclasses.replace(ImageRecipe(), epochs=99))):
        doc, note = measured_steps(resolution, recipe, TEXT)
        assert doc is None and "ends with another recipe" in note
    doc, note = measured_steps(64, ImageRecipe(), "text-fedcba9876543210")  # its fusion column is another's
    assert doc is None and f"another text extractor ({TEXT}, here text-fedcba9876543210)" in note
    for config in (ImageConfig(backbone="efficientnet_lite0"), ImageConfig(weights="/some/resnet50.pth")):
        doc, note = _image_steps(PipelineConfig(image=config), TEXT)
        assert doc is None and note.startswith("Not applicable")


def test_report_shows_the_table_or_says_why_there_is_none(tmp_path):
    fs = synthetic()
    runs = [run_methods(fs, 0, FAST)]
    steps = recipe_steps()
    rows = [_row(steps[0], 0.575, 250.0, 0.0), _row(steps[1], 0.65, 900.0, 662.0)]
    rows[1]["added"] = 0.075
    write_report(fs, runs, tmp_path / "with", {}, _doc(rows, complete=False))
    text = (tmp_path / "with" / "report.md").read_text()
    assert f"| {steps[1].name} | 0.650 ± 0.010 | +0.075 | +0.4 | 0.850 ± 0.020 | 900 | +662 |" in text
    assert "+0.075 image-only" in text and "+662 s of CI time (12 s of it downloading" in text
    assert f"Incomplete: 2 of {len(steps)} steps" in text
    assert json.loads((tmp_path / "with" / "report.json").read_text())["image_steps"]["steps"] == rows

    write_report(fs, runs, tmp_path / "without", {}, None, "Not measured on this machine yet: run it.")
    text = (tmp_path / "without" / "report.md").read_text()
    assert "## Image extractor: what each training step adds\n\nNot measured on this machine yet: run it." in text
    doc = json.loads((tmp_path / "without" / "report.json").read_text())
    assert doc["image_steps"] is None and doc["image_steps_note"].startswith("Not measured")
