"""Intermediate fusion of text and image features, its baselines, and the evaluation report.

``FusionHead`` / ``train_head`` (:mod:`.head`), ``FeatureSet`` / ``run_methods`` / ``METHODS``
(:mod:`.methods`), ``write_report`` (:mod:`.report`); ``evaluate_fusion`` (:mod:`.evaluate`) drives
the pipeline and is imported from its module (it depends on :mod:`swarmfuse.extractors.pipeline`).
"""

from swarmfuse.extractors.fusion.head import FusionHead, HeadConfig, train_head
from swarmfuse.extractors.fusion.methods import METHODS, FeatureSet, MethodRun, run_methods
from swarmfuse.extractors.fusion.report import Score, score, write_report

__all__ = ["METHODS", "FeatureSet", "FusionHead", "HeadConfig", "MethodRun", "Score", "run_methods", "score",
           "train_head", "write_report"]
