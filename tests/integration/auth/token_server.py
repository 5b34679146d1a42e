"""A local Microsoft Entra token endpoint for service principal tests, reached as a proxy.

azure-identity only accepts ``https`` authorities, and MSAL validates any authority it does not
know by calling instance discovery on ``login.microsoftonline.com``. So instead of inventing an
authority, the tests keep the real default one and set ``HTTPS_PROXY`` to this server: it accepts
``CONNECT login.microsoftonline.com:443`` (and nothing else), terminates TLS with a certificate
from a throwaway test CA (trusted through ``REQUESTS_CA_BUNDLE``), and serves the two endpoints a
confidential client calls:

- ``GET /{tenant}/v2.0/.well-known/openid-configuration`` (MSAL's tenant discovery);
- ``POST /{tenant}/oauth2/v2.0/token``: a client-credentials request, checked field by field
  (``grant_type``, ``client_id``, ``scope`` and either ``client_secret`` or a signed
  ``client_assertion`` verified with the registered certificate's public key).

Every request is recorded, including refused ``CONNECT`` targets and plain-HTTP proxy requests
(e.g. a managed identity endpoint), so tests can assert that nothing else was contacted. Nothing
leaves the machine.
"""

import datetime as dt
import json
import socket
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

AUTHORITY_HOST = "login.microsoftonline.com"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass
class Tls:
    """A throwaway CA, a server certificate for the authority host, and their files."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    @classmethod
    def create(cls, directory: Path) -> "Tls":
        now = dt.datetime.now(dt.UTC)
        ca_key, key = _key(), _key()
        ca = (
            x509.CertificateBuilder()
            .subject_name(_name("test CA"))
            .issuer_name(_name("test CA"))
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(AUTHORITY_HOST))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=2))
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(AUTHORITY_HOST)]), critical=False
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        tls = cls(directory / "ca.pem", directory / "server.pem", directory / "server.key")
        tls.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        tls.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        tls.key_file.write_bytes(_pem_key(key))
        return tls


def client_certificate(directory: Path) -> tuple[Path, str]:
    """A self-signed client certificate with its key in one PEM file, and its public key (PEM)."""
    now = dt.datetime.now(dt.UTC)
    key = _key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("batch-scoring-sp"))
        .issuer_name(_name("batch-scoring-sp"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=2))
        .sign(key, hashes.SHA256())
    )
    path = directory / "sp.pem"
    path.write_bytes(_pem_key(key) + cert.public_bytes(serialization.Encoding.PEM))
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return path, public.decode()


@dataclass
class Registration:
    """The app registration the endpoint knows: tenant, client id, and secret or certificate."""

    tenant_id: str
    client_id: str
    client_secret: str | None = None
    certificate_public_key: str | None = None


@dataclass
class Recorded:
    """What the server saw."""

    connects: list[str] = field(default_factory=list)
    refused_connects: list[str] = field(default_factory=list)
    plain_proxy_requests: list[str] = field(default_factory=list)
    discovery_requests: list[str] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    tokens_issued: list[str] = field(default_factory=list)


class TokenServer:
    """Proxy + token endpoint on 127.0.0.1 (ephemeral port); use as a context manager."""

    def __init__(self, tls: Tls, registration: Registration) -> None:
        self.registration = registration
        self.recorded = Recorded()
        self._lock = threading.Lock()
        self._tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._tls_context.load_cert_chain(tls.cert_file, tls.key_file)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def proxy_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> "TokenServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    # -- the token endpoint ------------------------------------------------------------------

    def _credential_problems(self, form: dict[str, str], token_url: str) -> list[str]:
        """What is wrong with the secret, or with the signed certificate assertion."""
        reg = self.registration
        if reg.client_secret is not None:
            return [] if form.get("client_secret") == reg.client_secret else ["client_secret"]
        if reg.certificate_public_key is None:
            return []
        problems = []
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            problems.append(f"client_assertion_type {form.get('client_assertion_type')!r}")
        try:
            claims = jwt.decode(
                form.get("client_assertion", ""),
                reg.certificate_public_key,
                algorithms=["RS256", "PS256"],
                audience=token_url,
            )
        except jwt.PyJWTError as exc:
            return [*problems, f"client_assertion: {exc}"]
        if claims.get("iss") != reg.client_id or claims.get("sub") != reg.client_id:
            problems.append("client_assertion iss/sub")
        return problems

    def _token_response(self, tenant: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        reg = self.registration
        token_url = f"https://{AUTHORITY_HOST}/{tenant}/oauth2/v2.0/token"
        problems = []
        if tenant != reg.tenant_id:
            problems.append(f"tenant {tenant!r}")
        if form.get("grant_type") != "client_credentials":
            problems.append(f"grant_type {form.get('grant_type')!r}")
        if form.get("client_id") != reg.client_id:
            problems.append(f"client_id {form.get('client_id')!r}")
        if not form.get("scope", "").endswith("/.default"):
            problems.append(f"scope {form.get('scope')!r}")
        problems.extend(self._credential_problems(form, token_url))
        if problems:
            with self._lock:
                self.recorded.problems.extend(problems)
            return 401, {
                "error": "invalid_client",
                "error_description": "AADSTS7000215: invalid client credentials.",
                "error_codes": [7000215],
            }
        with self._lock:
            token = f"sp-token-{len(self.recorded.tokens_issued) + 1}"
            self.recorded.tokens_issued.append(token)
        return 200, {
            "token_type": "Bearer",
            "expires_in": 3599,
            "ext_expires_in": 3599,
            "access_token": token,
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_CONNECT(self) -> None:
                target = self.path
                if target != f"{AUTHORITY_HOST}:443":
                    with server._lock:
                        server.recorded.refused_connects.append(target)
                    self.send_response(403)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with server._lock:
                    server.recorded.connects.append(target)
                self.send_response(200, "Connection established")
                self.end_headers()
                self.wfile.flush()
                conn: socket.socket = self.connection
                try:
                    tls = server._tls_context.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError):
                    self.close_connection = True
                    return
                try:
                    Inner(tls, self.client_address, self.server)
                finally:
                    # wrap_socket detached the plain socket: the TLS socket owns the fd now.
                    tls.close()
                self.close_connection = True

            def do_GET(self) -> None:  # plain-HTTP proxying (e.g. IMDS): refused, recorded
                with server._lock:
                    server.recorded.plain_proxy_requests.append(self.path)
                self._send(403, {"error": "this proxy serves only the authority host"})

            do_POST = do_GET

        class Inner(Handler):
            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                with server._lock:
                    server.recorded.discovery_requests.append(path)
                parts = path.strip("/").split("/")
                if len(parts) == 4 and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
                    base = f"https://{AUTHORITY_HOST}/{parts[0]}"
                    self._send(
                        200,
                        {
                            "token_endpoint": f"{base}/oauth2/v2.0/token",
                            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                            "issuer": f"{base}/v2.0",
                            "token_endpoint_auth_methods_supported": [
                                "client_secret_post",
                                "private_key_jwt",
                                "client_secret_basic",
                            ],
                            "response_types_supported": ["code", "id_token", "code id_token"],
                            "scopes_supported": ["openid", "profile", "email", "offline_access"],
                        },
                    )
                    return
                self._send(404, {"error": "not_found"})

            def do_POST(self) -> None:
                path = urlsplit(self.path).path
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                form = {k: v[0] for k, v in parse_qs(body).items()}
                parts = path.strip("/").split("/")
                if len(parts) != 4 or parts[1:] != ["oauth2", "v2.0", "token"]:
                    self._send(404, {"error": "not_found"})
                    return
                with server._lock:
                    server.recorded.token_requests.append(form)
                status, response = server._token_response(parts[0], form)
                self._send(status, response)

        return Handler
