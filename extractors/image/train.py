"""Train the ResNet50 image extractor on the emoji images at a low resolution, by a recipe of steps.

Every recipe trains a linear group classifier on the pooled features jointly with the backbone (AdamW,
one-cycle schedule, cross-entropy on the training entities' images, random horizontal flips) and keeps the
backbone of the epoch with the best validation accuracy (Google images of the validation entities). The
steps on top of that (:class:`ImageRecipe`):

* ``artists``: the other artists' images of the training entities join the labelled pool
  (:func:`swarmfuse.extractors.data.artists.fetch_artist_images`);
* ``augment``: random affine warps (zoom, shift, rotation, flip) and colour jitter, batched;
* ``distill``: a linear projection of the features regresses the standardised pooled features of the
  ImageNet-pretrained EfficientNet-Lite0 (the teacher, frozen, run on the same augmented view at
  ``teacher_resolution``); the validation entities' images join the pool *without labels* for this term;
* ``quant_noise_epochs``: after the main schedule, fine-tuning epochs with pseudo-quantisation noise
  (:func:`swarmfuse.extractors.image.quant_noise.quantisation_noise`) at a tenth of the peak learning
  rate, cosine-annealed to zero, so that the INT8 model keeps the FP32 model's accuracy; the kept epoch is
  then the best of those.

A recipe with labels never uses test entities, by any artist, with or without labels. The per-epoch log is written
to ``<out_dir>/image_train.json``.

``labels=False`` is the label-free recipe of a site that holds images but no labels: distillation alone, without the
classifier, on every entity's images (the site's own, the test entities' included: no label is read, so nothing of
the label holder's split reaches the extractor); the last epoch is kept.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from swarmfuse.extractors.data import Manifest
from swarmfuse.extractors.data import artists as artist_data
from swarmfuse.extractors.image import backbone, preprocess, quant_noise
from swarmfuse.extractors.image.backbone import FEATURE_DIMS, build_backbone
from swarmfuse.extractors.image.preprocess import MEAN, STD, load_rgb, preprocess_images
from swarmfuse.extractors.image.quant_noise import quantisation_noise
from swarmfuse.extractors.reproducible import code_fingerprint, reproducible

log = logging.getLogger(__name__)

TEACHER = "efficientnet_lite0"
_STATS_IMAGES = 512  # images whose teacher features set the standardisation of the distillation targets


@dataclass(frozen=True)
class ImageRecipe:
    """How the ResNet50 extractor is trained (see the module doc for the steps)."""

    epochs: int = 10
    seed: int = 0
    artists: bool = True
    augment: bool = True
    distill: bool = True
    teacher_resolution: int = 64
    distill_weight: float = 1.0
    batch_size: int = 64
    lr: float = 2e-3
    quant_noise_epochs: int = 2
    labels: bool = True

    def __post_init__(self) -> None:
        if not self.labels and not self.distill:
            raise ValueError("a label-free recipe learns from the teacher alone: it needs distill")
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.quant_noise_epochs < 0:
            raise ValueError(f"quant_noise_epochs must be 0 or more, got {self.quant_noise_epochs}")
        if self.batch_size < 2:
            raise ValueError(f"batch size must be at least 2 (batch norm), got {self.batch_size}")


@dataclass(frozen=True)
class TrainProgress:
    """Where training is, for a progress bar: ``step`` of ``steps`` in ``epoch`` of ``epochs``."""

    epoch: int
    epochs: int
    step: int
    steps: int
    loss: float


ProgressCallback = Callable[[TrainProgress], None]


@dataclass(frozen=True)
class EpochLog:
    epoch: int
    train_loss: float
    ce_loss: float
    distill_loss: float
    val_accuracy: float | None  # None: a label-free recipe (no classifier to score)
    seconds: float
    quant_noise: bool


@dataclass(frozen=True)
class _Pool:
    """Training images as uint8 NHWC at the training resolution; label -1 marks an unlabelled image."""

    images: np.ndarray
    labels: np.ndarray
    counts: dict[str, int]


def _pool(manifest: Manifest, recipe: ImageRecipe, resolution: int) -> _Pool:
    if not recipe.labels:  # the site's own images, every one, none labelled
        splits: tuple[str, ...] = ("train", "val", "test")
    else:
        splits = ("train", "val") if recipe.distill else ("train",)
    paths: list[Path] = []
    labels: list[int] = []
    counts: dict[str, int] = {}
    by_id = manifest.by_id()
    sources: list[tuple[str, list[tuple[str, Path]]]] = [
        ("google", [(e.id, manifest.image_path(e)) for e in manifest.entities])]
    if recipe.artists:
        artists = artist_data.fetch_artist_images(manifest)
        for name in sorted({a.artist for a in artists.images}):
            sources.append((name, [(a.entity_id, artists.path(a)) for a in artists.images if a.artist == name]))
    for artist, items in sources:
        for entity_id, path in items:
            entity = by_id.get(entity_id)
            if entity is None or entity.split not in splits:
                continue
            paths.append(path)
            labelled = recipe.labels and entity.split == "train"
            labels.append(manifest.label(entity) if labelled else -1)
            key = f"{artist}/{'labelled' if labelled else 'unlabelled'}"
            counts[key] = counts.get(key, 0) + 1
    images = np.stack([load_rgb(p, resolution) for p in paths])
    return _Pool(images, np.array(labels, dtype=np.int64), counts)


_MEAN = torch.from_numpy(MEAN).view(1, 3, 1, 1)
_STD = torch.from_numpy(STD).view(1, 3, 1, 1)


def _to_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC -> float [0, 1] NCHW."""
    return images.permute(0, 3, 1, 2).float().div_(255.0)


def _flip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    flip = torch.rand(len(x), generator=gen) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random zoom (0.8-1.2), shift (up to 10 %), rotation (up to 15 degrees), flip and colour jitter on [0, 1]
    NCHW images; the area uncovered by the warp is white, like the images' background."""
    n = len(x)

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=gen)

    scale, angle = uniform(0.8, 1.2), uniform(-math.pi / 12, math.pi / 12)
    sign = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos * sign, -sin, uniform(-0.1, 0.1)], 1),
                         torch.stack([sin * sign, cos, uniform(-0.1, 0.1)], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = 1.0 - F.grid_sample(1.0 - x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    brightness, contrast, saturation = uniform(0.8, 1.2), uniform(0.8, 1.2), uniform(0.8, 1.2)
    x = x * brightness[:, None, None, None]
    grey = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)
    x = grey + (x - grey) * saturation[:, None, None, None]
    mean = grey.mean(dim=(2, 3), keepdim=True)
    x = mean + (x - mean) * contrast[:, None, None, None]
    return x.clamp_(0.0, 1.0)


@torch.inference_mode()
def _accuracy(model: nn.Module, head: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    model.eval()
    correct = sum(int((head(model(x[i : i + batch_size])).argmax(1) == y[i : i + batch_size]).sum())
                  for i in range(0, len(x), batch_size))
    return correct / max(len(x), 1)


class _Teacher:
    """The frozen EfficientNet-Lite0; its features of a view, standardised by statistics of the pool."""

    def __init__(self, resolution: int) -> None:
        self.net = build_backbone(TEACHER).eval()
        self.resolution = resolution
        self.mean = torch.zeros(FEATURE_DIMS[TEACHER])
        self.std = torch.ones(FEATURE_DIMS[TEACHER])

    @torch.no_grad()
    def raw(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.resolution:
            x = F.interpolate(x, size=self.resolution, mode="bilinear", align_corners=False, antialias=True)
        return self.net(x)

    def fit_statistics(self, inputs: list[torch.Tensor]) -> None:
        features = torch.cat([self.raw(x) for x in inputs])
        self.mean, self.std = features.mean(0), features.std(0).clamp(min=1e-3)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (self.raw(x) - self.mean) / self.std


def training_code() -> str:
    """The fingerprint of the code that trains the ResNet50 extractor (part of its cache key)."""
    return code_fingerprint(artist_data, backbone, preprocess, quant_noise, sys.modules[__name__])


def train_image_backbone(manifest: Manifest, out_dir: Path, resolution: int = 64,
                         recipe: ImageRecipe = ImageRecipe(), weights: Path | None = None,
                         progress: ProgressCallback | None = None) -> nn.Module:
    """Train ResNet50 (from ``weights`` if given) by ``recipe``
    (:func:`~swarmfuse.extractors.reproducible.reproducible`); return the 2048-d feature module in eval mode."""
    with reproducible(recipe.seed):
        return _train(manifest, out_dir, resolution, recipe, weights, progress)


def _train(manifest: Manifest, out_dir: Path, resolution: int, recipe: ImageRecipe, weights: Path | None,
           progress: ProgressCallback | None) -> nn.Module:
    gen = torch.Generator().manual_seed(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    pool = _pool(manifest, recipe, resolution)
    images, labels = torch.from_numpy(pool.images), torch.from_numpy(pool.labels)
    log.info("image training pool at %d px: %s", resolution, pool.counts)
    features = build_backbone("resnet50", weights).to(memory_format=torch.channels_last)
    trained: list[nn.Module] = [features]
    classifier = None
    if recipe.labels:
        val = manifest.split("val")
        x_val = torch.from_numpy(preprocess_images([manifest.image_path(e) for e in val], resolution))
        y_val = torch.tensor([manifest.label(e) for e in val], dtype=torch.int64)
        classifier = nn.Linear(FEATURE_DIMS["resnet50"], len(manifest.groups))
        trained.append(classifier)
    teacher = projection = None
    if recipe.distill:
        teacher = _Teacher(recipe.teacher_resolution)
        stats = torch.from_numpy(rng.choice(len(images), min(_STATS_IMAGES, len(images)), replace=False))
        teacher.fit_statistics([(_to_input(images[stats[i : i + 128]]) - _MEAN) / _STD
                                for i in range(0, len(stats), 128)])
        projection = nn.Linear(FEATURE_DIMS["resnet50"], FEATURE_DIMS[TEACHER])
        trained.append(projection)
    parameters = [p for m in trained for p in m.parameters()]
    optimiser = torch.optim.AdamW(parameters, lr=recipe.lr, weight_decay=1e-4)
    steps_per_epoch = len(images) // recipe.batch_size  # the last partial batch is dropped
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=recipe.lr,
                                                   total_steps=recipe.epochs * steps_per_epoch)
    noise_steps = recipe.quant_noise_epochs * steps_per_epoch
    history: list[EpochLog] = []
    best_state, best_acc = None, -1.0
    epochs = recipe.epochs + recipe.quant_noise_epochs
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        totals = np.zeros(3)
        for m in trained:
            m.train()
        order = torch.from_numpy(rng.permutation(len(images)))
        noisy = epoch > recipe.epochs
        with quantisation_noise(features) if noisy else nullcontext():
            for step in range(steps_per_epoch):
                if noisy:  # fine-tuning: a tenth of the peak rate, cosine-annealed to zero
                    done = (epoch - recipe.epochs - 1) * steps_per_epoch + step
                    for group in optimiser.param_groups:
                        group["lr"] = 0.05 * recipe.lr * (1 + math.cos(math.pi * done / noise_steps))
                idx = order[step * recipe.batch_size : (step + 1) * recipe.batch_size]
                x = _to_input(images[idx])
                x = _augment(x, gen) if recipe.augment else _flip(x, gen)
                x = ((x - _MEAN) / _STD).contiguous(memory_format=torch.channels_last)
                y = labels[idx]
                h = features(x)
                labelled = y >= 0
                ce = (F.cross_entropy(classifier(h[labelled]), y[labelled]) if classifier is not None and labelled.any()
                      else h.new_zeros(()))
                distill = F.mse_loss(projection(h), teacher(x)) if teacher is not None else h.new_zeros(())
                loss = ce + recipe.distill_weight * distill
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                if not noisy:
                    schedule.step()
                totals += (loss.item(), ce.item(), distill.item())
                if progress is not None:
                    progress(TrainProgress(epoch, epochs, step + 1, steps_per_epoch, float(loss.item())))
        means = totals / max(steps_per_epoch, 1)
        accuracy = _accuracy(features, classifier, x_val, y_val, 128) if classifier is not None else None
        entry = EpochLog(epoch, float(means[0]), float(means[1]), float(means[2]), accuracy,
                         time.perf_counter() - start, noisy)
        history.append(entry)
        log.info("image epoch %d/%d%s: loss %.3f (ce %.3f, distill %.3f), val accuracy %s (%.0f s)", epoch,
                 epochs, " (quantisation noise)" if noisy else "", entry.train_loss, entry.ce_loss, entry.distill_loss,
                 "-" if accuracy is None else f"{accuracy:.3f}", entry.seconds)
        if accuracy is None:  # label-free: nothing to select by; the schedule ends at its lowest rate
            best_state = {k: v.detach().clone() for k, v in features.state_dict().items()}
        elif (noisy or not recipe.quant_noise_epochs) and accuracy > best_acc:
            best_acc = accuracy
            best_state = {k: v.detach().clone() for k, v in features.state_dict().items()}
    features.load_state_dict(best_state)
    features = features.to(memory_format=torch.contiguous_format)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "image_train.json").write_text(json.dumps(
        {"backbone": "resnet50", "resolution": resolution, "recipe": asdict(recipe), "pool": pool.counts,
         "best_val_accuracy": best_acc if recipe.labels else None, "epochs": [asdict(h) for h in history]},
        indent=1) + "\n")
    return features.eval()
