"""Every asked extractor regime (:data:`~swarmfuse.client.demo.regimes.REGIMES`) scored on the same aligned entities,
its extractors built in one process: what ``swarmfuse fuse evaluate`` and ``scripts/bench_split.sh`` report.

- ``a``: each feature site's own label-free extractor (:func:`~swarmfuse.client.site.training.label_free_text_bundle`,
  :func:`~swarmfuse.client.site.training.label_free_image_bundle`: what ``swarmfuse site extractor train`` installs),
  trained on the site's whole view;
- ``b``: the same after ``split_epochs`` epochs of split learning with the label holder, simulated in one process
  (:func:`~swarmfuse.extractors.split.simulation.simulate_split_learning`) and exported as a round exports them;
- ``c``: the reference extractors trained centrally with the label holder's labels
  (:func:`~swarmfuse.extractors.bundle.export_bundles`), which the vertical setting forbids: a yardstick only.

Each regime's bundles are then scored alike by :func:`~swarmfuse.client.demo.regimes.score_regime` (every fusion
method, heads trained on the aligned training rows, early-stopped on the validation rows, scored on the test rows),
the function the main job's report uses too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from swarmfuse.client.demo.regimes import REGIMES, AlignedViews, RegimeScores, score_regime

if TYPE_CHECKING:
    from swarmfuse.extractors.fusion.head import HeadConfig
    from swarmfuse.extractors.split import SplitConfig

ORDER = tuple(REGIMES)
REFERENCE = "c"  # the regime the vertical setting forbids
REFERENCE_CAUTION = ("regime (c) is a reference the vertical setting forbids: its extractors were trained centrally "
                     "with the label holder's labels, which the sites holding texts and images never see")

# modality -> bundle folder
Bundles = Mapping[str, Path]


def parse_regimes(text: str) -> tuple[str, ...]:
    """``"a,b"`` (also ``"(a), (c)"``, any order, repeats ignored) as regimes in report order; a clear error naming
    an unknown one."""
    names = [part.strip().strip("()").strip().lower() for part in text.split(",")]
    if not any(names) or not all(names):
        raise ValueError(f"regimes must be a comma-separated list of {', '.join(ORDER)}, not {text!r}")
    unknown = [name for name in names if name not in REGIMES]
    if unknown:
        raise ValueError(f"unknown regime {unknown[0]!r}; the regimes are "
                         + "; ".join(f"{r}: {d}" for r, d in REGIMES.items()))
    return tuple(r for r in ORDER if r in names)


def describe(regime: str, split_epochs: int | None) -> str:
    """What ``regime`` is, in this evaluation."""
    if regime == "b":
        return (f"label-free site extractors after {split_epochs} split-learning epochs with the label holder "
                "(simulated in one process)")
    return REGIMES[regime]


@dataclass
class RegimeEvaluation:
    """The scores of each asked regime (every method's test accuracy and macro-F1) on one set of aligned entities
    (``entities``: their count per split), with what produced them."""

    regimes: dict[str, RegimeScores]
    entities: dict[str, int]
    split_epochs: int | None
    seed: int
    head_seeds: tuple[int, ...]
    seconds: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        doc = {"entities": self.entities, "split_epochs": self.split_epochs, "seed": self.seed,
               "head_seeds": list(self.head_seeds),
               "regimes": {r: {**asdict(s), "forbidden_reference": r == REFERENCE} for r, s in self.regimes.items()},
               "seconds": self.seconds}
        if REFERENCE in self.regimes:
            doc["caution"] = REFERENCE_CAUTION
        return doc


def check_request(regimes: Sequence[str], split_epochs: int | None) -> None:
    """Refuse, naming the problem, an evaluation that cannot be what it says."""
    unknown = [r for r in regimes if r not in REGIMES]
    if unknown or not regimes:
        raise ValueError(f"unknown regime {unknown[0]!r}" if unknown else "no regime asked")
    if split_epochs is not None and split_epochs < 0:
        raise ValueError(f"split epochs must not be negative, not {split_epochs}")
    if "b" in regimes and not split_epochs:
        raise ValueError("regime (b) needs at least one split-learning epoch (with none it is regime (a))")


def site_bundles(views: AlignedViews, seed: int) -> dict[str, Path]:
    """Regime (a): the text and image sites' own label-free extractors (cached; trained on first use)."""
    from swarmfuse.client.site.training import label_free_image_bundle, label_free_text_bundle

    return {"text": label_free_text_bundle(views.texts, seed), "image": label_free_image_bundle(views.images, seed)}


def reference_bundles(out: Path) -> dict[str, Path]:
    """Regime (c): the reference extractors trained centrally with the labels (cached; trained on first use)."""
    from swarmfuse.extractors.bundle import export_bundles

    return export_bundles(out)


def split_bundles(views: AlignedViews, own: Bundles, epochs: int, out: Path,
                  configs: Mapping[str, SplitConfig] | None = None) -> dict[str, Path]:
    """Regime (b): ``own`` after ``epochs`` epochs of split learning on ``views``' aligned rows, the label holder
    learning from its training rows, both sides seeded as a round's agents seed them (0); exported into ``out/text``
    and ``out/image``. ``configs``: a :class:`~swarmfuse.extractors.split.SplitConfig` per modality (and
    ``"leader"``) when not the default."""
    from swarmfuse.extractors.split import SplitConfig
    from swarmfuse.extractors.split.simulation import SimulatedSite, simulate_split_learning

    configs = configs or {}
    classes = sorted({row.value for row in views.labels.rows})
    rows = [views.labels.row(i) for i in views.ids]
    labels = np.array([classes.index(row.value) for row in rows])
    train = np.array([(row.extra.get("split") or "train") == "train" for row in rows])
    sites = [SimulatedSite(own["text"], [views.texts.row(i).value for i in views.ids], None, configs.get("text")),
             SimulatedSite(own["image"], [views.images.row(i).value for i in views.ids], views.images.path.parent,
                           configs.get("image"))]
    trained = simulate_split_learning(sites, labels, train, len(classes), epochs,
                                      leader_config=configs.get("leader") or SplitConfig())
    out.mkdir(parents=True, exist_ok=True)
    result = {}
    for modality, site in zip(("text", "image"), trained, strict=True):
        site.export(out / modality, f"{site.bundle.source} after {epochs} split-learning epochs (local simulation)",
                    round_id=f"local-simulation-{epochs}-epochs")
        result[modality] = out / modality
    return result


def evaluate_regimes(views: AlignedViews, regimes: Sequence[str], scratch: Path, *, split_epochs: int | None = None,
                     seed: int = 0, head_seeds: Sequence[int] = (0,),
                     own: Callable[[AlignedViews, int], Bundles] | None = None,
                     reference: Callable[[Path], Bundles] | None = None,
                     split_configs: Mapping[str, SplitConfig] | None = None,
                     head_config: HeadConfig | None = None) -> RegimeEvaluation:
    """Every method in each of ``regimes`` on ``views``' aligned entities. ``seed`` seeds the site extractors'
    training (``own(views, seed)``; split learning is seeded as a round seeds it); the heads' scores are means over
    ``head_seeds``; ``scratch`` (an empty folder) takes the bundles of (b) and (c). ``own`` and ``reference`` give
    each regime's starting bundles (:func:`site_bundles` and :func:`reference_bundles` unless given);
    ``split_configs`` and ``head_config`` replace the default split learning and heads (tests pass small ones)."""
    check_request(regimes, split_epochs)
    own, reference = own or site_bundles, reference or reference_bundles
    if not head_seeds:
        raise ValueError("at least one head seed is needed")
    bundles: dict[str, Bundles] = {}
    seconds: dict[str, float] = {}
    for regime in (r for r in ORDER if r in regimes):
        start = time.perf_counter()
        if regime == "c":
            bundles[regime] = reference(scratch / "reference")
        else:
            if "a" not in bundles:
                bundles["a"] = own(views, seed)
            if regime == "b":
                assert split_epochs is not None
                bundles["b"] = split_bundles(views, bundles["a"], split_epochs, scratch / "split", split_configs)
        seconds[f"{regime}: extractors"] = time.perf_counter() - start
    scores = {}
    for regime in (r for r in ORDER if r in regimes):
        start = time.perf_counter()
        found = score_regime(regime, views, bundles[regime]["text"], bundles[regime]["image"],
                             head_seeds=tuple(head_seeds), head_config=head_config)
        found.description = describe(regime, split_epochs)
        scores[regime] = found
        seconds[f"{regime}: fusion heads"] = time.perf_counter() - start
    return RegimeEvaluation(scores, views.split_counts(), split_epochs if "b" in regimes else None, seed,
                            tuple(head_seeds), {k: round(v, 1) for k, v in seconds.items()})


def main_job_views(out: Path) -> AlignedViews:
    """The main job's views of the emoji data (``swarmfuse data partition``'s defaults) written into ``out``, and
    the entities all three hold."""
    from swarmfuse.client.site.manifest import load_manifest
    from swarmfuse.extractors.data import PartitionConfig, fetch_emoji, partition

    partition(fetch_emoji(), out, PartitionConfig())
    return AlignedViews.intersect(load_manifest(out / "dc1" / "labels.jsonl", "label"),
                                  load_manifest(out / "dc2" / "texts.jsonl", "text"),
                                  load_manifest(out / "dc3" / "images.jsonl", "image"))
