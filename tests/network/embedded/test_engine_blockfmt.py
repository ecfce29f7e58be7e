"""Fabric block format of the embedded engine: header DER and hashes, orderer signature, validation
filter, and the genesis (config) block built from a channel definition and read back."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import replace

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.x509.oid import NameOID
from fabric_protos.common import common_pb2, configtx_pb2, configuration_pb2, policies_pb2
from fabric_protos.msp import identities_pb2, msp_config_pb2, msp_principal_pb2
from fabric_protos.orderer import configuration_pb2 as orderer_config_pb2
from fabric_protos.peer import configuration_pb2 as peer_config_pb2

from swarmfuse.network.protocol import blockfmt
from swarmfuse.network.protocol.durations import go_duration, parse_go_duration
from swarmfuse.network.protocol.model import ChaincodeDefinition, ChannelDefinition, OrgDefinition

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


# --- keys and certificates -------------------------------------------------------------------------


def _ca_cert(common_name: str, key: ec.EllipticCurvePrivateKey) -> bytes:
    name = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, common_name.split(".", 1)[1]),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def _org(name: str, kind: str, endpoints: tuple[str, ...]) -> OrgDefinition:
    domain = f"{name.lower()}.swarmfuse.local"
    return OrgDefinition(
        name=name, mspid=f"{name}MSP", kind=kind,  # type: ignore[arg-type]
        ca_certs=(_ca_cert(f"ca.{domain}", ec.generate_private_key(ec.SECP256R1())),),
        tls_ca_certs=(_ca_cert(f"tlsca.{domain}", ec.generate_private_key(ec.SECP256R1())),),
        endpoints=endpoints,
    )


def _signer(key: ec.EllipticCurvePrivateKey) -> Callable[[bytes], bytes]:
    def sign(message: bytes) -> bytes:
        r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
        return encode_dss_signature(r, min(s, P256_ORDER - s))

    return sign


def _verifier(creator: bytes, message: bytes, signature: bytes) -> bool:
    identity = identities_pb2.SerializedIdentity.FromString(creator)
    public_key = x509.load_pem_x509_certificate(identity.id_bytes).public_key()
    try:
        public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))  # type: ignore[union-attr]
    except InvalidSignature:
        return False
    return True


@pytest.fixture(scope="module")
def orderer_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def creator(orderer_key: ec.EllipticCurvePrivateKey) -> bytes:
    cert = _ca_cert("orderer0.orderer.swarmfuse.local", orderer_key)
    return identities_pb2.SerializedIdentity(mspid="OrdererMSP", id_bytes=cert).SerializeToString()


@pytest.fixture(scope="module")
def channel() -> ChannelDefinition:
    return ChannelDefinition(
        name="task1",
        orgs=(
            _org("DC1", "member", ("127.0.0.1:17020",)),
            _org("DC2", "member", ("127.0.0.1:17025",)),
            _org("DC3", "member", ("127.0.0.1:17030",)),
            _org("Auditor", "auditor", ("127.0.0.1:17035",)),
        ),
        orderer_org=_org("Orderer", "orderer", ("127.0.0.1:17000",)),
        batch_max_count=50,
        batch_absolute_max_bytes=10 * 1024 * 1024,
        batch_timeout_s=0.25,
    )


# --- header, hashes --------------------------------------------------------------------------------

# Hand-computed DER: 30 <len> | 02 <len> number (minimal, 0x00-padded when the top bit is set)
# | 04 <len> previous_hash | 04 <len> data_hash; lengths >= 128 use the long form 0x81 nn.
HEADER_VECTORS = [
    (0, b"", b"", "300702010004000400"),
    (1, b"\x11" * 32, b"\x22" * 32, "3047" "020101" "0420" + "11" * 32 + "0420" + "22" * 32),
    (128, b"\x01", b"\x02", ("300a" "02020080" "040101" "040102")),
    (2**64 - 1, b"", b"", ("300f" "020900ffffffffffffffff" "0400" "0400")),
    (300, b"\xab" * 200, b"", "3081d1" "0202012c" "0481c8" + "ab" * 200 + "0400"),
]


@pytest.mark.parametrize(("number", "previous", "data", "expected"), HEADER_VECTORS)
def test_header_bytes_match_hand_computed_der(number: int, previous: bytes, data: bytes, expected: str) -> None:
    header = common_pb2.BlockHeader(number=number, previous_hash=previous, data_hash=data)
    assert blockfmt.header_bytes(header).hex() == expected
    assert blockfmt.header_hash(header) == hashlib.sha256(bytes.fromhex(expected)).digest()


def test_header_hash_of_empty_genesis_header() -> None:
    # Checked with Go's encoding/asn1 on the same struct Fabric marshals (Number *big.Int, two []byte).
    header = common_pb2.BlockHeader(number=0)
    assert blockfmt.header_hash(header).hex() == "1d1c288c6851505be0b47a0f8e7dfb91ab2abe6ad71cef63a3791d14588d1d0e"


def test_data_hash_is_sha256_of_the_concatenated_envelopes() -> None:
    assert blockfmt.data_hash([b"ab", b"cd"]) == hashlib.sha256(b"abcd").digest()
    assert blockfmt.data_hash([]) == hashlib.sha256(b"").digest()


def test_new_block_has_data_hash_and_five_empty_metadata_slots() -> None:
    block = blockfmt.new_block(3, b"\x01" * 32, [b"e1", b"e2"])
    assert block.header.number == 3 and block.header.previous_hash == b"\x01" * 32
    assert block.header.data_hash == hashlib.sha256(b"e1e2").digest()
    assert list(block.data.data) == [b"e1", b"e2"]
    assert list(block.metadata.metadata) == [b""] * 5


# --- orderer signature --------------------------------------------------------------------------------


def test_sign_block_round_trip(orderer_key: ec.EllipticCurvePrivateKey, creator: bytes) -> None:
    block = blockfmt.new_block(5, b"\x07" * 32, [b"env"])
    seen: list[bytes] = []
    sign = _signer(orderer_key)
    blockfmt.sign_block(block, lambda m: (seen.append(m), sign(m))[1], creator, last_config=2)

    metadata = common_pb2.Metadata.FromString(block.metadata.metadata[blockfmt.SIGNATURES])
    assert common_pb2.OrdererBlockMetadata.FromString(metadata.value).last_config.index == 2
    (signature,) = metadata.signatures
    header = common_pb2.SignatureHeader.FromString(signature.signature_header)
    assert header.creator == creator and len(header.nonce) == 24
    assert seen == [metadata.value + signature.signature_header + blockfmt.header_bytes(block.header)]
    last_config = common_pb2.Metadata.FromString(block.metadata.metadata[blockfmt.LAST_CONFIG])
    assert common_pb2.LastConfig.FromString(last_config.value).index == 2
    assert blockfmt.last_config_index(block) == 2
    assert blockfmt.verify_block_signature(block, _verifier)


def test_block_signature_fails_after_tampering(orderer_key: ec.EllipticCurvePrivateKey, creator: bytes) -> None:
    block = blockfmt.new_block(5, b"\x07" * 32, [b"env"])
    blockfmt.sign_block(block, _signer(orderer_key), creator, last_config=0)
    tampered = common_pb2.Block()
    tampered.CopyFrom(block)
    tampered.header.number = 6
    assert not blockfmt.verify_block_signature(tampered, _verifier)
    other = blockfmt.new_block(5, b"\x07" * 32, [b"env"])
    blockfmt.sign_block(other, _signer(ec.generate_private_key(ec.SECP256R1())), creator, last_config=0)
    assert not blockfmt.verify_block_signature(other, _verifier)
    assert not blockfmt.verify_block_signature(blockfmt.new_block(5, b"", [b"env"]), _verifier)


# --- transactions filter ----------------------------------------------------------------------------


def test_transactions_filter_round_trip() -> None:
    block = blockfmt.new_block(1, b"", [b"a", b"b", b"c"])
    assert blockfmt.transactions_filter(block) == []
    blockfmt.set_transactions_filter(block, [0, 11, 255])
    assert block.metadata.metadata[blockfmt.TRANSACTIONS_FILTER] == b"\x00\x0b\xff"
    assert blockfmt.transactions_filter(block) == [0, 11, 255]
    with pytest.raises(ValueError, match="2 validation codes for 3 envelopes"):
        blockfmt.set_transactions_filter(block, [0, 0])
    with pytest.raises(ValueError, match="one byte"):
        blockfmt.set_transactions_filter(block, [0, 0, 256])


def test_go_durations() -> None:
    cases = {0: "0s", 999: "999ns", 1500: "1.5µs", 250_000_000: "250ms", 10**9: "1s", 2_500_000_000: "2.5s",
             90 * 10**9: "1m30s", 3600 * 10**9: "1h0m0s"}
    for ns, text in cases.items():
        assert go_duration(ns) == text
        assert parse_go_duration(text) == ns
    assert parse_go_duration("1h30m0.5s") == 5400 * 10**9 + 500_000_000
    with pytest.raises(ValueError):
        parse_go_duration("250")


# --- config block --------------------------------------------------------------------------------------


def test_config_block_round_trip(channel: ChannelDefinition, orderer_key: ec.EllipticCurvePrivateKey,
                                 creator: bytes) -> None:
    with_chaincode = replace(channel, chaincode=ChaincodeDefinition("c", "1", 1, "x"))
    block = blockfmt.config_block(with_chaincode, _signer(orderer_key), creator)
    assert blockfmt.channel_from_config_block(block) == channel
    reparsed = common_pb2.Block.FromString(block.SerializeToString())
    assert blockfmt.channel_from_config_block(reparsed) == channel


def test_config_block_org_order_is_canonical(channel: ChannelDefinition, orderer_key: ec.EllipticCurvePrivateKey,
                                             creator: bytes) -> None:
    shuffled = replace(channel, orgs=tuple(reversed(channel.orgs)))
    block = blockfmt.config_block(shuffled, _signer(orderer_key), creator)
    assert blockfmt.channel_from_config_block(block) == blockfmt.canonical_channel(shuffled) == channel


def _policy_roles(policy: configtx_pb2.ConfigPolicy) -> tuple[int, list[tuple[str, int]]]:
    assert policy.policy.type == policies_pb2.Policy.SIGNATURE and policy.mod_policy == "Admins"
    envelope = policies_pb2.SignaturePolicyEnvelope.FromString(policy.policy.value)
    assert [r.signed_by for r in envelope.rule.n_out_of.rules] == list(range(len(envelope.identities)))
    roles = []
    for principal in envelope.identities:
        assert principal.principal_classification == msp_principal_pb2.MSPPrincipal.ROLE
        role = msp_principal_pb2.MSPRole.FromString(principal.principal)
        roles.append((role.msp_identifier, role.role))
    return envelope.rule.n_out_of.n, roles


def test_config_block_holds_what_configtxgen_writes(channel: ChannelDefinition,
                                                    orderer_key: ec.EllipticCurvePrivateKey, creator: bytes) -> None:
    block = blockfmt.config_block(channel, _signer(orderer_key), creator)
    assert block.header.number == 0 and block.header.previous_hash == b""
    assert block.header.data_hash == blockfmt.data_hash(block.data.data)
    assert blockfmt.verify_block_signature(block, _verifier)
    envelope = common_pb2.Envelope.FromString(block.data.data[0])
    payload = common_pb2.Payload.FromString(envelope.payload)
    header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
    signature_header = common_pb2.SignatureHeader.FromString(payload.header.signature_header)
    assert header.type == common_pb2.HeaderType.CONFIG and header.channel_id == "task1"
    assert header.tx_id == hashlib.sha256(signature_header.nonce + creator).hexdigest()
    assert _verifier(creator, envelope.payload, envelope.signature)

    root = configtx_pb2.ConfigEnvelope.FromString(payload.data).config.channel_group
    assert sorted(root.groups) == ["Application", "Orderer"]
    # V3_0 forbids global OrdererAddresses: the orderer org's Endpoints value holds them.
    assert set(root.values) == {"HashingAlgorithm", "BlockDataHashingStructure", "Capabilities"}
    assert configuration_pb2.HashingAlgorithm.FromString(root.values["HashingAlgorithm"].value).name == "SHA256"
    assert configuration_pb2.BlockDataHashingStructure.FromString(
        root.values["BlockDataHashingStructure"].value).width == 2**32 - 1
    assert set(configuration_pb2.Capabilities.FromString(root.values["Capabilities"].value).capabilities) == {"V3_0"}
    meta = policies_pb2.ImplicitMetaPolicy.FromString(root.policies["Admins"].policy.value)
    assert (meta.rule, meta.sub_policy) == (policies_pb2.ImplicitMetaPolicy.MAJORITY, "Admins")

    orderer = root.groups["Orderer"]
    assert set(orderer.policies) == {"Readers", "Writers", "Admins", "BlockValidation"}
    batch = orderer_config_pb2.BatchSize.FromString(orderer.values["BatchSize"].value)
    assert (batch.max_message_count, batch.absolute_max_bytes, batch.preferred_max_bytes) == (50, 10485760, 2097152)
    assert orderer_config_pb2.BatchTimeout.FromString(orderer.values["BatchTimeout"].value).timeout == "250ms"
    assert orderer_config_pb2.ConsensusType.FromString(orderer.values["ConsensusType"].value).type == "etcdraft"
    endpoints = configuration_pb2.OrdererAddresses.FromString(orderer.groups["Orderer"].values["Endpoints"].value)
    assert list(endpoints.addresses) == ["127.0.0.1:17000"]

    application = root.groups["Application"]
    assert set(application.policies) == {"Readers", "Writers", "Admins", "LifecycleEndorsement", "Endorsement"}
    acls = peer_config_pb2.ACLs.FromString(application.values["ACLs"].value)
    assert acls.acls["peer/Propose"].policy_ref == "/Channel/Application/Readers"
    dc1 = application.groups["DC1"]
    assert _policy_roles(dc1.policies["Writers"]) == (1, [("DC1MSP", msp_principal_pb2.MSPRole.ADMIN),
                                                          ("DC1MSP", msp_principal_pb2.MSPRole.CLIENT)])
    assert _policy_roles(dc1.policies["Endorsement"]) == (1, [("DC1MSP", msp_principal_pb2.MSPRole.PEER)])
    assert _policy_roles(application.groups["Auditor"].policies["Writers"]) == (
        1, [("AuditorMSP", msp_principal_pb2.MSPRole.ADMIN)])
    anchors = peer_config_pb2.AnchorPeers.FromString(dc1.values["AnchorPeers"].value).anchor_peers
    assert [(a.host, a.port) for a in anchors] == [("127.0.0.1", 17020)]
    msp = msp_config_pb2.MSPConfig.FromString(dc1.values["MSP"].value)
    fabric = msp_config_pb2.FabricMSPConfig.FromString(msp.config)
    ca = channel.orgs[0].ca_certs[0]
    assert (msp.type, fabric.name, list(fabric.root_certs)) == (0, "DC1MSP", [ca])
    assert list(fabric.tls_root_certs) == list(channel.orgs[0].tls_ca_certs)
    assert fabric.crypto_config.signature_hash_family == "SHA2"
    assert fabric.crypto_config.identity_identifier_hash_function == "SHA256"
    ous = fabric.fabric_node_ous
    assert ous.enable
    assert [(o.organizational_unit_identifier, o.certificate) for o in (
        ous.client_ou_identifier, ous.peer_ou_identifier, ous.admin_ou_identifier, ous.orderer_ou_identifier)] == [
        ("client", ca), ("peer", ca), ("admin", ca), ("orderer", ca)]


def test_signature_policy_outof() -> None:
    envelope = blockfmt.signature_policy_envelope("OutOf(2, 'DC1MSP.peer', 'DC2MSP.peer', 'DC3MSP.peer')")
    assert envelope.rule.n_out_of.n == 2 and len(envelope.rule.n_out_of.rules) == 3
    assert blockfmt.signature_policy_envelope("AND('A.peer', 'B.peer')").rule.n_out_of.n == 2
    with pytest.raises(blockfmt.ConfigBlockError, match="principal"):
        blockfmt.signature_policy_envelope("OR('A.peer', AND('B.peer', 'C.peer'))")


def test_not_a_config_block_is_refused() -> None:
    payload = common_pb2.Payload(header=common_pb2.Header(channel_header=common_pb2.ChannelHeader(
        type=common_pb2.HeaderType.ENDORSER_TRANSACTION, channel_id="task1").SerializeToString()))
    envelope = common_pb2.Envelope(payload=payload.SerializeToString()).SerializeToString()
    with pytest.raises(blockfmt.ConfigBlockError, match="not CONFIG"):
        blockfmt.channel_from_config_block(blockfmt.new_block(0, b"", [envelope]))
    with pytest.raises(blockfmt.ConfigBlockError, match="1 envelope"):
        blockfmt.channel_from_config_block(blockfmt.new_block(0, b"", [envelope, envelope]))


def test_bad_definitions_are_refused(channel: ChannelDefinition, orderer_key: ec.EllipticCurvePrivateKey,
                                     creator: bytes) -> None:
    bad_orderer = replace(channel, orderer_org=channel.orgs[0])
    with pytest.raises(blockfmt.ConfigBlockError, match="not 'orderer'"):
        blockfmt.config_block(bad_orderer, _signer(orderer_key), creator)
    bad_endpoint = OrgDefinition("DC9", "DC9MSP", "member", channel.orgs[0].ca_certs, (), ("nohostport",))
    with pytest.raises(blockfmt.ConfigBlockError, match="host:port"):
        blockfmt.config_block(replace(channel, orgs=(bad_endpoint,)),
                              _signer(orderer_key), creator)
