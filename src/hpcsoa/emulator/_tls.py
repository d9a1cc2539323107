"""TLS for the emulator: a self-signed certificate (cryptography) and its fingerprints.

Clients pin the certificate by its SHA-256 fingerprint (``EmulatorServer.cert_sha256``); the
SHA-1 thumbprint is what Windows tools (``Set-HPCWebComponents.ps1 -Certificate``) show.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["TlsMaterial", "load_tls", "self_signed_tls"]


@dataclass(frozen=True, slots=True)
class TlsMaterial:
    """A server SSL context plus the certificate's fingerprints (lowercase / uppercase hex)."""

    context: ssl.SSLContext
    sha256: str
    sha1: str


def _fingerprints(cert_der: bytes) -> tuple[str, str]:
    return hashlib.sha256(cert_der).hexdigest(), hashlib.sha1(cert_der).hexdigest().upper()


def _context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def self_signed_tls(host: str, *, days: int = 30) -> TlsMaterial:
    """Make an EC P-256 self-signed certificate for ``host`` (+ localhost, 127.0.0.1, ::1)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host or "localhost")])
    sans: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    try:
        addr = ipaddress.ip_address(host)
        if not addr.is_loopback:
            sans.append(x509.IPAddress(addr))
    except ValueError:
        if host and host != "localhost":
            sans.append(x509.DNSName(host))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    ctx = _context()
    # ssl only loads key material from files: use a private temporary directory.
    with tempfile.TemporaryDirectory(prefix="hpcsoa-tls-") as tmp:
        cert_path = Path(tmp, "cert.pem")
        key_path = Path(tmp, "key.pem")
        cert_path.write_bytes(cert_pem)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key_pem)
        ctx.load_cert_chain(cert_path, key_path)
    sha256, sha1 = _fingerprints(cert.public_bytes(serialization.Encoding.DER))
    return TlsMaterial(ctx, sha256, sha1)


def load_tls(cert_file: str, key_file: str) -> TlsMaterial:
    """Load a PEM certificate (chain) and key.

    Raises:
        OSError: a file cannot be read.
        ssl.SSLError / ValueError: the files do not hold a matching certificate and key.
    """
    ctx = _context()
    ctx.load_cert_chain(cert_file, key_file)
    cert = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
    sha256, sha1 = _fingerprints(cert.public_bytes(serialization.Encoding.DER))
    return TlsMaterial(ctx, sha256, sha1)
