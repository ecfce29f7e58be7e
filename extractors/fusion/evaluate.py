"""Run every fusion method on the pipeline's features for several seeds and write the report."""

from __future__ import annotations

import time
from pathlib import Path

from swarmfuse.extractors.fusion.methods import run_methods
from swarmfuse.extractors.fusion.report import Score, write_report
from swarmfuse.extractors.image.steps import measured_steps
from swarmfuse.extractors.image.train import ProgressCallback
from swarmfuse.extractors.pipeline import PipelineConfig, build_features


def _image_steps(config: PipelineConfig, text_extractor: str) -> tuple[dict | None, str]:
    """The measured step table when its last step is the image extractor evaluated here and it was measured with
    the text extractor ``text_extractor`` (a cache folder name), else why not."""
    image = config.image
    if image.backbone != "resnet50":
        return None, (f"Not applicable: the image extractor here is the pretrained {image.backbone}; the table "
                      "measures the training of the ResNet50 extractor.")
    if image.weights:
        return None, ("Not applicable: the ResNet50 here starts from a user-supplied weight file; the table "
                      "measures training from scratch.")
    return measured_steps(image.resolution, image.recipe, text_extractor)


def regime(config: PipelineConfig) -> str:
    """Who trained the extractors with what: the label-free sites' own, or the reference with the labels."""
    if not config.text.labels and not config.image.recipe.labels:
        return "label-free: each extractor trained on its modality alone, no label read"
    return ("extractors trained centrally with the label holder's labels: a reference the vertical setting forbids "
            "(the sites holding texts and images hold no labels)")


def evaluate_fusion(out_dir: Path, seeds: tuple[int, ...] = (0, 1, 2), config: PipelineConfig = PipelineConfig(),
                    progress: ProgressCallback | None = None) -> dict[str, Score]:
    """Features from the (cached) pipeline, all methods per seed, report into ``out_dir``; ``progress`` hears
    about each step of an image-extractor training."""
    if not seeds:
        raise ValueError("at least one seed is needed")
    start = time.perf_counter()
    result = build_features(config, progress=progress)
    features_seconds = time.perf_counter() - start
    start = time.perf_counter()
    runs = [run_methods(result.features, seed) for seed in seeds]
    context = {"regime": regime(config), "pipeline": result.summary, "features_folder": str(result.folder),
               "features_seconds_this_run": features_seconds, "heads_seconds": time.perf_counter() - start}
    steps, steps_note = _image_steps(config, result.text_extractor)
    return write_report(result.features, runs, out_dir, context, steps, steps_note)
