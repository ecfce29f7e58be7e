"""Fusion accuracy of the three extractor regimes on the emoji data, on the same aligned test entities.

The main job's views (DC1 labels with splits, DC2 texts, DC3 images; ``swarmfuse data partition``) and their
aligned entities (those all three hold), scored by
:func:`swarmfuse.client.demo.local_regimes.evaluate_regimes`, the implementation ``swarmfuse fuse evaluate``
runs too. Regimes:

- (a) label-free site extractors: each feature site's own (``site extractor train``: the AWD-LSTM language model on
  the public corpus and its texts; ResNet50 distilled from the public EfficientNet-Lite0 on its images), no label;
- (b) the same after split learning: :func:`swarmfuse.extractors.split.simulation.simulate_split_learning` runs the
  leader's :class:`~swarmfuse.extractors.split.leader.SplitLeader` and each site's
  :class:`~swarmfuse.extractors.split.site.TrainableExtractor` as a round with ``--split-epochs`` runs them (in one
  process here: no network), the leader holding the labels of the training rows; the fine-tuned extractors are
  exported as bundles, as a round exports them;
- (c) the reference extractors trained centrally with DC1's labels — a regime the vertical setting forbids.

For each, every fusion method's head (text-only, image-only and intermediate fusion among them), early-stopped on
the validation rows, mean test accuracy over several head seeds on the aligned test rows. Prints a table of
text-only, image-only and fused (intermediate) accuracy and ends with one line
``split a=<fused> b=<fused> c=<fused> best_single_a=<acc> best_single_b=<acc>``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

COLUMNS = {"text": "text_only", "image": "image_only", "fused": "intermediate"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=8, help="split-learning epochs of regime (b)")
    parser.add_argument("--seeds", type=int, default=3, help="head seeds per score")
    parser.add_argument("--site-seed", type=int, default=0,
                        help="seed of the site extractors' training (another seed trains them cold, then caches)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")

    from swarmfuse.client.demo.local_regimes import check_request, evaluate_regimes, main_job_views

    try:
        check_request(("a", "b", "c"), args.epochs)
    except ValueError as exc:
        parser.error(str(exc))
    with tempfile.TemporaryDirectory(prefix="swarmfuse-bench-split-") as scratch:
        try:
            views = main_job_views(Path(scratch) / "views")
            evaluation = evaluate_regimes(views, ("a", "b", "c"), Path(scratch), split_epochs=args.epochs,
                                          seed=args.site_seed, head_seeds=range(args.seeds))
        except ValueError as exc:
            parser.error(str(exc))

    results = {regime: {column: scores.methods[method]["accuracy"] for column, method in COLUMNS.items()}
               for regime, scores in evaluation.regimes.items()}
    n_test = evaluation.entities["test"]
    print(f"{len(views.ids)} aligned entities, {n_test} of them test; head seeds 0..{args.seeds - 1}; "
          f"split epochs {args.epochs}; site extractors' seed {args.site_seed}", file=sys.stderr)
    print(f"{'regime':<58} {'text':>7} {'image':>7} {'fused':>7}")
    names = {"a": "(a) label-free site extractors", "b": f"(b) (a) after {args.epochs} split-learning epochs",
             "c": "(c) reference: trained with DC1's labels (forbidden)"}
    for regime, scores in results.items():
        print(f"{names[regime]:<58} {scores['text']:>7.4f} {scores['image']:>7.4f} {scores['fused']:>7.4f}")
    for what, seconds in evaluation.seconds.items():
        print(f"  {what}: {seconds:.0f} s", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "aligned": len(views.ids), "test": n_test,
                                               "epochs": args.epochs, "site_seed": args.site_seed,
                                               "seconds": evaluation.seconds, "evaluation": evaluation.to_json()},
                                              indent=1))
    best = {r: max(results[r]["text"], results[r]["image"]) for r in ("a", "b")}
    print(f"split a={results['a']['fused']} b={results['b']['fused']} c={results['c']['fused']} "
          f"best_single_a={best['a']} best_single_b={best['b']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
