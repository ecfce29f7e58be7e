"""``swarmfuse data``: fetch the pinned data sets into the cache and cut data-centre views."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from swarmfuse.extractors.data.artists import fetch_artist_images
from swarmfuse.extractors.data.cache import DataError
from swarmfuse.extractors.data.corpus import fetch_corpus
from swarmfuse.extractors.data.emoji import SPLITS, fetch_emoji, load_manifest
from swarmfuse.extractors.data.partition import PartitionConfig, partition

app = typer.Typer(no_args_is_help=True, help="Fetch the emoji data and the text corpus; partition them across DCs.")
console = Console()


def _fail(exc: Exception) -> None:
    console.print(f"[red]error:[/red] {exc}", highlight=False)
    raise typer.Exit(1)


@app.command()
def fetch(refresh: bool = typer.Option(False, help="Rebuild the cache entries even when they verify.")) -> None:
    """Download the pinned packages (verified digests), build the manifest, splits, other artists' images and
    corpus."""
    try:
        manifest = fetch_emoji(refresh=refresh)
        artists = fetch_artist_images(manifest, refresh=refresh)
        corpus = fetch_corpus(refresh=refresh)
    except DataError as exc:
        _fail(exc)
    table = Table(title="swarmfuse data")
    for column in ("data set", "items", "location"):
        table.add_column(column)
    counts = ", ".join(f"{s} {len(manifest.split(s))}" for s in SPLITS)
    table.add_row("emoji (image+text, 9 groups)", f"{len(manifest.entities)} ({counts})", str(manifest.root))
    drawn = sorted({a.artist for a in artists.images})
    table.add_row(f"emoji images by {', '.join(drawn)}", str(len(artists.images)), str(artists.root))
    table.add_row("20 Newsgroups corpus", f"{corpus.documents} documents", str(corpus.path))
    console.print(table)


@app.command("partition")
def partition_cmd(
    out: Path = typer.Argument(..., help="Folder to write the DC views to (replaced)."),
    seed: int = typer.Option(7, help="Seed of the membership draws."),
    text_coverage: float = typer.Option(0.9, help="Fraction of entities DC2 (texts) holds."),
    image_coverage: float = typer.Option(0.9, help="Fraction of entities DC3 (images) holds."),
    label_coverage: float = typer.Option(0.9, help="Fraction of entities the label holder holds."),
    label_holder: str = typer.Option("dc1", help="dc1, dc2 or dc3."),
) -> None:
    """Write the texts view (DC2), images view (DC3) and labels view (label holder) of one task."""
    try:
        config = PartitionConfig(seed, text_coverage, image_coverage, label_coverage, label_holder)  # type: ignore[arg-type]
        summary = partition(load_manifest(), out, config)
    except (DataError, OSError) as exc:
        _fail(exc)
    console.print(f"texts (dc2) {summary.texts}, images (dc3) {summary.images}, "
                  f"labels ({summary.label_holder}) {summary.labels}, shared by all {summary.shared_by_all} -> {out}")
