"""Signature policies: Fabric's policy language and its evaluation (greedy, one identity per principal)."""

from __future__ import annotations

import pytest
from engine_pki import member, pki
from fabric_protos.common import policies_pb2
from fabric_protos.msp import msp_principal_pb2

from swarmfuse.network.protocol.msp import Principal
from swarmfuse.network.protocol.policy import NOutOf, Policy, PolicyError, SignedBy, org_policies, parse


def who(org: str, role: str, cn: str = "") -> Principal:
    identity = member(org, role, cn)
    return Principal(identity.mspid, role, identity.cert)


DC1_PEER, DC2_PEER, DC3_PEER = who("dc1", "peer"), who("dc2", "peer"), who("dc3", "peer")
DC1_PEER_B = who("dc1", "peer", "peer1.dc1")
DC1_CLIENT, DC1_ADMIN = who("dc1", "client"), who("dc1", "admin")
AUDITOR_PEER = who("auditor", "peer")


def test_parse_gates_and_principals() -> None:
    policy = parse("OutOf(2, 'DC1MSP.peer', 'DC2MSP.peer', 'DC3MSP.peer')")
    assert policy.rule == NOutOf(2, (SignedBy("DC1MSP", "peer"), SignedBy("DC2MSP", "peer"), SignedBy("DC3MSP", "peer")))
    assert parse("AND('A.member', \"B.admin\")").rule == NOutOf(2, (SignedBy("A", "member"), SignedBy("B", "admin")))
    assert parse("  or( 'A.client' ) ").rule == NOutOf(1, (SignedBy("A", "client"),))
    nested = parse("OR('A.peer', AND('B.peer', OutOf(1, 'C.orderer', 'D.admin')))")
    assert nested.rule.rules[1] == NOutOf(2, (SignedBy("B", "peer"), NOutOf(1, (SignedBy("C", "orderer"), SignedBy("D", "admin")))))
    assert parse("OUTOF(1, 'org.with.dots-1.peer')").rule.rules[0] == SignedBy("org.with.dots-1", "peer")
    assert str(parse("AND('A.peer', 'B.peer')")) == "OutOf(2, 'A.peer', 'B.peer')"


@pytest.mark.parametrize("text", [
    "", "'A.peer'", "AND()", "OutOf(, 'A.peer')", "OutOf(3, 'A.peer')", "OutOf(-1, 'A.peer')",
    "AND('A.superuser')", "AND('Apeer')", "NOT('A.peer')", "AND('A.peer'", "AND('A.peer') extra",
    "AND('A.peer',)", "AND(A.peer)", "OutOf('1', 'A.peer')", "AND('A.peer') ; OR('B.peer')",
])
def test_invalid_policies_are_refused(text: str) -> None:
    with pytest.raises(PolicyError):
        parse(text)


def test_out_of_may_ask_one_more_than_its_rules_and_then_never_holds() -> None:
    policy = parse("OutOf(2, 'A.peer')")
    assert not policy.satisfied_by([Principal("A", "peer")])
    assert parse("OutOf(0, 'A.peer')").satisfied_by([])


def test_majority_of_dc_peers() -> None:
    policy = parse(pki().channel().chaincode.endorsement_policy)  # type: ignore[union-attr]
    assert policy.satisfied_by([DC1_PEER, DC2_PEER])
    assert policy.satisfied_by([DC3_PEER, AUDITOR_PEER, DC2_PEER])
    assert not policy.satisfied_by([DC1_PEER])
    assert not policy.satisfied_by([DC1_PEER, AUDITOR_PEER])
    assert not policy.satisfied_by([DC1_PEER, DC1_CLIENT, DC1_ADMIN])
    assert not policy.satisfied_by([])


def test_one_identity_counts_once() -> None:
    both = parse("AND('DC1MSP.peer', 'DC1MSP.peer')")
    assert not both.satisfied_by([DC1_PEER, DC1_PEER])
    assert both.satisfied_by([DC1_PEER, DC1_PEER_B])
    assert not parse("OutOf(2, 'DC1MSP.peer', 'DC2MSP.peer')").satisfied_by([DC1_PEER, DC1_PEER, DC1_PEER])


def test_one_identity_satisfies_at_most_one_principal() -> None:
    assert not parse("AND('DC1MSP.member', 'DC1MSP.peer')").satisfied_by([DC1_PEER])
    assert parse("AND('DC1MSP.member', 'DC1MSP.peer')").satisfied_by([DC1_CLIENT, DC1_PEER])


def test_evaluation_is_fabrics_greedy_order() -> None:
    """cauthdsl gives each rule the first unused signer that fits: the order of signers matters."""
    policy = parse("AND('DC1MSP.member', 'DC1MSP.peer')")
    assert not policy.satisfied_by([DC1_PEER, DC1_CLIENT])  # member takes the peer, nothing left for .peer
    assert policy.satisfied_by([DC1_CLIENT, DC1_PEER])


def test_gates_evaluate_every_rule_and_keep_what_they_used() -> None:
    """An OR uses a signer for each of its rules that holds (no short cut), so the outer AND lacks one."""
    policy = parse("AND(OR('DC1MSP.member', 'DC1MSP.peer'), 'DC1MSP.member')")
    assert not policy.satisfied_by([DC1_CLIENT, DC1_PEER])
    assert parse("AND(OR('DC1MSP.peer', 'DC2MSP.peer'), 'DC1MSP.member')").satisfied_by([DC1_PEER, DC1_CLIENT])


def test_a_failed_rule_gives_its_signers_back() -> None:
    policy = parse("OR(AND('DC1MSP.peer', 'DC2MSP.peer'), AND('DC1MSP.peer', 'DC3MSP.peer'))")
    assert policy.satisfied_by([DC1_PEER, DC3_PEER])


def test_planning_principals_without_certificates() -> None:
    policy = parse("OutOf(2, 'DC1MSP.peer', 'DC2MSP.peer', 'DC3MSP.peer')")
    assert policy.satisfied_by([Principal("DC1MSP", "peer"), Principal("DC3MSP", "peer")])
    assert policy.mentions("DC2MSP") and not policy.mentions("AuditorMSP")
    assert policy.mspids == {"DC1MSP", "DC2MSP", "DC3MSP"}


def test_envelope_matches_fabrics_policydsl_layout() -> None:
    """Fabric numbers the principals of nested gates before those of the enclosing gate."""
    envelope = parse("OutOf(1, 'A.peer', AND('B.peer', 'C.admin'))").to_envelope()
    roles = [msp_principal_pb2.MSPRole.FromString(i.principal) for i in envelope.identities]
    assert [(r.msp_identifier, r.role) for r in roles] == [
        ("B", msp_principal_pb2.MSPRole.PEER), ("C", msp_principal_pb2.MSPRole.ADMIN), ("A", msp_principal_pb2.MSPRole.PEER),
    ]
    assert envelope.version == 0
    top = envelope.rule.n_out_of
    assert top.n == 1 and top.rules[0].signed_by == 2
    assert [r.signed_by for r in top.rules[1].n_out_of.rules] == [0, 1] and top.rules[1].n_out_of.n == 2


def test_envelope_round_trip() -> None:
    for text in ("OutOf(2, 'DC1MSP.peer', 'DC2MSP.peer', 'DC3MSP.peer')", "OR('A.member', AND('B.client', 'C.orderer'))"):
        policy = parse(text)
        assert Policy.from_envelope(policy.to_envelope()) == policy
        assert Policy.from_envelope(policy.to_envelope().SerializeToString()) == policy


def test_bad_envelopes_are_refused() -> None:
    good = parse("OR('A.peer')").to_envelope()
    with pytest.raises(PolicyError, match="version"):
        Policy.from_envelope(policies_pb2.SignaturePolicyEnvelope(version=1, rule=good.rule, identities=good.identities))
    with pytest.raises(PolicyError, match="out of range"):
        Policy.from_envelope(policies_pb2.SignaturePolicyEnvelope(rule=good.rule))
    ou = msp_principal_pb2.MSPPrincipal(principal_classification=msp_principal_pb2.MSPPrincipal.ORGANIZATION_UNIT)
    with pytest.raises(PolicyError, match="role principal"):
        Policy.from_envelope(policies_pb2.SignaturePolicyEnvelope(rule=good.rule, identities=[ou]))
    with pytest.raises(PolicyError):
        Policy.from_envelope(b"\xff\xff")
    with pytest.raises(PolicyError, match="empty"):
        Policy.from_envelope(policies_pb2.SignaturePolicyEnvelope(identities=good.identities))


def test_org_policies_follow_configtx() -> None:
    channel = pki().channel()
    dc1, auditor = channel.orgs[0], channel.orgs[3]
    assert org_policies(dc1).writers.satisfied_by([DC1_CLIENT])
    assert org_policies(dc1).writers.satisfied_by([DC1_ADMIN])
    assert not org_policies(dc1).writers.satisfied_by([DC1_PEER])
    assert org_policies(dc1).readers.satisfied_by([DC1_PEER])
    assert org_policies(dc1).endorsement is not None and org_policies(dc1).endorsement.satisfied_by([DC1_PEER])
    auditor_client, auditor_admin = who("auditor", "client"), who("auditor", "admin")
    assert not org_policies(auditor).writers.satisfied_by([auditor_client])
    assert org_policies(auditor).writers.satisfied_by([auditor_admin])
    assert org_policies(auditor).readers.satisfied_by([auditor_client])
    orderer = org_policies(channel.orderer_org)
    assert orderer.writers.satisfied_by([who("orderer", "orderer")]) and orderer.endorsement is None
    assert not orderer.writers.satisfied_by([DC1_CLIENT])
