"""The main job on one machine: three data centres run one MDFF-SL fusion round over a local network.

DC1 holds the labels, DC2 the texts, DC3 the images (the emoji views of ``swarmfuse data partition``,
written as site manifests). The read-only Auditor org is on the network and in the task (it runs no site
agent), so the job can be audited from the ledger with ``swarmfuse audit``. Steps, each timed: network up
(default engine), task created, each feature site's extractor trained on its own data without labels (as
``swarmfuse site extractor train`` does; cached) and installed, data checked and summarised on-chain (each site
registering), terms agreed by the three founders, one agent process per site started, a round with split learning
of the extractors opened and followed to ``closed``; then a report (HTML, JSON, PNG) of every fusion method in
each extractor regime (:mod:`swarmfuse.client.demo.regimes`) and, unless asked to keep them, agents and network
stopped. ``--extractors reference`` runs the round on the extractors trained centrally with DC1's labels instead
(a reference the vertical setting forbids); ``--reference`` adds that regime to the report.

``python -m swarmfuse.client.demo.job OUT --home H [--engine E] [--port-base P] [--split-epochs N]
[--extractors site|reference] [--reference] [--seed S] [--image-backbone B] [--keep-running]``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

from swarmfuse.client.demo.regimes import RegimeScores
from swarmfuse.client.ledger import DEFAULT_MODEL_SPEC_SHA256, TaskLedger
from swarmfuse.errors import SwarmfuseError
from swarmfuse.wait import wait_until

logger = logging.getLogger(__name__)
console = Console(stderr=True)

ORGS = {"DC1": "label", "DC2": "text", "DC3": "image"}
MANIFESTS = {"DC1": "dc1/labels.jsonl", "DC2": "dc2/texts.jsonl", "DC3": "dc3/images.jsonl"}
EXTRACTORS = ("site", "reference")
SPLIT_EPOCHS = 8


class JobFailed(SwarmfuseError, RuntimeError):
    """A step of the job failed; the message names it (and the agent logs to read)."""


@dataclass(frozen=True)
class JobConfig:
    out: Path
    home: Path
    task: str = "emoji"
    engine: str = "auto"
    port_base: int = 27000
    image_backbone: str = "resnet50"
    coverage: float = 0.9
    round_id: str = "round-1"
    round_timeout_s: float = 1800.0
    keep_running: bool = False
    extractors: str = "site"  # "site": each feature site's own label-free extractor; "reference": trained with labels
    split_epochs: int = SPLIT_EPOCHS  # of the round (site extractors only)
    reference: bool = False  # also score regime (c), the reference extractors (trained once per machine)
    seed: int = 0  # of the sites' extractor training and of every fusion head (the agreement's reward seed)

    def __post_init__(self) -> None:
        if self.extractors not in EXTRACTORS:
            raise JobFailed(f"extractors must be one of {', '.join(EXTRACTORS)}, not {self.extractors!r}")
        if not 0 <= self.split_epochs <= 50:
            raise JobFailed(f"split epochs must be between 0 and 50, not {self.split_epochs}")
        if self.seed < 0:
            raise JobFailed(f"the seed must be 0 or more, not {self.seed}")
        if self.extractors == "site" and self.image_backbone != "resnet50":
            raise JobFailed(f"a site trains ResNet50 image extractors; the {self.image_backbone} backbone is one of the "
                            "reference extractors' (--extractors reference)")

    @property
    def round_split_epochs(self) -> int:
        """The round's split epochs: split learning fine-tunes the sites' own extractors, not the reference."""
        return self.split_epochs if self.extractors == "site" else 0

    @property
    def round_regime(self) -> str:
        """The regime (:data:`~swarmfuse.client.demo.regimes.REGIMES`) the round's model is trained in."""
        if self.extractors == "reference":
            return "c"
        return "b" if self.split_epochs else "a"


@dataclass
class JobReport:
    engine: str = ""
    stages: dict[str, float] = field(default_factory=dict)
    round: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    contribution: dict[str, Any] = field(default_factory=dict)  # the round's table, values and units (Rounds:*)
    credits: dict[str, int] = field(default_factory=dict)  # units per participant, credited when the round closed
    exchanges: list[dict[str, Any]] = field(default_factory=list)
    on_chain: dict[str, int] = field(default_factory=dict)
    off_chain_bytes: int = 0
    regimes: dict[str, RegimeScores] = field(default_factory=dict)  # every method, per extractor regime
    round_regime: str = ""  # the regime of the round's model
    baseline_entities: dict[str, int] = field(default_factory=dict)  # per split: the aligned entities scored
    backbone: str = ""
    agent_logs: dict[str, str] = field(default_factory=dict)
    ledger_time: dict[str, dict[str, float]] = field(default_factory=dict)  # per site: busy_s, ledger_s

    @property
    def baselines(self) -> dict[str, dict[str, float]]:
        """Every method's scores in the round's regime (the round's model is its intermediate head)."""
        found = self.regimes.get(self.round_regime)
        return found.methods if found is not None else {}

    @property
    def ledger_share(self) -> float:
        """The largest share of the round's wall time any site spent waiting for the ledger."""
        wall = self.stages.get("fusion round") or 0.0
        return max((t["ledger_s"] / wall for t in self.ledger_time.values()), default=0.0) if wall else 0.0


@contextmanager
def _stage(report: JobReport, progress: Progress, name: str) -> Iterator[None]:
    task = progress.add_task(name, total=None)
    start = time.perf_counter()
    try:
        yield
    finally:
        report.stages[name] = round(time.perf_counter() - start, 2)
        progress.update(task, completed=1, total=1, description=f"{name} ({report.stages[name]:.1f} s)")


def _wait(condition: Callable[[], bool], timeout: float, what: str, poll: float = 1.0) -> None:
    if not wait_until(condition, timeout, poll):
        raise JobFailed(f"{what} did not happen within {timeout:.0f} s")


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def run_job(config: JobConfig) -> JobReport:
    """Run the whole job; the report is written to ``config.out`` too."""
    from swarmfuse.client.site.site import Site
    from swarmfuse.client.site.wiring import add_data, open_site
    from swarmfuse.extractors.data import PartitionConfig, fetch_emoji, partition
    from swarmfuse.extractors.image.progress import columns
    from swarmfuse.network import tasks
    from swarmfuse.network.control import Network
    from swarmfuse.network.topology import AUDITOR, Topology

    report = JobReport(backbone=config.image_backbone, round_regime=config.round_regime)
    config.out.mkdir(parents=True, exist_ok=True)
    network = Network(config.home)
    agents: dict[str, subprocess.Popen[bytes]] = {}
    progress = Progress(*columns(), console=console)
    try:
        with progress:
            with _stage(report, progress, "network up"):
                if network.state() is None:
                    network.up(Topology(n_orgs=len(ORGS), auditor=True, port_base=config.port_base), config.engine)
                else:
                    network.up()
                report.engine = network.require_state().engine
            with _stage(report, progress, "task create"):
                if config.task not in network.require_state().tasks:
                    tasks.create(network, config.task, ",".join([*ORGS, AUDITOR]))
            with _stage(report, progress, "data views"):
                views = config.out / "views"
                partition(fetch_emoji(), views, PartitionConfig(text_coverage=config.coverage,
                                                                image_coverage=config.coverage,
                                                                label_coverage=config.coverage))
            stage = ("extractors: each site trains its own (no labels), or loads it from the cache"
                     if config.extractors == "site" else "extractors: the reference, trained with DC1's labels")
            with _stage(report, progress, stage):
                install_extractors(network.home, config, views, progress)
            with _stage(report, progress, "data checked and summarised on-chain"):
                for org, modality in ORGS.items():
                    with open_site(network.home, org, config.task) as parts:
                        if parts.store.latest_dataset(modality) is None:
                            add_data(parts, views / MANIFESTS[org], modality)
            with _stage(report, progress, "terms agreed"):
                agree_terms(network.home, config.task, terms_for(config))
            with _stage(report, progress, "site agents started"):
                for org in ORGS:
                    agents[org] = start_agent(network.home, org, config.task)
                ports = {org: Site(network.home, org, config.task).port for org in ORGS}
                _wait(lambda: all(_port_open(p) for p in ports.values()), 120, "the site agents' start")
            with _stage(report, progress, "fusion round"), open_site(network.home, "DC1", config.task) as parts:
                rounds = {r.round_id for r in parts.ledger.rounds()}
                if config.round_id not in rounds:
                    open_round(parts.ledger, config.round_id, config.round_split_epochs)

                def closed() -> bool:
                    for org, agent in agents.items():
                        if agent.poll() is not None:
                            raise JobFailed(f"the {org} agent exited ({agent.returncode}); see "
                                            f"{agent_log(network.home, org)}")
                    state = parts.ledger.round(config.round_id).state
                    if state == "aborted":
                        raise JobFailed(f"round {config.round_id} was aborted")
                    return state == "closed"

                _wait(closed, config.round_timeout_s, f"round {config.round_id} closing", poll=2.0)
            with _stage(report, progress, "report: every method in each extractor regime"):
                _collect(report, network, config)
                _score_regimes(report, network.home, config, views, progress)
                from swarmfuse.client.demo.report import write_report

                write_report(report, config.out)
    finally:
        for org, agent in agents.items():
            report.agent_logs[org] = str(agent_log(network.home, org))
            if not config.keep_running:
                stop_agent(agent)
        if not config.keep_running and network.state() is not None and network.running():
            network.down()
    return report


def agent_log(home: Path, org: str) -> Path:
    """Where the agent process of ``org`` writes its log."""
    return home / "logs" / f"site-{org}.log"


def start_agent(home: Path, org: str, task: str) -> subprocess.Popen[bytes]:
    """``swarmfuse site serve`` for ``org`` as a process of its own session, logging to :func:`agent_log`."""
    log = agent_log(home, org)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "swarmfuse", "site", "serve", "--org", org, "--task", task, "--home", str(home)],
            stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )


def stop_agent(agent: subprocess.Popen[bytes]) -> None:
    """SIGTERM the agent's process group, SIGKILL after 20 s."""
    if agent.poll() is None:
        os.killpg(agent.pid, signal.SIGTERM)
        try:
            agent.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(agent.pid, signal.SIGKILL)
            agent.wait()


TERMS = {
    "model_spec_sha256": DEFAULT_MODEL_SPEC_SHA256,
    "fusion_method": "intermediate",
    "extractors": {"text": "site's own label-free AWD-LSTM, split-learning fine-tuned",
                   "image": "site's own label-free ResNet50, split-learning fine-tuned"},
    "purpose": "demo: emoji group classification by MDFF-SL intermediate fusion",
    "exchange_kinds": ["features", "gradients", "labels"],
    "retention_days": 30,
    "reward": {"method": "shapley", "metric": "test_accuracy", "units_per_round": 100,
               "label_holder_share_percent": 20, "seeds": [0]},
    "legal_text_sha256": hashlib.sha256(b"swarmfuse demo: no legal text").hexdigest(),
}
"""The main job's agreement: each feature site's own label-free extractor, fine-tuned by split learning (the
gradients the leader sends back are an exchange the terms allow)."""

REFERENCE_EXTRACTORS = {"text": "reference: trained with the label holder's labels",
                        "image": "reference: trained with the label holder's labels"}


def terms_for(config: JobConfig) -> dict[str, Any]:
    """:data:`TERMS` with the job's seed as the reward's (the round's head is trained with it), naming the
    reference extractors when the job runs on them (the ledger then says so)."""
    terms = {**TERMS, "reward": {**TERMS["reward"], "seeds": [config.seed]}}
    return terms if config.extractors == "site" else {**terms, "extractors": REFERENCE_EXTRACTORS}


def install_extractors(home: Path, config: JobConfig, views: Path, progress: Progress) -> None:
    """Each feature site's extractor, installed: its own, trained on its manifest alone (cached), or the reference
    bundles trained centrally with DC1's labels."""
    from swarmfuse.client.site.manifest import load_manifest
    from swarmfuse.client.site.site import Site
    from swarmfuse.client.site.training import label_free_image_bundle, label_free_text_bundle
    from swarmfuse.client.site.wiring import install_extractor
    from swarmfuse.extractors.image.progress import training_bar

    if config.extractors == "reference":
        bundles = reference_bundles(config, progress)
    else:
        texts = load_manifest(views / MANIFESTS["DC2"], "text")
        images = load_manifest(views / MANIFESTS["DC3"], "image")
        bundles = {"text": label_free_text_bundle(texts, config.seed),
                   "image": label_free_image_bundle(images, config.seed, progress=training_bar(
                       progress, "DC3 trains its label-free ResNet50"))}
    for org, modality in ORGS.items():
        if modality in bundles:
            install_extractor(Site(home, org, config.task), modality, bundles[modality])


def reference_bundles(config: JobConfig, progress: Progress) -> dict[str, Path]:
    """The reference extractors' bundles (trained with DC1's labels once per machine, then cached)."""
    from swarmfuse.extractors.bundle import export_bundles
    from swarmfuse.extractors.image.progress import training_bar
    from swarmfuse.extractors.pipeline import ImageConfig, PipelineConfig

    pipeline = PipelineConfig(image=ImageConfig(backbone=config.image_backbone))
    return export_bundles(config.out / "reference-bundles", pipeline, training_bar(progress))


def agree_terms(home: Path, task: str, terms: dict[str, Any] = TERMS) -> None:
    """DC1 proposes ``terms``, DC2 and DC3 confirm them (each founder's own act); a rerun does what is left."""
    from swarmfuse.chaincode.contracts.records import AgreementSpec
    from swarmfuse.client.site.wiring import open_site

    digest = AgreementSpec.model_validate(terms).sha256()
    with open_site(home, "DC1", task) as parts:
        current = parts.ledger.agreement()
        if current is not None and current.agreement_sha256 == digest:
            return
        proposal = parts.ledger.agreement_proposal(digest) or parts.ledger.propose_agreement(terms)
        awaiting = proposal.awaiting
    for org in ("DC2", "DC3"):
        if f"{org}MSP" in awaiting:
            with open_site(home, org, task) as parts:
                parts.ledger.confirm_agreement(digest)


def open_round(ledger: TaskLedger, round_id: str, split_epochs: int = 0) -> None:
    """Open round ``round_id`` of DC1 (labels, and the label holder), DC2 (texts) and DC3 (images) under the
    terms in force, with ``split_epochs`` of split learning and a deadline two hours away."""
    from datetime import UTC, datetime, timedelta

    roles = {f"{org}MSP": [modality] for org, modality in ORGS.items()}
    deadline = datetime.now(UTC) + timedelta(hours=2)
    ledger.open_round(round_id, ledger.round_spec(roles, "DC1MSP", deadline, split_epochs=split_epochs))


def _collect(report: JobReport, network: Any, config: JobConfig) -> None:
    """The round's record, history and exchanges, and what went on-chain (blocks) against off-chain (bytes)."""
    from swarmfuse.client.site.wiring import open_site

    with open_site(network.home, "DC1", config.task) as parts:
        report.round = parts.ledger.round(config.round_id).model_dump(mode="json")
        report.history = parts.ledger.evaluate("Audit:RoundHistory", config.round_id, "100", "")["items"]
        report.contribution = parts.ledger.evaluate("Rounds:GetContribution", config.round_id)
        report.credits = {c["org"]: c["units"] for c in
                          parts.ledger.evaluate("Rounds:Credits", config.round_id)["items"]}
        report.exchanges = [e.model_dump(mode="json") for e in parts.ledger.exchanges(config.round_id)]
        blocks = blocks_of(parts.gateway, config.task)
    for org in ORGS:
        timing = network.home / "sites" / org / "rounds" / config.round_id / "timing.json"
        if timing.exists():
            report.ledger_time[org] = json.loads(timing.read_text())
    leader = report.round["leader"].removesuffix("MSP")
    model = network.home / "sites" / leader / "rounds" / config.round_id / "model.npz"
    downloads = len(report.round["participants"]) - 1  # every other participant fetched the model
    report.off_chain_bytes = sum(e["bytes"] for e in report.exchanges) + downloads * model.stat().st_size
    report.on_chain = {"blocks": len(blocks), "transactions": sum(len(b.data.data) for b in blocks),
                       "bytes": sum(b.ByteSize() for b in blocks)}


def blocks_of(gateway: Any, task: str) -> list[Any]:
    """Every block of the channel, through Deliver."""
    network = gateway.network(task)
    height = network.newest_block().header.number + 1
    found = []
    with network.block_events(start_block=0) as events:
        for block in events:
            found.append(block)
            if block.header.number >= height - 1:
                break
    return found


def _score_regimes(report: JobReport, home: Path, config: JobConfig, views: Path, progress: Progress) -> None:
    """Every method in each regime on the round's aligned entities (the leader's ``aligned.json``): (a) the sites'
    own extractors, (b) after the round's split learning, (c) the reference when the round ran on it or when asked."""
    from swarmfuse.client.demo.regimes import AlignedViews, score_regime
    from swarmfuse.client.site.manifest import load_manifest
    from swarmfuse.client.site.site import Site
    from swarmfuse.client.site.wiring import extractor_dir

    leader = report.round["leader"].removesuffix("MSP")
    aligned = AlignedViews.read(home / "sites" / leader / "rounds" / config.round_id / "aligned.json",
                                load_manifest(views / MANIFESTS["DC1"], "label"),
                                load_manifest(views / MANIFESTS["DC2"], "text"),
                                load_manifest(views / MANIFESTS["DC3"], "image"))
    report.baseline_entities = aligned.split_counts()
    installed = {m: extractor_dir(Site(home, org, config.task), m) for org, m in ORGS.items() if m != "label"}
    bundles: dict[str, dict[str, Path]] = {}
    if config.extractors == "site":
        bundles["a"] = installed
        if config.split_epochs:
            bundles["b"] = {m: home / "sites" / org / "rounds" / config.round_id / "extractor"
                            for org, m in ORGS.items() if m != "label"}
    if config.extractors == "reference":
        bundles["c"] = installed
    elif config.reference:
        bundles["c"] = reference_bundles(config, progress)
    for regime, found in bundles.items():
        report.regimes[regime] = score_regime(regime, aligned, found["text"], found["image"], config.seed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m swarmfuse.client.demo.job", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder for the report and the data views")
    parser.add_argument("--home", type=Path, required=True, help="network home")
    parser.add_argument("--engine", default="auto", help="auto, embedded or fabric")
    parser.add_argument("--port-base", type=int, default=27000)
    parser.add_argument("--split-epochs", type=int, default=SPLIT_EPOCHS,
                        help=f"epochs of split learning in the round (0: none; default {SPLIT_EPOCHS})")
    parser.add_argument("--extractors", default="site", choices=EXTRACTORS,
                        help="site: each feature site trains its own, without labels (default); reference: trained "
                             "centrally with DC1's labels, which the vertical setting forbids")
    parser.add_argument("--reference", action="store_true",
                        help="also score the reference extractors in the report (trains them once per machine)")
    parser.add_argument("--image-backbone", default="resnet50",
                        help="the reference extractors' image backbone: resnet50 (trained here once per machine) or "
                             "efficientnet_lite0 (pretrained)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the sites' extractor training and of every fusion head (default 0)")
    parser.add_argument("--keep-running", action="store_true", help="leave the network and the agents running")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = JobConfig(out=args.out, home=args.home, engine=args.engine, port_base=args.port_base,
                           image_backbone=args.image_backbone, keep_running=args.keep_running,
                           extractors=args.extractors, split_epochs=args.split_epochs, reference=args.reference,
                           seed=args.seed)
        report = run_job(config)
    except JobFailed as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        return 1
    from swarmfuse.client.demo.report import print_summary

    print_summary(report, console)
    console.print(f"report: {config.out / 'report.html'}", highlight=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())

