"""Fabric signature policies: the policy language (``common/policydsl``) and their evaluation
(``common/cauthdsl``), plus the org policies our channels use (``network/configtx.py``).

Evaluation is Fabric's, step for step: signers are de-duplicated (one identity counts once), then
each ``NOutOf`` gate evaluates all its rules in order, each rule greedily taking the first unused
signer that satisfies it; a rule that succeeds keeps the signers it used, one that fails gives them
back. A signer therefore satisfies at most one principal of a policy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from fabric_protos.common import policies_pb2
from fabric_protos.msp import msp_principal_pb2
from google.protobuf.message import DecodeError

from swarmfuse.errors import SwarmfuseError
from swarmfuse.network.protocol.model import OrgDefinition, OrgKind
from swarmfuse.network.protocol.msp import POLICY_ROLES, Principal

_PRINCIPAL = re.compile(r"^([A-Za-z0-9.-]+)\.(" + "|".join(POLICY_ROLES) + r")$")
_TOKEN = re.compile(
    r"\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<number>\d+)|'(?P<sq>[^']*)'|\"(?P<dq>[^\"]*)\"|(?P<punct>[(),]))"
)
_GATES = {"AND": "and", "And": "and", "and": "and", "OR": "or", "Or": "or", "or": "or",
          "OUTOF": "outof", "OutOf": "outof", "outof": "outof"}
_ROLE_TO_PROTO = {
    "member": msp_principal_pb2.MSPRole.MEMBER,
    "admin": msp_principal_pb2.MSPRole.ADMIN,
    "client": msp_principal_pb2.MSPRole.CLIENT,
    "peer": msp_principal_pb2.MSPRole.PEER,
    "orderer": msp_principal_pb2.MSPRole.ORDERER,
}
_PROTO_TO_ROLE = {v: k for k, v in _ROLE_TO_PROTO.items()}


class PolicyError(SwarmfuseError, ValueError):
    """A policy text or envelope that is not a valid signature policy."""


@dataclass(frozen=True)
class SignedBy:
    """The principal ``'<mspid>.<role>'``."""

    mspid: str
    role: str

    def __str__(self) -> str:
        return f"'{self.mspid}.{self.role}'"


@dataclass(frozen=True)
class NOutOf:
    """At least ``n`` of ``rules`` (``AND`` is n = all, ``OR`` is n = 1)."""

    n: int
    rules: tuple[Rule, ...]

    def __str__(self) -> str:
        return f"OutOf({self.n}, " + ", ".join(str(r) for r in self.rules) + ")"


Rule = SignedBy | NOutOf


def _principals(rule: Rule) -> Iterator[SignedBy]:
    if isinstance(rule, SignedBy):
        yield rule
    else:
        for sub in rule.rules:
            yield from _principals(sub)


def _evaluate(rule: Rule, signers: list[Principal], used: list[bool]) -> bool:
    if isinstance(rule, SignedBy):
        for i, signer in enumerate(signers):
            if not used[i] and signer.satisfies(rule.mspid, rule.role):
                used[i] = True
                return True
        return False
    verified = 0
    for sub in rule.rules:
        trial = list(used)
        if _evaluate(sub, signers, trial):
            verified += 1
            used[:] = trial
    return verified >= rule.n


def dedupe(principals: Iterable[Principal]) -> list[Principal]:
    """Signers with each identity once (first occurrence kept); principals without a certificate all kept."""
    seen: set[tuple[str, bytes]] = set()
    unique = []
    for principal in principals:
        key = principal.key
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        unique.append(principal)
    return unique


@dataclass(frozen=True)
class Policy:
    """A parsed signature policy."""

    rule: Rule

    def __str__(self) -> str:
        return str(self.rule)

    def satisfied_by(self, principals: Iterable[Principal]) -> bool:
        """Whether these (already verified) signers satisfy the policy, by Fabric's rules."""
        signers = dedupe(principals)
        return _evaluate(self.rule, signers, [False] * len(signers))

    @property
    def mspids(self) -> frozenset[str]:
        """Every MSP ID a principal of the policy names."""
        return frozenset(p.mspid for p in _principals(self.rule))

    def mentions(self, mspid: str) -> bool:
        return mspid in self.mspids

    def to_envelope(self) -> policies_pb2.SignaturePolicyEnvelope:
        """The ``SignaturePolicyEnvelope`` Fabric's ``policydsl.FromString`` builds for this policy
        (one identity per principal occurrence, nested gates numbered before their parent's principals)."""
        identities: list[msp_principal_pb2.MSPPrincipal] = []

        def build(rule: Rule) -> policies_pb2.SignaturePolicy:
            if isinstance(rule, SignedBy):
                role = msp_principal_pb2.MSPRole(msp_identifier=rule.mspid, role=_ROLE_TO_PROTO[rule.role])
                identities.append(msp_principal_pb2.MSPPrincipal(
                    principal_classification=msp_principal_pb2.MSPPrincipal.ROLE, principal=role.SerializeToString()
                ))
                return policies_pb2.SignaturePolicy(signed_by=len(identities) - 1)
            built = {i: build(sub) for i, sub in enumerate(rule.rules) if isinstance(sub, NOutOf)}
            built |= {i: build(sub) for i, sub in enumerate(rule.rules) if isinstance(sub, SignedBy)}
            rules = [built[i] for i in range(len(rule.rules))]
            return policies_pb2.SignaturePolicy(n_out_of=policies_pb2.SignaturePolicy.NOutOf(n=rule.n, rules=rules))

        rule = build(self.rule)
        return policies_pb2.SignaturePolicyEnvelope(version=0, rule=rule, identities=identities)

    @classmethod
    def from_envelope(cls, envelope: policies_pb2.SignaturePolicyEnvelope | bytes) -> Policy:
        """A policy from a ``SignaturePolicyEnvelope`` whose identities are all MSP role principals."""
        if isinstance(envelope, bytes):
            try:
                envelope = policies_pb2.SignaturePolicyEnvelope.FromString(envelope)
            except DecodeError as exc:
                raise PolicyError(f"not a SignaturePolicyEnvelope: {exc}") from exc
        if envelope.version != 0:
            raise PolicyError(f"only version 0 signature policies are understood, got {envelope.version}")
        principals = []
        for index, identity in enumerate(envelope.identities):
            if identity.principal_classification != msp_principal_pb2.MSPPrincipal.ROLE:
                raise PolicyError(f"identity {index} of the policy is not an MSP role principal")
            try:
                role = msp_principal_pb2.MSPRole.FromString(identity.principal)
            except DecodeError as exc:
                raise PolicyError(f"identity {index} of the policy is not an MSPRole: {exc}") from exc
            if role.role not in _PROTO_TO_ROLE:
                raise PolicyError(f"identity {index} of the policy has an unknown role {role.role}")
            principals.append(SignedBy(role.msp_identifier, _PROTO_TO_ROLE[role.role]))

        def convert(rule: policies_pb2.SignaturePolicy) -> Rule:
            kind = rule.WhichOneof("Type")
            if kind == "signed_by":
                if not 0 <= rule.signed_by < len(principals):
                    raise PolicyError(f"identity index out of range, requested {rule.signed_by}, "
                                      f"but identities length is {len(principals)}")
                return principals[rule.signed_by]
            if kind == "n_out_of":
                return NOutOf(rule.n_out_of.n, tuple(convert(r) for r in rule.n_out_of.rules))
            raise PolicyError("empty policy element")

        if not envelope.HasField("rule"):
            raise PolicyError("empty policy element")
        return cls(convert(envelope.rule))


# --- the policy language -------------------------------------------------------------------------

def _tokens(text: str) -> list[tuple[str, str]]:
    tokens = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise PolicyError(f"unexpected character {text[pos:].lstrip()[:1]!r} at offset {pos} in policy {text!r}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        tokens.append(("string" if kind in ("sq", "dq") else kind, value))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0

    def fail(self, message: str) -> PolicyError:
        return PolicyError(f"{message} in policy {self.text!r}")

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, kind: str, value: str | None = None) -> str:
        token = self.peek()
        if token is None or token[0] != kind or (value is not None and token[1] != value):
            found = "the end" if token is None else repr(token[1])
            raise self.fail(f"expected {value or kind}, found {found}")
        self.pos += 1
        return token[1]

    def gate(self) -> NOutOf:
        name = self.take("name")
        gate = _GATES.get(name)
        if gate is None:
            raise self.fail(f"unrecognized token '{name}'")
        self.take("punct", "(")
        n: int | None = None
        if gate == "outof":
            token = self.peek()
            if token is None or token[0] != "number":
                raise self.fail("OutOf needs a number of required rules first")
            n = int(self.take("number"))
            self.take("punct", ",")
        rules = [self.argument()]
        while self.peek() == ("punct", ","):
            self.pos += 1
            rules.append(self.argument())
        self.take("punct", ")")
        if gate == "and":
            n = len(rules)
        elif gate == "or":
            n = 1
        assert n is not None
        if n > len(rules) + 1:  # Fabric's bound: n may be one more than the rules (never satisfiable)
            raise self.fail(f"invalid t-out-of-n predicate, t {n}, n {len(rules)}")
        return NOutOf(n, tuple(rules))

    def argument(self) -> Rule:
        token = self.peek()
        if token is not None and token[0] == "string":
            self.pos += 1
            match = _PRINCIPAL.match(token[1])
            if match is None:
                raise self.fail(f"error parsing principal {token[1]!r} (expected '<MSPID>.<{'|'.join(POLICY_ROLES)}>')")
            return SignedBy(match.group(1), match.group(2))
        return self.gate()

    def policy(self) -> Policy:
        if not self.tokens:
            raise self.fail("empty policy")
        rule = self.gate()
        if self.peek() is not None:
            raise self.fail(f"unexpected {self.peek()[1]!r} after the policy")  # type: ignore[index]
        return Policy(rule)


def parse(text: str) -> Policy:
    """Parse ``OutOf(n, 'A.peer', ...)``, ``AND(...)``, ``OR(...)`` (nested; roles member, admin, client,
    peer, orderer) as Fabric's ``policydsl.FromString`` does; :class:`PolicyError` when invalid."""
    return _Parser(text).policy()


# --- the org policies of our channels (network/configtx.py) --------------------------------------

@dataclass(frozen=True)
class OrgPolicies:
    """An org's Readers, Writers, Admins and (peer orgs only) Endorsement policies."""

    readers: Policy
    writers: Policy
    admins: Policy
    endorsement: Policy | None


def org_policy_rules(mspid: str, kind: OrgKind) -> dict[str, str]:
    """The one table of an org's signature policies (``Readers``, ``Writers``, ``Admins`` and, for peer orgs,
    ``Endorsement``) that channels are made with, on both engines: the auditor's Writers is its admin only
    (only it runs the chaincode lifecycle), the orderer org's Readers and Writers are any member."""
    m = mspid
    if kind == "orderer":
        return {"Readers": f"OR('{m}.member')", "Writers": f"OR('{m}.member')", "Admins": f"OR('{m}.admin')"}
    return {
        "Readers": f"OR('{m}.admin', '{m}.peer', '{m}.client')",
        "Writers": f"OR('{m}.admin')" if kind == "auditor" else f"OR('{m}.admin', '{m}.client')",
        "Admins": f"OR('{m}.admin')",
        "Endorsement": f"OR('{m}.peer')",
    }


def org_policies(org: OrgDefinition) -> OrgPolicies:
    """The policies :func:`org_policy_rules` gives ``org``, parsed."""
    rules = {name: parse(rule) for name, rule in org_policy_rules(org.mspid, org.kind).items()}
    return OrgPolicies(readers=rules["Readers"], writers=rules["Writers"], admins=rules["Admins"],
                       endorsement=rules.get("Endorsement"))
