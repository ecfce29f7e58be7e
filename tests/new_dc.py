"""New data centres on a network of their own, with the README's commands only (the site tests share them): a
synthetic data set (three classes, each with its own words and its own colour) split into three views — labels at
DC1, texts at DC2, images at DC3 — each feature site's extractor trained from its own rows, every view added, and
the three agents serving (:func:`new_data_centres`); or, cheaper, texts at both DC2 and DC3 with random small text
extractors installed instead of trained."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from conftest import free_port_base
from synthetic_sites import ORGS, make_data

TEXT_ROLES = "DC1=label,DC2=text,DC3=text"


def swarmfuse(*args: str, home: Path, timeout: float = 900) -> str:
    """One CLI command, as a user runs it; its output (the test fails on a non-zero exit, with the output)."""
    done = subprocess.run([sys.executable, "-m", "swarmfuse", *args, "--home", str(home)], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "COLUMNS": "200"}, check=False)
    assert done.returncode == 0, f"swarmfuse {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def serve(org: str, site: tuple[str, ...], home: Path, logs: Path) -> subprocess.Popen[bytes]:
    """``swarmfuse site serve`` for ``org``, in a session of its own, logging to ``logs/agent-<org>.log``."""
    with (logs / f"agent-{org}.log").open("ab") as log:
        return subprocess.Popen([sys.executable, "-m", "swarmfuse", "site", "serve", "--org", org, *site, "--home",
                                 str(home)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_until_ended(round_id: str, home: Path, site: tuple[str, ...], agents: list[subprocess.Popen[bytes]]) -> str:
    """``round status`` once the round is closed or aborted (or after ten minutes)."""
    deadline, status = time.monotonic() + 600, ""
    while time.monotonic() < deadline:
        status = swarmfuse("round", "status", round_id, "--org", "DC1", *site, home=home)
        if re.search(rf"round {round_id}: (closed|aborted)", status):
            break
        assert all(agent.poll() is None for agent in agents), "a site agent exited; see agent-*.log"
        time.sleep(3)
    return status


def exchanges(status: str) -> set[tuple[str, ...]]:
    """(sender, receiver, kind) of every row of ``round status``'s exchange table."""
    return {tuple(cells[1:4]) for line in status.splitlines() if len(cells := [c.strip() for c in line.split("│")]) > 4}


@dataclass
class DataCentres:
    """The three serving sites of :func:`new_data_centres`: ``site`` the task option, ``agents`` in ``ORGS`` order,
    ``logs`` their logs' folder."""

    home: Path
    task: str
    logs: Path
    agents: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def site(self) -> tuple[str, ...]:
        return ("--task", self.task)

    def run(self, *args: str) -> str:
        return swarmfuse(*args, home=self.home)

    def serve(self, org: str) -> subprocess.Popen[bytes]:
        """(Re)start ``org``'s agent."""
        agent = serve(org, self.site, self.home, self.logs)
        index = ORGS.index(org)
        if index < len(self.agents):
            self.agents[index] = agent
        else:
            self.agents.append(agent)
        return agent

    def wait_until_ended(self, round_id: str) -> str:
        return wait_until_ended(round_id, self.home, self.site, self.agents)


def small_text_bundle(folder: Path, manifest: Path, seed: int) -> Path:
    """A random small AWD-LSTM extractor of ``manifest``'s texts, exported with its trainable weights into
    ``folder`` in seconds (what ``site extractor install`` takes; split learning can fine-tune it)."""
    import torch

    from swarmfuse.extractors.bundle import ExtractorProvenance, export_text_bundle
    from swarmfuse.extractors.text.awd_lstm import AWDLSTMEncoder, TextFeatures
    from swarmfuse.extractors.text.extractor import TextConfig, TextExtractor, awd_config
    from swarmfuse.extractors.text.vocab import Vocab, tokenize

    texts = [line.split(",", 1)[1] for line in manifest.read_text(encoding="utf-8").splitlines()[1:]]
    config = TextConfig(max_len=8, emb_size=8, hidden_size=16, layers=2)
    vocab = Vocab.build(iter(()), {t for text in texts for t in tokenize(text)}, 100, 1)
    torch.manual_seed(seed)
    features = TextFeatures(AWDLSTMEncoder(awd_config(config, len(vocab)))).eval()
    export_text_bundle(TextExtractor(config, vocab, features, {}), texts[:2], "test: a random small AWD-LSTM",
                       folder, provenance=ExtractorProvenance(recipe="test-random-awd-lstm", labels="none"))
    return folder


@contextmanager
def new_data_centres(tmp_path: Path, engine: str, task: str = "newtask", *,
                     texts_only: bool = False) -> Iterator[DataCentres]:
    """A network of three orgs on ``engine`` (``home`` under ``tmp_path``) whose sites trained their extractors
    (texts at DC2, images at DC3, two epochs), added the synthetic data and serve; agents stopped and network
    down on exit. ``texts_only``: DC3 holds the same texts as DC2 (roles ``TEXT_ROLES``), and each installs a
    random small text extractor instead of training one (seconds, not the cold cache's many minutes)."""
    manifests = make_data(tmp_path / "data")
    modalities = ("label", "text", "text" if texts_only else "image")
    if texts_only:
        manifests["DC3"] = manifests["DC2"]
    centres = DataCentres(tmp_path / "home", task, tmp_path)
    centres.run("network", "up", "--orgs", "3", "--engine", engine, "--port-base", str(free_port_base()))
    try:
        centres.run("task", "create", task, "--orgs", ",".join(ORGS))
        if texts_only:
            for seed, org in enumerate(("DC2", "DC3")):
                bundle = small_text_bundle(tmp_path / f"bundle-{org}", manifests[org], seed)
                centres.run("site", "extractor", "install", str(bundle), "--modality", "text", "--org", org,
                            *centres.site)
        else:
            centres.run("site", "extractor", "train", str(manifests["DC2"]), "--modality", "text", "--org", "DC2",
                        *centres.site)
            centres.run("site", "extractor", "train", str(manifests["DC3"]), "--modality", "image", "--epochs", "2",
                        "--org", "DC3", *centres.site)
        for org, modality in zip(ORGS, modalities, strict=True):
            centres.run("site", "data", "add", str(manifests[org]), "--modality", modality, "--org", org,
                        *centres.site)
        for org in ORGS:
            centres.serve(org)
        yield centres
    finally:
        for agent in centres.agents:
            if agent.poll() is None:
                os.killpg(agent.pid, 15)
                agent.wait(timeout=30)
        subprocess.run([sys.executable, "-m", "swarmfuse", "network", "down", "--home", str(centres.home)],
                       capture_output=True, timeout=300, check=False)
