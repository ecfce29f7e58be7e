"""Intermediate fusion of text and image features, its baselines, and the evaluation report.

``FusionHead`` / ``train_head`` (:mod:`.head`), ``FeatureSet`` / ``run_methods`` / ``METHODS``
(:mod:`.methods`), ``write_report`` (:mod:`.report`); ``evaluate_fusion`` (:mod:`.evaluate`) drives
the pipeline and is imported from its module (it depends on :mod:`swarmfuse.extractors.pipeline`).
"""

import importlib

_EXPORTS = {
    **dict.fromkeys(("FusionHead", "HeadConfig", "train_head"), "swarmfuse.extractors.fusion.head"),
    **dict.fromkeys(("METHODS", "FeatureSet", "MethodRun", "run_methods"), "swarmfuse.extractors.fusion.methods"),
    **dict.fromkeys(("Score", "score", "write_report"), "swarmfuse.extractors.fusion.report"),
}

__all__ = ["METHODS", "FeatureSet", "FusionHead", "HeadConfig", "MethodRun", "Score", "run_methods", "score",
           "train_head", "write_report"]


def __getattr__(name: str) -> object:
    """Import the public names on first use, so importing the package (e.g. for the CLI) stays cheap."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
