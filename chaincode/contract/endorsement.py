"""Key-level endorsement policies a contract gives the keys it writes (Fabric's state-based endorsement).

A policy is a serialized ``SignaturePolicyEnvelope`` over peer roles, the form Fabric's validator reads
from a key's ``VALIDATION_PARAMETER`` metadata. Fabric evaluates it as it evaluates every signature
policy: one endorser satisfies at most one principal, so "the owner and a majority" is written as the
owner's peer AND enough *other* peers to make the majority with it.
"""

from __future__ import annotations

from collections.abc import Iterable

from fabric_protos.common import policies_pb2
from fabric_protos.msp import msp_principal_pb2


def _peer(mspid: str) -> msp_principal_pb2.MSPPrincipal:
    role = msp_principal_pb2.MSPRole(msp_identifier=mspid, role=msp_principal_pb2.MSPRole.PEER)
    return msp_principal_pb2.MSPPrincipal(
        principal_classification=msp_principal_pb2.MSPPrincipal.ROLE, principal=role.SerializeToString()
    )


def _signed_by(index: int) -> policies_pb2.SignaturePolicy:
    return policies_pb2.SignaturePolicy(signed_by=index)


def _out_of(n: int, rules: list[policies_pb2.SignaturePolicy]) -> policies_pb2.SignaturePolicy:
    return policies_pb2.SignaturePolicy(n_out_of=policies_pb2.SignaturePolicy.NOutOf(n=n, rules=rules))


def owner_and_majority(owner: str, orgs: Iterable[str]) -> bytes:
    """``AND('<owner>.peer', OutOf(k - 1, other orgs' peers))`` with ``k`` a majority (more than half) of
    ``orgs`` and the owner: no set of other orgs can write the key, and the owner cannot write it alone."""
    others = sorted(set(orgs) - {owner})
    majority = (len(others) + 1) // 2 + 1
    identities = [_peer(owner), *(_peer(org) for org in others)]
    rules = [_signed_by(0)]
    if majority > 1:
        rules.append(_out_of(majority - 1, [_signed_by(i) for i in range(1, len(identities))]))
    envelope = policies_pb2.SignaturePolicyEnvelope(version=0, rule=_out_of(len(rules), rules), identities=identities)
    return envelope.SerializeToString()
