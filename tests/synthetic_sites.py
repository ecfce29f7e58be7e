"""A small synthetic data set for three data centres, made by the tests that run real rounds through the CLI: three
classes, each with its own words and its own colour; labels (with splits) at DC1, texts at DC2, images (PNG files)
at DC3. Small enough that the sites' own extractors train in little time (cached once trained)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = {
    "sea": ("wave", "boat", "blue", "water", "fish", "shore"),
    "forest": ("tree", "leaf", "green", "moss", "bird", "branch"),
    "desert": ("sand", "dune", "yellow", "camel", "sun", "heat"),
}
COLOURS = {"sea": (40, 90, 200), "forest": (40, 150, 60), "desert": (220, 190, 80)}
FILLER = ("a", "the", "near", "with", "under", "and", "some", "old", "small", "big")
PER_CLASS = 24
ORGS = ("DC1", "DC2", "DC3")
MODALITIES = {"DC1": "label", "DC2": "text", "DC3": "image"}
ROLES = "DC1=label,DC2=text,DC3=image"


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
