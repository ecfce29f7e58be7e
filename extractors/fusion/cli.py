"""The commands of ``swarmfuse fuse`` that need the extractors alone: ``report`` (every fusion method on the
reference pipeline's features, with the full report) and ``train``. ``fuse evaluate``, which scores the extractor
regimes and so builds the sites' own extractors, sits above the sites (``swarmfuse.client.demo.fuse_cli``), which
registers these two beside it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from swarmfuse.extractors.data.cache import DataError
from swarmfuse.extractors.seeds import parse_seeds

console = Console()


def _seeds(text: str) -> tuple[int, ...]:
    try:
        return parse_seeds(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def report(
    out: Path = typer.Argument(..., help="Folder for report.md/json, methods.png, confusion matrix, fusion head."),
    seeds: str = typer.Option("0,1,2", help="Seeds of the fusion heads (comma-separated)."),
    weights: Path | None = typer.Option(None, help="A standard ResNet50 weight file to start the image extractor from."),
    image_resolution: int | None = typer.Option(
        None, help="Image side length in pixels of the image extractor (default: the pipeline's)."),
    image_epochs: int | None = typer.Option(None, help="Epochs of image-extractor training (default: the recipe's)."),
    image_backbone: str = typer.Option(
        "resnet50", help="resnet50 (trained here, or from --weights) or efficientnet_lite0 (pretrained, frozen)."
    ),
    label_free: bool = typer.Option(
        False, "--label-free", help="Extractors trained without labels, as sites that hold none train them (the text "
        "extractor: its language model alone; ResNet50: distillation alone). Without it: trained with the labels, a "
        "reference the vertical setting forbids."),
) -> None:
    """The reference pipeline's full report (confusion matrix, chart, margins, the image extractor's steps): train or
    load the cached extractors on the whole emoji data, extract features with ONNX Runtime, score every method. Its
    extractors read the labels unless --label-free: see `fuse evaluate` for the regimes the vertical setting allows."""
    seed_list = _seeds(seeds)
    if weights is not None and not weights.is_file():
        console.print(f"[red]error:[/red] weight file {weights} does not exist", highlight=False)
        raise typer.Exit(1)
    # Imported here so that `swarmfuse --help` does not pay for importing torch.
    try:
        from swarmfuse.extractors.fusion.evaluate import evaluate_fusion
        from swarmfuse.extractors.image.progress import columns, training_bar
        from swarmfuse.extractors.image.train import ImageRecipe
        from swarmfuse.extractors.onnx.export import OnnxError
        from swarmfuse.extractors.pipeline import ImageConfig, PipelineConfig
        from swarmfuse.extractors.text import TextConfig
    except ModuleNotFoundError as exc:  # a light install without the ML extras
        typer.echo(f"error: 'swarmfuse fuse' needs {exc.name}, which is not installed: pip install 'swarmfuse[ml]'",
                   err=True)
        raise typer.Exit(1) from None

    try:
        recipe = ImageRecipe(labels=not label_free)
        recipe = recipe if image_epochs is None else replace(recipe, epochs=image_epochs)
        image = ImageConfig(recipe=recipe, weights=str(weights.resolve()) if weights else None, backbone=image_backbone)
        image = image if image_resolution is None else replace(image, resolution=image_resolution)
        config = PipelineConfig(text=TextConfig(labels=not label_free), image=image)
        with Progress(*columns(), console=console) as progress:
            task = progress.add_task("extractors (trained once per machine), features, fusion heads", total=None)
            scores = evaluate_fusion(out, seed_list, config, progress=training_bar(progress))
            progress.update(task, total=1, completed=1)
    except (DataError, OnnxError, ValueError, OSError) as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    from swarmfuse.extractors.fusion.evaluate import regime

    table = Table(title=f"test split, mean ± std over seeds {list(seed_list)}; {regime(config)}")
    for column in ("method", "accuracy", "macro-F1"):
        table.add_column(column)
    for method, s in scores.items():
        table.add_row(method, f"{s.accuracy_mean:.3f} ± {s.accuracy_std:.3f}", f"{s.f1_mean:.3f} ± {s.f1_std:.3f}")
    console.print(table)
    _print_steps(out)
    console.print(f"report written to {out}")


def train() -> None:
    """Train (or load from the cache) the default extractors, extract every entity's features and export the ONNX
    bundles: what the main job, `fuse report`, `fuse evaluate --regime c` and the tests use. A new machine trains them once."""
    import tempfile

    try:
        from swarmfuse.extractors.bundle import BundleError, export_bundles
        from swarmfuse.extractors.image.progress import columns, training_bar
        from swarmfuse.extractors.onnx.export import OnnxError
        from swarmfuse.extractors.pipeline import PipelineConfig, build_features
    except ModuleNotFoundError as exc:
        typer.echo(f"error: 'swarmfuse fuse' needs {exc.name}, which is not installed: pip install 'swarmfuse[ml]'",
                   err=True)
        raise typer.Exit(1) from None
    config = PipelineConfig()
    try:
        with Progress(*columns(), console=console) as progress:
            task = progress.add_task("extractors (trained once per machine), features, bundles", total=None)
            result = build_features(config, progress=training_bar(progress))
            with tempfile.TemporaryDirectory(prefix="swarmfuse-bundles-") as scratch:
                export_bundles(Path(scratch), config)
            progress.update(task, total=1, completed=1)
    except (DataError, OnnxError, BundleError, ValueError, OSError) as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    console.print(f"extractors and features cached in {result.folder.parent}", highlight=False)


def _print_steps(out: Path) -> None:
    """The image extractor's step table from the report just written, or why there is none."""
    import json

    from swarmfuse.extractors.image.steps import rich_table

    doc = json.loads((out / "report.json").read_text())
    steps = doc.get("image_steps")
    if steps is None:
        console.print(f"image extractor training steps: {doc.get('image_steps_note') or 'not measured'}", highlight=False)
        return
    console.print(rich_table(steps, "ResNet50 training steps (measured by scripts/bench_image_extractor.sh)"))
