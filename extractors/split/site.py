"""A feature site's side of split learning: its extractor (an ONNX bundle with its PyTorch weights) cut into a frozen
bottom, run once on the round's rows, and a trainable top — the whole AWD-LSTM encoder for texts (it is small),
ResNet50's ``layer4`` for images — that each epoch moves towards the features the leader's gradients point to, and
is exported at the end as a new bundle (a new SHA-256) whose features the fused model uses."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from swarmfuse.extractors.bundle import (
    BundleError,
    ExtractorBundle,
    ImagePreprocess,
    TextPreprocess,
    encode_texts,
    export_image_bundle,
    export_text_bundle,
    load_images,
    verify_files,
)
from swarmfuse.extractors.reproducible import reproducible
from swarmfuse.extractors.split.config import SplitConfig
from swarmfuse.extractors.split.gradients import check_gradients
from swarmfuse.files import write_atomic

BATCH = 64


class TrainableExtractor:
    """The site's extractor during a split-learning round, over the round's rows (``values``, in row order)."""

    def __init__(self, folder: Path, values: Sequence[str], base: Path | None, seed: int = 0,
                 config: SplitConfig | None = None) -> None:
        self.bundle = ExtractorBundle.read(folder)
        if not self.bundle.trainable_file:
            raise BundleError(f"the extractor bundle in {folder} holds no trainable weights (bundles exported before "
                              "they did cannot take part in split learning; train or export it again)")
        verify_files(folder, self.bundle)
        self.folder, self.values, self.base, self.seed = folder, list(values), base, seed
        self.config = config or SplitConfig.for_modality(self.bundle.modality)
        saved = torch.load(folder / self.bundle.trainable_file, weights_only=True)
        self._config: dict[str, Any] = saved["config"]
        self.module = self._rebuild(saved["state_dict"])
        self.top = self._top(self.module)
        with torch.no_grad():
            self.inputs = self._bottom_inputs()
        self._optimiser = torch.optim.Adam(self.top.parameters(), lr=self.config.lr)

    # --- the module, cut in two -----------------------------------------------------------------------

    def _rebuild(self, state: dict[str, torch.Tensor]) -> nn.Module:
        if self.bundle.modality == "text":
            from swarmfuse.extractors.text.awd_lstm import AWDLSTMEncoder, TextFeatures
            from swarmfuse.extractors.text.extractor import TextConfig, awd_config

            assert isinstance(self.bundle.preprocess, TextPreprocess)
            config = TextConfig.from_dict(self._config["text"])
            module: nn.Module = TextFeatures(AWDLSTMEncoder(awd_config(config, self.bundle.preprocess.vocab_size)))
        elif self._config.get("backbone") == "resnet50":
            from swarmfuse.extractors.image.backbone import build_resnet50_features

            module = build_resnet50_features()
        else:
            raise BundleError(f"split learning fine-tunes ResNet50 image extractors, not {self._config.get('backbone')}")
        module.load_state_dict(state)
        return module.eval()  # eval throughout: batch-norm statistics and dropout fixed, features deterministic

    def _top(self, module: nn.Module) -> nn.Module:
        if self.bundle.modality == "text":
            return module
        m: Any = module
        return nn.Sequential(*m.layer4[3 - self.config.image_blocks:], m.avgpool, nn.Flatten())

    def _bottom(self, x: torch.Tensor) -> torch.Tensor:
        if self.bundle.modality == "text":
            return x
        m: Any = self.module
        for layer in (m.conv1, m.bn1, m.relu, m.maxpool, m.layer1, m.layer2, m.layer3,
                      *m.layer4[:3 - self.config.image_blocks]):
            x = layer(x)
        return x

    def _raw_inputs(self, values: Sequence[str]) -> np.ndarray:
        spec = self.bundle.preprocess
        if isinstance(spec, TextPreprocess):
            vocab = (self.folder / spec.vocab_file).read_text(encoding="utf-8")
            index = {token: i for i, token in enumerate(json.loads(vocab))}
            return encode_texts(values, spec, index)
        assert isinstance(spec, ImagePreprocess)
        return load_images([(self.base or Path()) / value for value in values], spec)

    def _bottom_inputs(self) -> torch.Tensor:
        raw = self._raw_inputs(self.values)
        parts = [self._bottom(torch.from_numpy(raw[i:i + BATCH])) for i in range(0, len(raw), BATCH)]
        return torch.cat(parts) if parts else torch.zeros((0,))

    def _forward(self, rows: torch.Tensor) -> torch.Tensor:
        x = self.inputs[rows]
        return self.top(x) if self.bundle.modality != "text" else self.module(x)

    # --- one epoch ---------------------------------------------------------------------------------------

    def features(self) -> np.ndarray:
        """float32 features of every row from the current top."""
        with torch.no_grad():
            parts = [self._forward(torch.arange(i, min(i + BATCH, len(self.values))))
                     for i in range(0, len(self.values), BATCH)]
        return torch.cat(parts).numpy().astype(np.float32)

    def step(self, gradients: np.ndarray, config: SplitConfig | None = None, epoch: int = 0) -> None:
        """Move the top towards the features one normalised gradient step from the current ones on the rows with
        a gradient (the leader's training rows): target = f - step * s * z / rms(z), z = gradient * s, s each
        feature's standard deviation over those rows (clamped at 0 when every feature is non-negative); then
        ``local_passes`` passes of Adam on the squared error. ``config``: this site's own unless given (its trainable part is fixed
        when the site is made). Gradients that are not finite float32 of the features' shape raise
        :class:`~swarmfuse.extractors.split.gradients.GradientError` before anything moves."""
        config = config or self.config
        current = self.features()
        gradients = check_gradients(gradients, current.shape)  # GradientError: not applied, nothing changed
        rows = np.flatnonzero((gradients != 0).any(1))
        if not len(rows):
            return
        f = torch.from_numpy(current[rows]).double()
        g = torch.from_numpy(gradients[rows]).double()
        g = g / g.abs().max()  # the step is scale-free; in float64, no finite float32 gradient can overflow it
        scale = f.std(0).clamp(min=1e-6) if len(rows) > 1 else torch.ones(f.shape[1], dtype=torch.float64)
        z = g * scale
        target = (f - config.step * scale * z / z.pow(2).mean().sqrt().clamp(min=1e-12)).float()
        if config.clamp_targets and (current >= 0).all():
            target = target.clamp(min=0)  # post-ReLU features: a negative target only kills units
        for group in self._optimiser.param_groups:
            group["lr"] = config.lr
        with reproducible(self.seed + epoch):
            order = np.random.default_rng(self.seed + epoch)
            for _ in range(config.local_passes):
                perm = order.permutation(len(rows))
                for i in range(0, len(perm), config.batch_size):
                    batch = perm[i:i + config.batch_size]
                    out = self._forward(torch.from_numpy(rows[batch]))
                    loss = (out - target[batch]).pow(2).sum(1).mean()
                    self._optimiser.zero_grad()
                    loss.backward()
                    self._optimiser.step()

    # --- state and export --------------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """The top's weights and optimiser state (what a restarted site goes on from)."""
        buffer = io.BytesIO()
        torch.save({"top": self.top.state_dict(), "optimiser": self._optimiser.state_dict()}, buffer)
        write_atomic(path, buffer.getvalue())

    def load(self, path: Path) -> None:
        state = torch.load(path, weights_only=True)
        self.top.load_state_dict(state["top"])
        self._optimiser.load_state_dict(state["optimiser"])

    def export(self, out: Path, source: str, *, round_id: str) -> ExtractorBundle:
        """Write the extractor split learning fine-tuned in ``round_id`` as a bundle into the empty folder ``out``
        (checked against torch); its provenance is its parent's, fine-tuned (unknown when the parent's is)."""
        parent = self.bundle.provenance
        provenance = parent.fine_tuned(self.bundle.onnx_sha256, round_id) if parent is not None else None
        module = copy.deepcopy(self.module).eval()
        examples = self.values[:2]
        if self.bundle.modality == "text":
            from swarmfuse.extractors.text.extractor import TextConfig, TextExtractor
            from swarmfuse.extractors.text.vocab import Vocab

            assert isinstance(self.bundle.preprocess, TextPreprocess)
            vocab = Vocab.load(self.folder / self.bundle.preprocess.vocab_file)
            text = TextExtractor(TextConfig.from_dict(self._config["text"]), vocab, module, {})  # type: ignore[arg-type]
            export_text_bundle(text, examples, source, out, provenance=provenance)
        else:
            assert isinstance(self.bundle.preprocess, ImagePreprocess)
            export_image_bundle(module, [(self.base or Path()) / v for v in examples], self.bundle.preprocess.resolution,
                                self.bundle.backbone, source, out, provenance=provenance)
        return ExtractorBundle.read(out)
