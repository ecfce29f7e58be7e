"""``swarmfuse site serve|status|policy|data add|extractor install|extractor train|agreement propose|confirm``
and ``swarmfuse round open|status|list|abort``."""

from __future__ import annotations

import json
import logging
import signal
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from swarmfuse.errors import SwarmfuseError
from swarmfuse.network.cli_common import HomeOption, clean_errors

if TYPE_CHECKING:
    from swarmfuse.client.site.manifest import Manifest

app = typer.Typer(no_args_is_help=True, help="A data centre's site agent: data, extractors, the agent service.")
data_app = typer.Typer(no_args_is_help=True, help="The site's data (manifests) and their on-chain summaries.")
extractor_app = typer.Typer(no_args_is_help=True, help="The site's ONNX feature extractors.")
app.add_typer(data_app, name="data")
app.add_typer(extractor_app, name="extractor")
agreement_app = typer.Typer(no_args_is_help=True, help="The task's terms: proposed and confirmed by every founder.")
app.add_typer(agreement_app, name="agreement")
rounds = typer.Typer(no_args_is_help=True, help="Fusion rounds of a task, driven by hand.")
console = Console()
errors = Console(stderr=True)

OrgOption = typer.Option(..., "--org", help="The org whose site this is (e.g. DC2).")
TaskOption = typer.Option(..., "--task", help="The task (channel) the site works on.")
BundleOption = typer.Option(None, "--bundle", help="A site bundle ('swarmfuse network bundle'): the site runs from "
                            "it, with --home holding only the site's own folder.")
MaybeOrgOption = typer.Option(None, "--org", help="The org whose site this is (e.g. DC2); with --bundle, the bundle's.")
MaybeTaskOption = typer.Option(None, "--task", help="The task (channel) the site works on; with --bundle, the bundle's.")
StoreOption = typer.Option(None, "--store", help="SQLAlchemy URL of the site's store (default: a SQLite file).")


@app.command()
def serve(org: str | None = MaybeOrgOption, task: str | None = MaybeTaskOption, store: str | None = StoreOption,
          home: Path = HomeOption, bundle: Path | None = BundleOption,
          address: str | None = typer.Option(None, "--address", help="IPv4 address the agent binds to and other "
                                             "sites reach; its certificate names it (default: the network's).")) -> None:
    """Run the site agent: its HTTPS service (mutual TLS) and its work on every round it takes part in."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, _frame: stop.set())
    from swarmfuse.client.site.wiring import open_site, serve_site
    from swarmfuse.network.bundle import describe

    with clean_errors(), open_site(home, org, task, store, address, bundle) as parts:
        site = parts.site
        origin = f", from the {describe(site.bundle)}" if site.bundle else ""
        console.print(f"site {site.org_name} of task {site.task} serving on {site.url} (store: {parts.store.url})"
                      f"{origin}", highlight=False)
        serve_site(parts, stop)


@app.command()
def status(org: str | None = MaybeOrgOption, task: str | None = MaybeTaskOption, store: str | None = StoreOption,
           home: Path = HomeOption, bundle: Path | None = BundleOption,
           as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """What the site holds (datasets) and is doing (rounds and their steps), from its store."""
    from swarmfuse.client.site.wiring import make_agent, open_site

    with clean_errors(), open_site(home, org, task, store, bundle=bundle) as parts:
        state = make_agent(parts).status()
        org, task = parts.site.org_name, parts.site.task
    if as_json:
        typer.echo(json.dumps(state, indent=2))
        return
    table = Table(title=f"site {org} ({state['mspid']}), task {task}")
    for column in ("modality", "entities", "feature dim", "fingerprint"):
        table.add_column(column)
    for d in state["datasets"]:
        table.add_row(d["modality"], str(d["entities"]), str(d["feature_dim"]), d["fingerprint"][:16])
    console.print(table)
    steps = Table(title="round steps")
    for column in ("round", "step", "status", "detail"):
        steps.add_column(column)
    for a in state["actions"]:
        steps.add_row(a["round"], a["action"], a["status"], a["detail"] or "")
    console.print(steps)


def _listed(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


@app.command()
def policy(org: str = OrgOption, task: str = TaskOption, home: Path = HomeOption,
           leaders: str | None = typer.Option(None, "--leaders", help="Orgs this site lets lead, e.g. DC1,DC2."),
           any_leader: bool = typer.Option(False, "--any-leader", help="Let any participant lead."),
           offer: str | None = typer.Option(None, "--offer", help="Modalities offered, e.g. text,label."),
           any_modality: bool = typer.Option(False, "--any-modality", help="Offer every modality the site holds."),
           max_rows: int | None = typer.Option(None, "--max-rows", min=1, help="Most aligned entities sent a round."),
           no_row_limit: bool = typer.Option(False, "--no-row-limit", help="Send shards of any size."),
           max_split_epochs: int | None = typer.Option(None, "--max-split-epochs", min=0, help=(
               "Most split-learning epochs a round may ask of the site (0: no split learning; for a label holder, "
               "each epoch's gradients carry label information).")),
           any_split_epochs: bool = typer.Option(False, "--any-split-epochs",
                                                 help="Take part in any number of split-learning epochs.")) -> None:
    """Show or change which rounds the site joins: its agent joins a round only when the policy allows it, and
    otherwise votes to abort it, saying why."""
    from swarmfuse.client.site.policy import PolicyError, load_policy, save_policy
    from swarmfuse.client.site.site import Site

    pairs = (("--leaders", leaders, "--any-leader", any_leader), ("--offer", offer, "--any-modality", any_modality),
             ("--max-rows", max_rows, "--no-row-limit", no_row_limit),
             ("--max-split-epochs", max_split_epochs, "--any-split-epochs", any_split_epochs))
    for limit, given, reset, resetting in pairs:
        if given is not None and resetting:
            raise typer.BadParameter(f"give {limit} or {reset}, not both")
    changes: dict[str, object] = {}
    if leaders is not None or any_leader:
        changes["leaders"] = None if any_leader else [f"{name}MSP" for name in _listed(leaders or "")]
    if offer is not None or any_modality:
        changes["modalities"] = None if any_modality else _listed(offer or "")
    if max_rows is not None or no_row_limit:
        changes["max_rows"] = None if no_row_limit else max_rows
    if max_split_epochs is not None or any_split_epochs:
        changes["max_split_epochs"] = None if any_split_epochs else max_split_epochs
    with clean_errors():
        site = Site(home, org, task)
        current = load_policy(site.folder)
        if changes:
            try:
                current = current.model_validate({**current.model_dump(), **changes})
            except ValueError as exc:
                raise PolicyError(f"not a site policy: {exc}") from exc
            save_policy(site.folder, current)
    led = ", ".join(current.leaders) if current.leaders is not None else "any participant"
    offered = ", ".join(current.modalities) if current.modalities is not None else "every modality it holds"
    rows = f"at most {current.max_rows} aligned entities a round" if current.max_rows else "shards of any size"
    split = ("any number of split-learning epochs" if current.max_split_epochs is None else
             f"at most {current.max_split_epochs} split-learning epochs" if current.max_split_epochs else
             "no split learning")
    console.print(f"site {org} joins rounds led by {led} (or by itself) with {split}, offering {offered}, and sends "
                  f"{rows}", highlight=False)


@data_app.command("add")
def data_add(manifest: Path = typer.Argument(..., help="CSV or JSON Lines: entity_id plus text | image | label."),
             modality: str = typer.Option(..., "--modality", help="text, image or label."),
             org: str | None = MaybeOrgOption, task: str | None = MaybeTaskOption,
             store: str | None = StoreOption, home: Path = HomeOption, bundle: Path | None = BundleOption) -> None:
    """Check a manifest (every bad row named) and publish its summary on-chain (never the data)."""
    from swarmfuse.client.site.wiring import add_data, open_site

    with clean_errors(), open_site(home, org, task, store, bundle=bundle) as parts:
        summary = add_data(parts, manifest, modality)
    console.print(f"published {modality} summary v{summary.version}: {summary.entity_count} entities, "
                  f"fingerprint {summary.manifest_sha256[:16]}", highlight=False)


@extractor_app.command("install")
def extractor_install(bundle: Path = typer.Argument(..., help="An extractor bundle folder (bundle.json + .onnx)."),
                      modality: str = typer.Option(..., "--modality", help="text or image."),
                      org: str = OrgOption, task: str = TaskOption, home: Path = HomeOption) -> None:
    """Install an ONNX extractor bundle into the site."""
    from swarmfuse.client.site.site import Site
    from swarmfuse.client.site.wiring import install_extractor

    with clean_errors():
        target = install_extractor(Site(home, org, task), modality, bundle)
    console.print(f"installed the {modality} extractor in {target}")


@extractor_app.command("train")
def extractor_train(manifest: Path = typer.Argument(..., help="The site's manifest: texts (entity_id, text) or "
                                                              "images (entity_id, image)."),
                    modality: str = typer.Option("text", "--modality", help="text or image."),
                    seed: int = typer.Option(0, "--seed", help="Seed of the training."),
                    epochs: int | None = typer.Option(None, "--epochs", min=1,
                                                      help="Image extractors: training epochs (default 10)."),
                    weights: Path | None = typer.Option(None, "--weights", help="Image extractors: a standard "
                                                        "ResNet50 weight file to start from (default: random)."),
                    org: str = OrgOption, task: str = TaskOption, home: Path = HomeOption) -> None:
    """Train the site's own extractor on its manifest and public data only (no label is read), and install it.
    Cached: the same manifest, seed, weights and training code give the same bundle without training again."""
    from swarmfuse.client.site.manifest import load_manifest
    from swarmfuse.client.site.site import Site, SiteError
    from swarmfuse.client.site.training import label_free_text_bundle
    from swarmfuse.client.site.wiring import install_extractor

    with clean_errors():
        if modality not in ("text", "image"):
            raise SiteError(f"a site trains text or image extractors, not {modality!r}")
        if modality == "text" and (epochs is not None or weights is not None):
            raise SiteError("--epochs and --weights apply to image extractors; the text recipe is fixed")
        site = Site(home, org, task)
        checked = load_manifest(manifest, modality)  # type: ignore[arg-type]
        if modality == "text":
            with console.status(f"training the label-free text extractor on {len(checked)} texts and the public "
                                "corpus"):
                bundle = label_free_text_bundle(checked, seed)
        else:
            bundle = _train_images(checked, seed, epochs, weights)
        target = install_extractor(site, modality, bundle)
    console.print(f"installed the {modality} extractor trained on {len(checked)} site {modality}s (no labels) in "
                  f"{target}", highlight=False)


def _train_images(checked: Manifest, seed: int, epochs: int | None, weights: Path | None) -> Path:
    """The label-free image bundle, with a progress bar over the training steps."""
    from dataclasses import replace

    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from swarmfuse.client.site.training import label_free_image_bundle, site_image_recipe
    from swarmfuse.extractors.image.train import TrainProgress

    recipe = site_image_recipe() if epochs is None else replace(site_image_recipe(), epochs=epochs)
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[loss]}"), TimeRemainingColumn())
    with Progress(*columns, console=console) as bar:
        task_id = bar.add_task(f"label-free ResNet50 on {len(checked)} images", total=None, loss="")

        def advance(step: TrainProgress) -> None:
            bar.update(task_id, total=step.epochs * step.steps, completed=(step.epoch - 1) * step.steps + step.step,
                       loss=f"epoch {step.epoch}/{step.epochs}, loss {step.loss:.3f}")

        return label_free_image_bundle(checked, seed, recipe, weights=weights, progress=advance)


# --- the agreement ------------------------------------------------------------------------------


@agreement_app.command("propose")
def agreement_propose(terms: Path = typer.Argument(..., help="The terms as JSON (the Agreement:Propose spec: model, "
                                                             "extractors, purpose, exchange kinds, retention, reward, "
                                                             "optional privacy, legal text SHA-256; a privacy "
                                                             "budget's sigma is computed when left out)."),
                      org: str = OrgOption, task: str = TaskOption, home: Path = HomeOption) -> None:
    """A founder proposes terms (or an amendment); they are in force once every founder confirmed their hash."""
    from swarmfuse.chaincode.contracts.records import AgreementSpec
    from swarmfuse.client.site.wiring import open_site

    try:
        document = json.loads(terms.read_bytes())
        privacy = document.get("privacy") if isinstance(document, dict) else None
        if isinstance(privacy, dict) and "budget_sigma" not in privacy:  # the budget's sigma from its epsilon
            from swarmfuse.client.privacy.accountant import noise_multiplier

            privacy["budget_sigma"] = noise_multiplier(float(privacy["budget_epsilon"]), float(privacy["delta"]))
        spec = AgreementSpec.model_validate(document)
    except (OSError, ValueError, KeyError, SwarmfuseError) as exc:
        errors.print(f"[red]error:[/red] {terms}: {exc}", highlight=False)
        raise typer.Exit(1) from exc
    with clean_errors(), open_site(home, org, task) as parts:
        proposal = parts.ledger.propose_agreement(spec.model_dump(mode="json"))
    console.print(f"proposed {proposal.agreement_sha256}; awaiting {', '.join(proposal.awaiting) or 'nobody'}",
                  highlight=False)


@agreement_app.command("confirm")
def agreement_confirm(agreement_sha256: str = typer.Argument(..., help="The proposed terms' SHA-256."),
                      org: str = OrgOption, task: str = TaskOption, home: Path = HomeOption) -> None:
    """A founder confirms proposed terms by their hash (read them first: ``swarmfuse audit agreement``)."""
    from swarmfuse.client.site.wiring import open_site

    with clean_errors(), open_site(home, org, task) as parts:
        proposal = parts.ledger.confirm_agreement(agreement_sha256)
    console.print(f"{agreement_sha256}: {proposal.status.value}; awaiting {', '.join(proposal.awaiting) or 'nobody'}",
                  highlight=False)


# --- rounds -------------------------------------------------------------------------------------


def _roles(text: str) -> dict[str, list[str]]:
    roles: dict[str, list[str]] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        org, sep, modality = part.partition("=")
        if not sep or not org or not modality:
            raise typer.BadParameter(f"roles are ORG=MODALITY pairs separated by commas, got {part!r}")
        roles.setdefault(f"{org}MSP", []).append(modality)
    return roles


@rounds.command("open")
def round_open(round_id: str = typer.Argument(..., help="A new round ID."),
               roles: str = typer.Option(..., "--roles", help="ORG=MODALITY,... e.g. DC1=label,DC2=text,DC3=image."),
               label_holder: str = typer.Option(..., "--label-holder", help="The org holding the labels."),
               hours: float = typer.Option(2.0, "--hours", help="Deadline, hours from now."),
               split_epochs: int = typer.Option(0, "--split-epochs", min=0, max=50,
                                                help="Epochs of split learning of the feature sites' extractors "
                                                     "before the fusion (each sends features and gets gradients "
                                                     "back from the leader, recorded on-chain)."),
               org: str | None = MaybeOrgOption, task: str | None = MaybeTaskOption, home: Path = HomeOption,
               bundle: Path | None = BundleOption) -> None:
    """Open a round among the orgs named in --roles (the opener must be one of them), under the agreement in
    force."""
    from swarmfuse.client.site.wiring import open_site

    with clean_errors(), open_site(home, org, task, bundle=bundle) as parts:
        spec = parts.ledger.round_spec(_roles(roles), f"{label_holder}MSP", datetime.now(UTC) + timedelta(hours=hours),
                                       split_epochs)
        opened = parts.ledger.open_round(round_id, spec)
    console.print(f"round {round_id} open; leader {opened.leader}", highlight=False)


@rounds.command("status")
def round_status(round_id: str, org: str | None = MaybeOrgOption, task: str | None = MaybeTaskOption,
                 home: Path = HomeOption, bundle: Path | None = BundleOption) -> None:
    """One round's on-chain record, with its exchanges."""
    from swarmfuse.client.site.wiring import open_site

    with clean_errors(), open_site(home, org, task, bundle=bundle) as parts:
        rnd = parts.ledger.round(round_id)
        exchanges = parts.ledger.exchanges(round_id)
    console.print(f"round {round_id}: {rnd.state.value}, leader {rnd.leader}, model {rnd.model_sha256}",
                  highlight=False)
    table = Table(title="exchanges")
    for column in ("sender", "receiver", "kind", "bytes", "entities", "sha256"):
        table.add_column(column)
    for e in exchanges:
        table.add_row(e.sender, e.receiver, e.kind, str(e.bytes), str(e.entity_count), e.sha256[:16])
    console.print(table)


@rounds.command("list")
def round_list(org: str | None = MaybeOrgOption, task: str | None = MaybeTaskOption, home: Path = HomeOption,
               bundle: Path | None = BundleOption) -> None:
    """Every round of the task."""
    from swarmfuse.client.site.wiring import open_site

    with clean_errors(), open_site(home, org, task, bundle=bundle) as parts:
        found = parts.ledger.rounds()
        task = parts.site.task
    table = Table(title=f"rounds of {task}")
    for column in ("round", "state", "leader", "participants", "model"):
        table.add_column(column)
    for r in found:
        table.add_row(r.round_id, r.state.value, r.leader, ", ".join(r.participants), (r.model_sha256 or "")[:16])
    console.print(table)


@rounds.command("abort")
def round_abort(round_id: str, reason: str = typer.Option(..., "--reason"), org: str | None = MaybeOrgOption,
                task: str | None = MaybeTaskOption, home: Path = HomeOption,
                bundle: Path | None = BundleOption) -> None:
    """Vote to abort a round (a majority of its active participants aborts it)."""
    from swarmfuse.client.site.wiring import open_site

    with clean_errors(), open_site(home, org, task, bundle=bundle) as parts:
        rnd = parts.ledger.abort(round_id, reason)
    console.print(f"round {round_id}: {rnd.state.value} (abort votes: {', '.join(rnd.abort_votes)})",
                  highlight=False)


def predict_command(round_id: str = typer.Argument(..., help="The round whose fused model scores the entities."),
                    entities: Path = typer.Argument(..., help="A file of entity IDs, one per line."),
                    out: Path | None = typer.Option(None, "--out", help="Write the predictions as CSV here."),
                    org: str = OrgOption, task: str = TaskOption, home: Path = HomeOption) -> None:
    """Score entities with a round's fused model: each site whose features it takes extracts them locally."""
    import csv

    from swarmfuse.client.site.predict import predict
    from swarmfuse.client.site.wiring import make_agent, open_site

    ids = [line.strip() for line in entities.read_text().splitlines() if line.strip()] if entities.exists() else []
    if not ids:
        errors.print(f"[red]error:[/red] {entities} holds no entity IDs (one per line)", highlight=False)
        raise typer.Exit(1)
    with clean_errors(), open_site(home, org, task) as parts:
        rows = predict(make_agent(parts), round_id, ids)
    if out is not None:
        with out.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["entity_id", "class", "probability"])
            writer.writeheader()
            writer.writerows(rows)
    table = Table(title=f"predictions of round {round_id}'s model")
    for column in ("entity", "class", "probability"):
        table.add_column(column)
    for row in rows[:50]:
        table.add_row(row["entity_id"], row["class"], f"{row['probability']:.3f}")
    console.print(table)
