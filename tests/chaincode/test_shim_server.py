"""The CCaaS server: TLS with required client certificates, environment config, entry point."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import grpc
import pytest
from shim_peer import KeyPair, PeerSim, ShimTestChaincode, make_cert, response_of, transaction

from swarmfuse.chaincode import __main__ as entry
from swarmfuse.chaincode.shim import ChaincodeServer, ServerConfig
from swarmfuse.chaincode.shim.config import ConfigError, TlsMaterial

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pki() -> dict[str, KeyPair]:
    ca = make_cert("test-ca", ca=True)
    return {
        "ca": ca,
        "server": make_cert("chaincode", ca, sans=("localhost", "127.0.0.1")),
        "client": make_cert("peer0", ca),
        "stranger": make_cert("stranger"),
    }


def _tls_server(pki: dict[str, KeyPair]) -> ChaincodeServer:
    tls = TlsMaterial(cert_pem=pki["server"].cert_pem, key_pem=pki["server"].key_pem, client_ca_pem=pki["ca"].cert_pem)
    server = ChaincodeServer(
        ShimTestChaincode(), ServerConfig(chaincode_id="swarmfuse_1.0:tls", address="127.0.0.1:0", tls=tls)
    )
    server.start()
    return server


def test_tls_with_client_certificate(pki: dict[str, KeyPair]) -> None:
    server = _tls_server(pki)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki["ca"].cert_pem,
        private_key=pki["client"].key_pem,
        certificate_chain=pki["client"].cert_pem,
    )
    peer = PeerSim(f"127.0.0.1:{server.port}", credentials=credentials)
    try:
        assert peer.handshake().name == "swarmfuse_1.0:tls"
        done = peer.run(transaction("tx1", "put", "k", "v"))
        assert response_of(done).status == 200 and peer.state == {"k": b"v"}
    finally:
        peer.close()
        server.stop(grace=None)


@pytest.mark.parametrize("client", [None, "stranger"])
def test_tls_refuses_peer_without_trusted_client_certificate(pki: dict[str, KeyPair], client: str | None) -> None:
    server = _tls_server(pki)
    pair = pki[client] if client else None
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki["ca"].cert_pem,
        private_key=pair.key_pem if pair else None,
        certificate_chain=pair.cert_pem if pair else None,
    )
    peer = PeerSim(f"127.0.0.1:{server.port}", credentials=credentials)
    try:
        with pytest.raises(grpc.RpcError) as failure:
            peer.recv()
        assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        peer.close()
        server.stop(grace=None)


def _write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_config_from_env_with_tls(tmp_path: Path, pki: dict[str, KeyPair]) -> None:
    env = {
        "CHAINCODE_ID": "swarmfuse_1.0:abc",
        "CHAINCODE_SERVER_ADDRESS": "0.0.0.0:9999",
        "CHAINCODE_TLS_CERT_FILE": _write(tmp_path, "cert.pem", pki["server"].cert_pem),
        "CHAINCODE_TLS_KEY_FILE": _write(tmp_path, "key.pem", pki["server"].key_pem),
        "CHAINCODE_CLIENT_CA_CERT_FILE": _write(tmp_path, "ca.pem", pki["ca"].cert_pem),
    }
    config = ServerConfig.from_env(env)
    assert (config.chaincode_id, config.address) == ("swarmfuse_1.0:abc", "0.0.0.0:9999")
    assert config.tls == TlsMaterial(pki["server"].cert_pem, pki["server"].key_pem, pki["ca"].cert_pem)
    plain = ServerConfig.from_env(
        {"CHAINCODE_ID": "x", "CHAINCODE_SERVER_ADDRESS": "h:1", "CHAINCODE_TLS_DISABLED": "true"}
    )
    assert plain.tls is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CHAINCODE_SERVER_ADDRESS": "h:1"}, "CHAINCODE_ID is not set"),
        ({"CHAINCODE_ID": "x"}, "CHAINCODE_SERVER_ADDRESS is not set"),
        ({"CHAINCODE_ID": "x", "CHAINCODE_SERVER_ADDRESS": "9999"}, "is not host:port"),
        ({"CHAINCODE_ID": "x", "CHAINCODE_SERVER_ADDRESS": "h:99999"}, "is not host:port"),
        (
            {"CHAINCODE_ID": "x", "CHAINCODE_SERVER_ADDRESS": "h:1", "CHAINCODE_TLS_DISABLED": "maybe"},
            "is not a boolean",
        ),
        (
            {"CHAINCODE_ID": "x", "CHAINCODE_SERVER_ADDRESS": "h:1", "CHAINCODE_TLS_CERT_FILE": "/nonexistent.pem"},
            "cannot read /nonexistent.pem",
        ),
        (
            {"CHAINCODE_ID": "x", "CHAINCODE_SERVER_ADDRESS": "h:1", "CHAINCODE_TLS_CERT_FILE": "{cert}"},
            "CHAINCODE_TLS_KEY_FILE is not set",
        ),
        (
            {"CHAINCODE_ID": "x", "CHAINCODE_SERVER_ADDRESS": "h:1", "CHAINCODE_TLS_KEY_FILE": "{junk}"},
            "is not a PEM file",
        ),
        (
            {"CHAINCODE_ID": "x", "CHAINCODE_SERVER_ADDRESS": "h:1", "CHAINCODE_CLIENT_CA_CERT_FILE": "{cert}"},
            "needs TLS",
        ),
        (
            {
                "CHAINCODE_ID": "x",
                "CHAINCODE_SERVER_ADDRESS": "h:1",
                "CHAINCODE_TLS_DISABLED": "true",
                "CHAINCODE_TLS_CERT_FILE": "{cert}",
            },
            "contradicts",
        ),
    ],
)
def test_bad_config_is_named(tmp_path: Path, pki: dict[str, KeyPair], env: dict[str, str], message: str) -> None:
    files = {"{cert}": _write(tmp_path, "c.pem", pki["server"].cert_pem), "{junk}": _write(tmp_path, "j.txt", b"junk")}
    resolved = {k: files.get(v, v) for k, v in env.items()}
    with pytest.raises(ConfigError, match=message):
        ServerConfig.from_env(resolved)


def test_busy_address_is_a_clear_error() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        address = f"127.0.0.1:{holder.getsockname()[1]}"
        with pytest.raises(OSError, match=f"cannot listen on {address}"):
            ChaincodeServer(ShimTestChaincode(), ServerConfig(chaincode_id="x", address=address))


def test_missing_app_module_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, entry.APP_MODULE, None)
    with pytest.raises(entry.AppMissingError, match=r"swarmfuse\.chaincode\.app is missing"):
        entry.load_chaincode({})


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# Runs the real entry point with the test chaincode standing in for the contract application.
ENTRY_SCRIPT = textwrap.dedent(
    """
    import sys, types
    sys.path.insert(0, sys.argv[1])
    from shim_peer import ShimTestChaincode
    app = types.ModuleType("swarmfuse.chaincode.app")
    app.create_chaincode = ShimTestChaincode
    sys.modules[app.__name__] = app
    from swarmfuse.chaincode.__main__ import main
    sys.exit(main())
    """
)


def test_entry_point_serves_and_stops_on_sigterm() -> None:
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "CHAINCODE_APP"},  # serve the app this script injects
        "CHAINCODE_ID": "swarmfuse_1.0:main",
        "CHAINCODE_SERVER_ADDRESS": f"127.0.0.1:{port}",
        "CHAINCODE_TLS_DISABLED": "true",
    }
    process = subprocess.Popen(
        [sys.executable, "-c", ENTRY_SCRIPT, str(Path(__file__).parent)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert process.poll() is None and time.monotonic() < deadline, "chaincode server did not start"
            time.sleep(0.1)
        peer = PeerSim(f"127.0.0.1:{port}")
        assert peer.handshake().name == "swarmfuse_1.0:main"
        assert response_of(peer.run(transaction("tx1", "put", "k", "v"))).status == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=45) == 0  # generous: CI shares two cores with other work
        peer.close()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    log = process.stderr.read() if process.stderr else ""
    assert "serving on" in log and "shutting down" in log and "chaincode server stopped" in log


def test_entry_point_bad_config_exits_with_one_line() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAINCODE_")}
    result = subprocess.run(
        [sys.executable, "-m", "swarmfuse.chaincode"], env=env, capture_output=True, text=True, timeout=60, cwd=REPO,
check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].endswith(
        "cannot start the chaincode server: CHAINCODE_ID is not set (the chaincode package ID, e.g. "
        "swarmfuse_1.0:<hash>)"
    )
    assert "Traceback" not in result.stderr
