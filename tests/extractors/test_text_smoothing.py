"""The label-smoothing bench's configurations and table (fast; the bench itself trains text extractors)."""

from __future__ import annotations

from bench_drivers import bench_module

from swarmfuse.extractors.text import FinetuneConfig, TextConfig

smoothing = bench_module("text_finetune")
table_lines, text_config = smoothing.table_lines, smoothing.text_config


def _row(smoothing: float, seed: int, text: float, intermediate: float) -> dict:
    return {"label_smoothing": smoothing, "text_seed": seed, "text_train_seconds": 150.0, "text_only": text,
            "image_only": 0.72, "intermediate": intermediate, "late": 0.82, "margin": intermediate - text, "per_seed": {}}


def test_configurations_differ_from_the_default_only_in_seed_and_smoothing():
    assert text_config(0, FinetuneConfig().label_smoothing) == TextConfig()
    other = text_config(2, 0.0)
    assert (other.seed, other.finetune.label_smoothing) == (2, 0.0)
    assert other.finetune.epochs == FinetuneConfig().epochs and other.lm == TextConfig().lm


def test_table_has_a_row_per_training_and_the_means_per_smoothing():
    doc = {"measured_at": "2026-12-05 14:00 UTC", "cpu_count": 2, "head_seeds": [0, 1, 2],
           "rows": [_row(0.0, 0, 0.78, 0.82), _row(0.0, 1, 0.76, 0.80), _row(0.2, 0, 0.79, 0.85), _row(0.2, 1, 0.79, 0.84)]}
    lines = table_lines(doc)
    assert "| 0.0 | 1 | 0.760 | 0.720 | 0.800 | 0.820 | +4.0 | 150 |" in lines
    assert "| 0.0 | mean | 0.770 | 0.720 | 0.810 | 0.820 | +4.0 |  |" in lines
    assert "| 0.2 | mean | 0.790 | 0.720 | 0.845 | 0.820 | +5.5 |  |" in lines
    assert sum(line.startswith("| 0.") for line in lines) == 6
