"""What the parameters format and the merges refuse, one type per problem; all descend from
:class:`~swarmfuse.errors.SwarmfuseError` (and ``ValueError``: each is bad input, never a bug)."""

from __future__ import annotations

from swarmfuse.errors import SwarmfuseError


class ParametersError(SwarmfuseError, ValueError):
    """A set of parameters that cannot be written or read."""


class NotParametersError(ParametersError):
    """The bytes are not a parameters file: wrong magic, a malformed or oversized header, the wrong length."""


class UnsupportedArrayError(ParametersError):
    """An array that is not a float16/32/64 array (objects, integers, strings...), or a name the format refuses."""


class NonFiniteError(ParametersError):
    """An array holding NaN or infinity."""


class MergeError(SwarmfuseError, ValueError):
    """A merge that cannot be computed from what it was given."""


class NoMembersError(MergeError):
    """A merge of nobody."""


class WeightsError(MergeError):
    """Weights that are missing, zero, negative, not integers, or not for exactly the merged orgs."""


class UnknownMethodError(MergeError):
    """A merge method this module does not compute."""


class MismatchedMembersError(MergeError):
    """Members whose parameters differ in names, dtypes or shapes."""


class MergeVerificationError(MergeError):
    """A recomputed merge that does not match its description (other orgs, other inputs or another result)."""
