"""Channel MSPs: identities validated as Fabric's X.509 MSP with NodeOUs does, low-S signatures only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from engine_pki import NOW, Member, clock, member, pki
from fabric_protos.msp.identities_pb2 import SerializedIdentity

from swarmfuse.network.protocol.msp import ChannelMSPs, IdentityRejected, Principal, verify_signature


@pytest.fixture(scope="module")
def msps() -> ChannelMSPs:
    channel = pki().channel()
    return ChannelMSPs((*channel.orgs, channel.orderer_org), clock=clock)


def rejected(msps: ChannelMSPs, serialized: bytes) -> IdentityRejected:
    with pytest.raises(IdentityRejected) as info:
        msps.identify(serialized)
    return info.value


@pytest.mark.parametrize(("org", "role", "mspid"), [
    ("dc1", "client", "DC1MSP"), ("dc2", "peer", "DC2MSP"), ("dc3", "admin", "DC3MSP"),
    ("auditor", "client", "AuditorMSP"), ("orderer", "orderer", "OrdererMSP"),
])
def test_roles_come_from_the_node_ou(msps: ChannelMSPs, org: str, role: str, mspid: str) -> None:
    identity = member(org, role)
    principal = msps.identify(identity.serialized)
    assert (principal.mspid, principal.role) == (mspid, role)
    assert principal.cert == identity.cert
    assert principal.satisfies(mspid, role) and principal.satisfies(mspid, "member")
    assert not principal.satisfies("DC9MSP", role)


def test_other_roles_are_not_satisfied(msps: ChannelMSPs) -> None:
    peer = msps.identify(member("dc1", "peer").serialized)
    assert not peer.satisfies("DC1MSP", "client") and not peer.satisfies("DC1MSP", "admin")


def test_unknown_msp_is_refused(msps: ChannelMSPs) -> None:
    outsider = member("outsider", "client")
    error = rejected(msps, outsider.serialized)
    assert "OutsiderMSP" in str(error) and "not defined" in str(error) and error.mspid is None


def test_certificate_from_another_ca_is_refused(msps: ChannelMSPs) -> None:
    impostor = pki().outsider.issue("peer0.dc1", ("peer",), mspid="DC1MSP")
    error = rejected(msps, impostor.serialized)
    assert "unknown authority" in str(error) and error.mspid is None  # Fabric: a deserialization failure


def test_certificate_of_another_channel_org_is_refused_under_a_wrong_msp(msps: ChannelMSPs) -> None:
    dc2_cert_as_dc1 = SerializedIdentity(mspid="DC1MSP", id_bytes=member("dc2", "peer").pem).SerializeToString()
    assert "unknown authority" in str(rejected(msps, dc2_cert_as_dc1))


def test_ca_certificate_is_refused_as_identity(msps: ChannelMSPs) -> None:
    root = SerializedIdentity(mspid="DC1MSP", id_bytes=pki().dc1.cert.public_bytes(serialization.Encoding.PEM))
    assert "Certificate Authority" in str(rejected(msps, root.SerializeToString()))
    sub_ca = pki().dc1.issue("sub.dc1", ("client",), ca=True)
    assert "Certificate Authority" in str(rejected(msps, sub_ca.serialized))


def test_expired_and_not_yet_valid_certificates_are_refused(msps: ChannelMSPs) -> None:
    expired = pki().dc1.issue("old.dc1", ("client",), not_before=NOW - timedelta(days=30), not_after=NOW - timedelta(days=1))
    assert "expired" in str(rejected(msps, expired.serialized))
    future = pki().dc1.issue("new.dc1", ("client",), not_before=NOW + timedelta(days=1))
    assert "not valid before" in str(rejected(msps, future.serialized))


def test_a_certificate_that_starts_before_its_ca_is_refused(msps: ChannelMSPs) -> None:
    """Fabric verifies the chain at the certificate's own start plus one second, not now: a certificate
    backdated before its CA's start is refused although both are valid now (a deserialization failure)."""
    backdated = pki().dc1.issue("early.dc1", ("client",), not_before=NOW - timedelta(days=400))
    error = rejected(msps, backdated.serialized)
    assert "expired or is not yet valid" in str(error) and error.mspid is None


@pytest.mark.parametrize(("usages", "accepted"), [
    ((), True), ((ExtendedKeyUsageOID.SERVER_AUTH,), True), ((ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,), True),
    ((ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH), True),
    ((ExtendedKeyUsageOID.CLIENT_AUTH,), False), ((ExtendedKeyUsageOID.CODE_SIGNING,), False),
])
def test_extended_key_usages_must_allow_server_authentication(msps: ChannelMSPs, usages: tuple, accepted: bool) -> None:
    """Fabric's MSP verifies the chain with Go's default key usage, server authentication: a signing
    certificate limited to other usages (e.g. TLS client authentication only) is refused."""
    identity = pki().dc1.issue("eku.dc1", ("client",), extended=usages)
    if accepted:
        assert msps.identify(identity.serialized).role == "client"
    else:
        error = rejected(msps, identity.serialized)
        assert "incompatible key usage" in str(error) and error.mspid is None


def test_expiry_is_checked_again_for_a_cached_identity() -> None:
    now = [NOW]
    channel = pki().channel()
    msps = ChannelMSPs(channel.orgs, clock=lambda: now[0])
    identity = pki().dc1.issue("short.dc1", ("client",), not_after=NOW + timedelta(hours=1))
    assert msps.identify(identity.serialized).role == "client"
    now[0] = NOW + timedelta(hours=2)
    assert "expired" in str(rejected(msps, identity.serialized))


@pytest.mark.parametrize("ous", [(), ("engineering",), ("client", "peer"), ("client", "client")])
def test_identity_needs_exactly_one_node_ou(msps: ChannelMSPs, ous: tuple[str, ...]) -> None:
    identity = pki().dc1.issue("odd.dc1", ous)
    error = rejected(msps, identity.serialized)
    assert "OU" in str(error) and error.mspid == "DC1MSP"


def test_extra_non_role_ous_are_fine(msps: ChannelMSPs) -> None:
    identity = pki().dc1.issue("dept.dc1", ("client", "engineering"))
    assert msps.identify(identity.serialized).role == "client"


def test_malformed_identities_are_refused(msps: ChannelMSPs) -> None:
    assert "SerializedIdentity" in str(rejected(msps, b"\xff\xff not a proto"))
    bad_pem = SerializedIdentity(mspid="DC1MSP", id_bytes=b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    assert "PEM" in str(rejected(msps, bad_pem.SerializeToString()))


def test_only_p256_keys_are_accepted(msps: ChannelMSPs) -> None:
    identity = pki().dc1.issue("p384.dc1", ("client",), key=ec.generate_private_key(ec.SECP384R1()))
    assert "P-256" in str(rejected(msps, identity.serialized))


def test_channel_config_errors() -> None:
    channel = pki().channel()
    with pytest.raises(ValueError, match="defined twice"):
        ChannelMSPs((channel.orgs[0], channel.orgs[0]))
    leaf_as_ca = member("dc1", "client").pem
    org = channel.orgs[0]
    with pytest.raises(ValueError, match="not a CA"):
        ChannelMSPs([type(org)(org.name, org.mspid, org.kind, (leaf_as_ca,), ())])


def test_signatures_verify_only_when_low_s(msps: ChannelMSPs) -> None:
    identity: Member = member("dc1", "client")
    message = b"a proposal"
    assert msps.verify(identity.serialized, message, identity.sign(message))
    assert not msps.verify(identity.serialized, message, identity.sign_high_s(message))
    assert not msps.verify(identity.serialized, b"another proposal", identity.sign(message))
    assert not msps.verify(identity.serialized, message, b"\x30\x02garbage")
    assert not msps.verify(identity.serialized, message, b"")
    other = member("dc2", "client")
    assert not msps.verify(identity.serialized, message, other.sign(message))


def test_verify_is_false_for_a_refused_identity(msps: ChannelMSPs) -> None:
    outsider = member("outsider", "client")
    assert not msps.verify(outsider.serialized, b"m", outsider.sign(b"m"))


def test_verify_signature_refuses_zero_and_out_of_range_values() -> None:
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    key = member("dc1", "client").cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert not verify_signature(key, b"m", encode_dss_signature(0, 1))
    assert not verify_signature(key, b"m", encode_dss_signature(1, 0))


def test_identity_key_deduplicates_the_same_certificate() -> None:
    cert = member("dc1", "peer").cert
    assert Principal("DC1MSP", "peer", cert).key == Principal("DC1MSP", "peer", cert).key
    assert Principal("DC1MSP", "peer", cert).key != Principal("DC1MSP", "peer", member("dc1", "client").cert).key
    assert Principal("DC1MSP", "peer").key is None
    assert isinstance(cert, x509.Certificate)
