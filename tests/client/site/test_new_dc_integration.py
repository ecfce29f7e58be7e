"""Data centres with data the project never saw go from their manifests to a closed round with the README's
commands only: each feature site trains its own extractor from its own rows and public data (no label), adds its
data, serves; the label holder adds its labels; a round opens and closes, and every site holds the model the
ledger names. The data set is synthetic, made here: three classes, each with its own words and its own colour."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ENGINES, free_port_base
from PIL import Image, ImageDraw

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLASSES = {
    "sea": ("wave", "boat", "blue", "water", "fish", "shore"),
    "forest": ("tree", "leaf", "green", "moss", "bird", "branch"),
    "desert": ("sand", "dune", "yellow", "camel", "sun", "heat"),
}
COLOURS = {"sea": (40, 90, 200), "forest": (40, 150, 60), "desert": (220, 190, 80)}
FILLER = ("a", "the", "near", "with", "under", "and", "some", "old", "small", "big")
PER_CLASS = 24
ORGS = ("DC1", "DC2", "DC3")


def make_data(folder: Path, seed: int = 7) -> dict[str, Path]:
    """Manifests of the three views: labels (with splits) at DC1, texts at DC2, images (PNG files) at DC3."""
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True)
    labels, texts, images = ["entity_id,label,split"], ["entity_id,text"], ["entity_id,image"]
    for name, words in CLASSES.items():
        for i in range(PER_CLASS):
            entity = f"{name[:2]}{i:03d}"
            split = "train" if i < PER_CLASS * 2 // 3 else "val" if i < PER_CLASS * 5 // 6 else "test"
            labels.append(f"{entity},{name},{split}")
            tokens = [*rng.choice(words, 3), *rng.choice(FILLER, 3)]
            texts.append(f"{entity},{' '.join(rng.permutation(tokens))}")
            picture = Image.new("RGB", (48, 48), tuple(int(c) for c in rng.integers(0, 60, 3)))
            draw = ImageDraw.Draw(picture)
            x, y, r = (int(v) for v in (*rng.integers(12, 36, 2), rng.integers(6, 12)))
            colour = tuple(int(np.clip(c + rng.integers(-25, 25), 0, 255)) for c in COLOURS[name])
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
            picture.save(folder / "images" / f"{entity}.png")
            images.append(f"{entity},images/{entity}.png")
    paths = {"DC1": folder / "labels.csv", "DC2": folder / "texts.csv", "DC3": folder / "images.csv"}
    for org, rows in zip(ORGS, (labels, texts, images), strict=True):
        paths[org].write_text("\n".join(rows) + "\n", encoding="utf-8")
    return paths


def swarmfuse(*args: str, home: Path, timeout: float = 900) -> str:
    """One CLI command, as a user runs it; its output (the test fails on a non-zero exit, with the output)."""
    done = subprocess.run([sys.executable, "-m", "swarmfuse", *args, "--home", str(home)], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, f"swarmfuse {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("engine", ENGINES)
def test_new_data_centres_go_from_their_manifests_to_a_closed_round(engine: str, tmp_path: Path) -> None:
    home, task = tmp_path / "home", "newtask"
    manifests = make_data(tmp_path / "data")
    swarmfuse("network", "up", "--orgs", "3", "--engine", engine, "--port-base", str(free_port_base()), home=home)
    agents: list[subprocess.Popen[bytes]] = []
    try:
        swarmfuse("task", "create", task, "--orgs", ",".join(ORGS), home=home)
        site = ("--task", task)
        swarmfuse("site", "extractor", "train", str(manifests["DC2"]), "--modality", "text", "--org", "DC2", *site,
                  home=home)
        swarmfuse("site", "extractor", "train", str(manifests["DC3"]), "--modality", "image", "--epochs", "2",
                  "--org", "DC3", *site, home=home)
        for org, modality in zip(ORGS, ("label", "text", "image"), strict=True):
            swarmfuse("site", "data", "add", str(manifests[org]), "--modality", modality, "--org", org, *site,
                      home=home)
        for org in ORGS:
            log = (tmp_path / f"agent-{org}.log").open("ab")
            agents.append(subprocess.Popen([sys.executable, "-m", "swarmfuse", "site", "serve", "--org", org, *site,
                                            "--home", str(home)], stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True))
        swarmfuse("round", "open", "R1", "--roles", "DC1=label,DC2=text,DC3=image", "--label-holder", "DC1",
                  "--org", "DC1", *site, home=home)
        deadline, status = time.monotonic() + 600, ""
        while time.monotonic() < deadline:
            status = swarmfuse("round", "status", "R1", "--org", "DC1", *site, home=home)
            if re.search(r"round R1: (closed|aborted)", status):
                break
            assert all(agent.poll() is None for agent in agents), "a site agent exited; see agent-*.log"
            time.sleep(3)
        assert "round R1: closed" in status, status
        model = re.search(r"model ([0-9a-f]{64})", status)
        assert model is not None
        for org in ORGS:  # every site keeps the model the ledger names
            held = home / "sites" / org / "rounds" / "R1" / "model.npz"
            assert hashlib.sha256(held.read_bytes()).hexdigest() == model.group(1)
        sent = {tuple(cells[1:4]) for line in status.splitlines()
                if len(cells := [c.strip() for c in line.split("│")]) > 4}
        assert {("DC2MSP", "DC1MSP", "features"), ("DC3MSP", "DC1MSP", "features")} <= sent, status
        trained = swarmfuse("site", "status", "--org", "DC2", *site, home=home)
        assert "72" in trained  # the site's own 72 texts, summarised with its own extractor
    finally:
        for agent in agents:
            if agent.poll() is None:
                os.killpg(agent.pid, 15)
                agent.wait(timeout=30)
        subprocess.run([sys.executable, "-m", "swarmfuse", "network", "down", "--home", str(home)],
                       capture_output=True, timeout=300)
