"""Fusion accuracy of the three extractor regimes on the emoji data, on the same aligned test entities.

The main job's views (DC1 labels with splits, DC2 texts, DC3 images; ``swarmfuse data partition``) and their
aligned entities (those all three hold). Regimes:

- (a) label-free site extractors: each feature site's own (``site extractor train``: the AWD-LSTM language model on
  the public corpus and its texts; ResNet50 distilled from the public EfficientNet-Lite0 on its images), no label;
- (b) the same after split learning: the leader's :class:`~swarmfuse.extractors.split.leader.SplitLeader` and each
  site's :class:`~swarmfuse.extractors.split.site.TrainableExtractor`, exactly as a round with ``--split-epochs``
  runs them (in one process here: no network), the leader holding the labels of the training rows;
- (c) the reference extractors trained centrally with DC1's labels — a regime the vertical setting forbids.

For each, text-only, image-only and intermediate-fusion heads (:func:`swarmfuse.extractors.fusion.head.train_head`,
early-stopped on the validation rows) over several head seeds, scored on the aligned test rows. Prints a table
and ends with one line ``split a=<fused> b=<fused> c=<fused> best_single_a=<acc> best_single_b=<acc>``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def heads(blocks: dict[str, np.ndarray], y: np.ndarray, split: np.ndarray, n_classes: int,
          seeds: int) -> dict[str, float]:
    """Mean test accuracy over ``seeds`` of the text-only, image-only and intermediate-fusion heads."""
    from swarmfuse.extractors.fusion.head import train_head

    train, val, test = (split == "train"), (split == "val"), (split == "test")
    inputs = {"text": blocks["text"], "image": blocks["image"],
              "fused": np.concatenate([blocks["text"], blocks["image"]], axis=1)}
    out = {}
    for name, x in inputs.items():
        scores = []
        for seed in range(seeds):
            head = train_head(x[train], y[train], x[val], y[val], n_classes, seed)
            scores.append(float((head.predict_proba(x[test]).argmax(1) == y[test]).mean()))
        out[name] = round(float(np.mean(scores)), 4)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=8, help="split-learning epochs of regime (b)")
    parser.add_argument("--seeds", type=int, default=3, help="head seeds per score")
    parser.add_argument("--site-seed", type=int, default=0,
                        help="seed of the site extractors' training (another seed trains them cold, then caches)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)

    from swarmfuse.client.site.manifest import load_manifest
    from swarmfuse.client.site.training import label_free_image_bundle, label_free_text_bundle
    from swarmfuse.extractors.bundle import export_bundles, load_bundle
    from swarmfuse.extractors.data import PartitionConfig, fetch_emoji, partition
    from swarmfuse.extractors.split.leader import SplitLeader
    from swarmfuse.extractors.split.site import TrainableExtractor

    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="swarmfuse-bench-split-") as scratch:
        views = Path(scratch) / "views"
        partition(fetch_emoji(), views, PartitionConfig())
        texts = load_manifest(views / "dc2" / "texts.jsonl", "text")
        images = load_manifest(views / "dc3" / "images.jsonl", "image")
        labels = load_manifest(views / "dc1" / "labels.jsonl", "label")
        ids = sorted(set(texts.ids) & set(images.ids) & set(labels.ids))
        classes = sorted({row.value for row in labels.rows})
        y = np.array([classes.index(labels.row(i).value) for i in ids])
        split = np.array([labels.row(i).extra.get("split") or "train" for i in ids])
        values = {"text": [texts.row(i).value for i in ids], "image": [images.row(i).value for i in ids]}
        bases = {"text": None, "image": images.path.parent}

        start = time.perf_counter()
        own = {"text": label_free_text_bundle(texts, args.site_seed),
               "image": label_free_image_bundle(images, args.site_seed)}
        timings["site extractors (train or cache)"] = time.perf_counter() - start
        regime_a = {m: load_bundle(own[m]).extract(values[m], bases[m]) for m in own}

        start = time.perf_counter()
        sites = {m: TrainableExtractor(own[m], values[m], bases[m]) for m in own}
        leader = SplitLeader([sites["text"].bundle.feature_dim, sites["image"].bundle.feature_dim], len(classes))
        for epoch in range(1, args.epochs + 1):
            gradients = leader.epoch([sites["text"].features(), sites["image"].features()], y, split == "train")
            for site, gradient in zip((sites["text"], sites["image"]), gradients, strict=True):
                site.step(gradient, epoch=epoch)
        regime_b = {m: sites[m].features() for m in sites}
        timings[f"split learning, {args.epochs} epochs"] = time.perf_counter() - start

        start = time.perf_counter()
        reference = export_bundles(Path(scratch) / "reference")
        regime_c = {m: load_bundle(reference[m]).extract(values[m], bases[m]) for m in ("text", "image")}
        timings["reference extractors (train or cache)"] = time.perf_counter() - start

    results = {regime: heads(blocks, y, split, len(classes), args.seeds)
               for regime, blocks in (("a", regime_a), ("b", regime_b), ("c", regime_c))}
    n_test = int((split == "test").sum())
    print(f"{len(ids)} aligned entities, {n_test} of them test; head seeds 0..{args.seeds - 1}; "
          f"split epochs {args.epochs}; site extractors' seed {args.site_seed}", file=sys.stderr)
    print(f"{'regime':<58} {'text':>7} {'image':>7} {'fused':>7}")
    names = {"a": "(a) label-free site extractors", "b": f"(b) (a) after {args.epochs} split-learning epochs",
             "c": "(c) reference: trained with DC1's labels (forbidden)"}
    for regime, scores in results.items():
        print(f"{names[regime]:<58} {scores['text']:>7.4f} {scores['image']:>7.4f} {scores['fused']:>7.4f}")
    for what, seconds in timings.items():
        print(f"  {what}: {seconds:.0f} s", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "aligned": len(ids), "test": n_test,
                                               "epochs": args.epochs, "site_seed": args.site_seed,
                                               "seconds": timings}, indent=1))
    best = {r: max(results[r]["text"], results[r]["image"]) for r in ("a", "b")}
    print(f"split a={results['a']['fused']} b={results['b']['fused']} c={results['c']['fused']} "
          f"best_single_a={best['a']} best_single_b={best['b']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
