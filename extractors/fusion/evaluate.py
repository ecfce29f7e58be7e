"""Run every fusion method on the pipeline's features for several seeds and write the report."""

from __future__ import annotations

import time
from pathlib import Path

from swarmfuse.extractors.fusion.methods import run_methods
from swarmfuse.extractors.fusion.report import Score, write_report
from swarmfuse.extractors.pipeline import PipelineConfig, build_features


def evaluate_fusion(out_dir: Path, seeds: tuple[int, ...] = (0, 1, 2),
                    config: PipelineConfig = PipelineConfig()) -> dict[str, Score]:
    """Features from the (cached) pipeline, all methods per seed, report into ``out_dir``."""
    if not seeds:
        raise ValueError("at least one seed is needed")
    start = time.perf_counter()
    result = build_features(config)
    features_seconds = time.perf_counter() - start
    start = time.perf_counter()
    runs = [run_methods(result.features, seed) for seed in seeds]
    context = {"pipeline": result.summary, "features_folder": str(result.folder),
               "features_seconds_this_run": features_seconds, "heads_seconds": time.perf_counter() - start}
    return write_report(result.features, runs, out_dir, context)
