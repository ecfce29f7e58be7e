"""``swarmfuse fuse``: fusion of text and image features against its baselines, in each extractor regime.

``evaluate`` scores every fusion method in the asked extractor regimes on the main job's aligned entities
(:mod:`swarmfuse.client.demo.local_regimes`); it builds the sites' own extractors, so it sits here, above the sites.
``report`` and ``train`` need the extractors alone and live in :mod:`swarmfuse.extractors.fusion.cli`.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from swarmfuse.client.demo.job import SPLIT_EPOCHS
from swarmfuse.errors import SwarmfuseError
from swarmfuse.extractors.fusion import cli as extractor_commands
from swarmfuse.extractors.seeds import parse_seeds

if TYPE_CHECKING:
    from swarmfuse.client.demo.local_regimes import RegimeEvaluation

app = typer.Typer(no_args_is_help=True, help="Fuse text and image features; compare with the baselines.")
console = Console()

REGIME_HELP = ("Extractor regimes, comma-separated: a (each feature site's own label-free extractor), b (the same "
               "after --split-epochs epochs of split learning with the label holder), c (the reference trained "
               "centrally with the labels: forbidden in the vertical setting, a yardstick only).")


def _refuse(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(1)


@app.command()
def evaluate(
    regimes: str = typer.Option("a,b", "--regimes", "--regime", help=REGIME_HELP),
    split_epochs: int = typer.Option(SPLIT_EPOCHS, help="Epochs of split learning in regime (b), at least 1."),
    seed: int = typer.Option(0, help="Seed of the sites' extractor training (split learning is seeded as in a round)."),
    head_seeds: str = typer.Option("0,1,2", help="Seeds of the fusion heads (comma-separated); scores are their mean."),
    json_file: Path | None = typer.Option(None, "--json", help="Also write the scores as JSON to this file."),
) -> None:
    """Every fusion method in each asked extractor regime, scored on the same aligned test entities of the main
    job's views (DC1 labels, DC2 texts, DC3 images). Trains (or loads from the cache) the extractors a regime needs."""
    try:
        from swarmfuse.client.demo.local_regimes import check_request, parse_regimes

        asked = parse_regimes(regimes)
        check_request(asked, split_epochs)
        heads = parse_seeds(head_seeds)
    except ValueError as exc:
        raise _refuse(str(exc)) from None
    except ModuleNotFoundError as exc:  # a light install without the ML extras
        raise _refuse(f"'swarmfuse fuse' needs {exc.name}, which is not installed: pip install 'swarmfuse[ml]'") \
            from None
    if json_file is not None and not json_file.parent.is_dir():
        raise _refuse(f"the folder of --json {json_file} does not exist")
    if json_file is not None and json_file.is_dir():
        raise _refuse(f"--json {json_file} is a folder; give a file name")
    from swarmfuse.client.demo.local_regimes import evaluate_regimes, main_job_views

    try:
        with tempfile.TemporaryDirectory(prefix="swarmfuse-evaluate-") as scratch, \
                console.status("extractors (trained once per machine), split learning, fusion heads"):
            views = main_job_views(Path(scratch) / "views")
            evaluation = evaluate_regimes(views, asked, Path(scratch), split_epochs=split_epochs if "b" in asked
                                          else None, seed=seed, head_seeds=heads)
    except (SwarmfuseError, ValueError, OSError) as exc:  # data, manifests, training, bundles, ONNX: each names it
        raise _refuse(str(exc)) from None
    print_evaluation(evaluation, console)
    if json_file is not None:
        json_file.write_text(json.dumps(evaluation.to_json(), indent=1) + "\n")
        console.print(f"scores written to {json_file}", highlight=False)


app.command("report")(extractor_commands.report)
app.command("train")(extractor_commands.train)


def regime_heading(regime: str, evaluation: RegimeEvaluation) -> str:
    if regime == "c":
        return "(c) reference, trained with the labels: FORBIDDEN"
    if regime == "b":
        return f"(b) after {evaluation.split_epochs} split epochs"
    return "(a) label-free site extractors"


def print_evaluation(evaluation: RegimeEvaluation, console: Console) -> None:
    """The methods × regimes table (accuracy / macro-F1), what each regime is and, with (c), the caution."""
    from swarmfuse.client.demo.local_regimes import REFERENCE, REFERENCE_CAUTION
    from swarmfuse.client.demo.report import LABELS
    from swarmfuse.extractors.fusion.methods import METHODS

    n = evaluation.entities
    table = Table(title=f"{n.get('test', 0)} aligned test entities (heads trained on {n.get('train', 0)}, "
                        f"early-stopped on {n.get('val', 0)}); accuracy / macro-F1, mean over head seeds "
                        f"{list(evaluation.head_seeds)}; extractor seed {evaluation.seed}")
    table.add_column("method")
    for regime in evaluation.regimes:
        table.add_column(regime_heading(regime, evaluation), style="yellow" if regime == REFERENCE else None)
    for method in METHODS:
        cells = []
        for scores in evaluation.regimes.values():
            found = scores.methods.get(method)
            cells.append(f"{found['accuracy']:.3f} / {found['macro_f1']:.3f}" if found else "")
        table.add_row(LABELS.get(method, method.replace("_", " ")), *cells)
    console.print(table)
    for regime, scores in evaluation.regimes.items():
        console.print(f"({regime}) {scores.description}", highlight=False)
    if REFERENCE in evaluation.regimes:
        console.print(f"[yellow]caution:[/yellow] {REFERENCE_CAUTION}.", highlight=False)
