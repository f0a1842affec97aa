"""Certificates and credentials for the embedded broker's TLS and SASL_SSL listeners.

A private CA, a server certificate for 127.0.0.1/localhost signed by it (in a PKCS#12 keystore), and a
random SASL/PLAIN password, all 0600 under the broker's directory.
Clients trust the CA file (``KMO_KAFKA_SSL_CAFILE``) and read the password from a file
(``KMO_KAFKA_SASL_PASSWORD_FILE``): nothing secret is ever put on a command line.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from actions.private_files import write_private

SASL_USER = "kmo"


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def local_server_certificate(
    ca_name: str, *, days: int
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A private CA and a certificate for 127.0.0.1 and localhost signed by it: (CA, server key, server
    certificate). For servers on this machine: the embedded broker, and local protocol fakes in tests."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name(ca_name))
        .issuer_name(_name(ca_name))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return ca, key, cert


def ensure_material(directory: Path) -> dict[str, Path]:
    """The CA, the server's key and chain, the keystore password and the SASL password (made once)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    paths = {
        "ca": directory / "ca.pem",
        "keystore": directory / "server-keystore.p12",
        "keystore_password": directory / "keystore-password",
        "sasl_password": directory / "sasl-password",
    }
    if all(p.exists() for p in paths.values()):
        return paths
    ca, key, cert = local_server_certificate("kmo embedded broker CA", days=825)
    password = secrets.token_urlsafe(24)
    # PKCS#12, which Java's KeyStore reads whatever the cipher; Kafka's PEM loader cannot open a
    # PBES2-encrypted PKCS#8 key on Java 17 ("PBES2 SecretKeyFactory not available")
    keystore = pkcs12.serialize_key_and_certificates(
        b"kmo-broker", key, cert, [ca], serialization.BestAvailableEncryption(password.encode())
    )
    write_private(paths["ca"], ca.public_bytes(serialization.Encoding.PEM))
    write_private(paths["keystore"], keystore)
    write_private(paths["keystore_password"], password.encode())
    write_private(paths["sasl_password"], secrets.token_urlsafe(24).encode())
    return paths
