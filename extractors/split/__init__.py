"""Split learning of the feature sites' extractors (vertical federated learning with gradient exchange, as SplitNN
does), one exchange per epoch.

Each epoch a feature site sends the features of the round's aligned rows from its current extractor; the leader,
who holds the labels, trains the fusion head a pass on them and sends back, per training row, the gradient of the
loss with respect to that site's features (:class:`~swarmfuse.extractors.split.leader.SplitLeader`); the site
then moves its extractor's trainable top towards features one normalised gradient step away
(:class:`~swarmfuse.extractors.split.site.TrainableExtractor`). Gradients carry label information to the sites
that receive them: a site learns, row by row, in which direction the leader's loss wants its features to move.
"""

from swarmfuse.extractors.split.config import SplitConfig

__all__ = ["SplitConfig"]
