"""The MCP SDK's OAuthClientProvider with a Client ID Metadata Document (the MCP authorization spec's
preferred registration) through the real CLI: the client's id is the https URL of its metadata, served
here over TLS on 127.0.0.1 with a certificate the gateway process is told to trust (SSL_CERT_FILE); the
gateway fetches and checks it, and the SDK never calls /oauth/register."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientMetadata
from pydantic import AnyUrl

from tests.e2e.test_oauth_sdk import REDIRECT, HeadlessBrowser, MemoryStorage
from tests.json_server import JsonServer
from tests.support import ECHO_COMMAND, running_gateway, write_config

pytestmark = pytest.mark.e2e


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


@pytest.fixture
def documents(tmp_path: Path) -> Iterator[tuple[JsonServer, Path]]:
    cert_file, key_file = self_signed(tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert_file, key_file)
    server = JsonServer(tls=tls)
    yield server, cert_file
    server.stop()


async def test_the_sdk_signs_in_with_a_client_metadata_document(
    tmp_path: Path, documents: tuple[JsonServer, Path]
) -> None:
    server, cert_file = documents
    client_id = f"{server.url}/agent/client.json"
    server.documents["/agent/client.json"] = {
        "client_id": client_id,
        "client_name": "SDK agent (CIMD)",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
    }
    config = write_config(tmp_path, {"oauth": {"clientMetadataAllowPrivate": True}})
    env = {"SSL_CERT_FILE": str(cert_file)}
    with running_gateway("--server", ECHO_COMMAND, "--rate-limit", "0", "--config", config, env=env) as gw:
        key = gw.create_key(10)
        browser, storage = HeadlessBrowser(key), MemoryStorage()
        metadata = OAuthClientMetadata(client_name="SDK agent (CIMD)", redirect_uris=[AnyUrl(REDIRECT)])
        auth = OAuthClientProvider(
            f"{gw.url}/mcp", metadata, storage, browser.redirect, browser.callback, client_metadata_url=client_id
        )
        async with (
            httpx2.AsyncClient(auth=auth, timeout=30.0) as http,
            Client(streamable_http_client(f"{gw.url}/mcp", http_client=http)) as client,
        ):  # type: ignore[arg-type]
            result = await client.call_tool("echo", {"text": "signed in by URL"})
            assert not result.is_error
        assert storage.client is not None and storage.client.client_id == client_id
        assert browser.visits == 1 and gw.balance(key) == 9
        assert server.requests.count("/agent/client.json") == 1
        registered = gw.client.get("/audit", params={"types": "oauth.client_registered"}, headers=gw.admin())
        assert registered.json()["events"] == []  # nothing was registered: the document is the registration
        clients = gw.client.get("/oauth/clients", headers=gw.admin()).json()["clients"]
        assert [c["clientId"] for c in clients] == [client_id]
