"""TLS: a self-signed certificate per node, pinned by peers to the node id.

The certificate's SHA-256 fingerprint is in the node's signed manifest. On first
contact a client fetches the certificate, checks that the manifest served over
that very certificate is signed by the node id and names that fingerprint, and
pins it. From then on only that certificate is accepted for that node and
address; a different one is refused (`pin_mismatch`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import ssl
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hearthnet.errors import HearthNetError
from hearthnet.storage import atomic_write_bytes, atomic_write_text, ensure_private_dir

if TYPE_CHECKING:
    from hearthnet.transport.client import TransportClient


def fingerprint(cert_pem: str | bytes) -> str:
    pem = cert_pem.encode() if isinstance(cert_pem, str) else cert_pem
    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def ensure_cert(tls_dir: Path, common_name: str) -> tuple[Path, Path, str]:
    """(cert path, key path, fingerprint); generated once (EC P-256, 10 years), then reused."""
    cert_p, key_p = tls_dir / "cert.pem", tls_dir / "key.pem"
    if cert_p.exists() and key_p.exists():
        return cert_p, key_p, fingerprint(cert_p.read_bytes())
    ensure_private_dir(tls_dir)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        # CA:TRUE so the pinned certificate can itself be the one trust anchor of a client context.
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("hearthnet")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    atomic_write_bytes(key_p, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()), mode=0o600)
    pem = cert.public_bytes(serialization.Encoding.PEM)
    atomic_write_bytes(cert_p, pem, mode=0o644)
    return cert_p, key_p, fingerprint(pem)


def pinned_context(cert_pem: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cadata=cert_pem)
    ctx.check_hostname = False  # identity is the pinned certificate, not a host name
    return ctx


class PinStore:
    """origin -> (node id, certificate) pins, in one JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            self._pins: dict[str, dict[str, str]] = json.loads(path.read_text()) if path.exists() else {}
        except (OSError, ValueError):
            self._pins = {}

    def get(self, origin: str) -> dict[str, str] | None:
        return self._pins.get(origin)

    def node_fingerprint(self, node_id: str) -> str | None:
        for p in self._pins.values():
            if p["node_id"] == node_id:
                return p["fingerprint"]
        return None

    def context_for(self, origin: str) -> ssl.SSLContext | bool:
        p = self._pins.get(origin)
        return pinned_context(p["cert_pem"]) if p else False

    def pin(self, origin: str, node_id: str, cert_pem: str) -> None:
        fp = fingerprint(cert_pem)
        with self._lock:
            known = self.node_fingerprint(node_id)
            if known is not None and known != fp:
                raise HearthNetError("pin_mismatch", f"{node_id[:24]}… presented another TLS certificate than the one pinned for it")
            cur = self._pins.get(origin)
            if cur is not None and cur["fingerprint"] != fp:
                raise HearthNetError("pin_mismatch", f"{origin} presented another TLS certificate than the one pinned for it")
            self._pins[origin] = {"node_id": node_id, "cert_pem": cert_pem, "fingerprint": fp}
            atomic_write_text(self.path, json.dumps(self._pins, indent=1), mode=0o600)


def origin(url: str) -> str:
    """scheme://host:port of a URL: what pins and pooled connections are keyed by."""
    u = httpx.URL(url)
    return f"{u.scheme}://{u.host}:{u.port}"


async def pin_first_contact(client: TransportClient, url: str) -> None:
    """Pin a peer's certificate on first contact: the manifest served over exactly that
    certificate must be signed by the node and name the certificate's fingerprint."""
    origin_ = origin(url)
    if client.pins is None or client.pins.get(origin_):
        return
    u = httpx.URL(url)
    try:
        pem = await asyncio.to_thread(ssl.get_server_certificate, (u.host, u.port), timeout=5)
    except (OSError, ssl.SSLError) as exc:
        raise HearthNetError("partition", f"{url}: cannot fetch its TLS certificate ({exc})") from None
    from hearthnet.identity.manifest import verify_node_manifest

    async with httpx.AsyncClient(base_url=origin_, verify=pinned_context(pem), timeout=5) as c:
        try:
            resp = await c.get("/manifest")
        except httpx.HTTPError as exc:
            raise HearthNetError("partition", f"{url}: {type(exc).__name__}") from None
    if resp.status_code != 200:
        raise HearthNetError("partition", f"{url}: manifest answered HTTP {resp.status_code}")
    try:
        m = verify_node_manifest(resp.json())
    except ValueError:
        raise HearthNetError("bad_request", f"{url}: manifest is not JSON") from None
    if m.tls_fingerprint != fingerprint(pem):
        raise HearthNetError("pin_mismatch", f"{url}: certificate is not the one its signed manifest names")
    client.pins.pin(origin_, m.node_id, pem)
    client.forget(url)


__all__ = ["PinStore", "ensure_cert", "fingerprint", "origin", "pin_first_contact", "pinned_context"]
