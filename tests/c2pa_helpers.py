"""A test certificate authority for C2PA signing, made with ``cryptography`` (docs/provenance.md shows the
same with openssl).

C2PA validators refuse a self-signed signer, so a test needs a root CA and an end-entity certificate
issued by it: CA:false, digitalSignature, extended key usage emailProtection, subject and authority
key identifiers. A plain module, like cli_helpers.py.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["TestCA", "make_test_ca"]


@dataclass(frozen=True)
class TestCA:
    root: Path  # the root certificate (PEM): what `idcli verify --trust` takes
    cert: Path  # the signer's chain (PEM): end-entity certificate, then the root
    key: Path  # the signer's private key (PEM, PKCS#8)
    __test__ = False  # not a pytest test class


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "idcli test studio"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _usage(*, signer: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=not signer,
                         crl_sign=not signer, encipher_only=False, decipher_only=False)


def make_test_ca(folder: Path, *, password: bytes | None = None, expired: bool = False,
                 self_signed: bool = False, intermediate: bool = False, name: str = "ca",
                 signer_name: str = "idcli test signer", lifetime: datetime.timedelta | None = None) -> TestCA:
    """Write ``<name>-root.pem``, ``<name>-signer-chain.pem`` and ``<name>-signer.key`` into ``folder``.

    ``password`` encrypts the key; ``expired`` makes a signer certificate that ended yesterday;
    ``self_signed`` makes the signer its own issuer (what C2PA refuses); ``intermediate`` has the root
    issue an intermediate CA (valid for 200 days, the signer 365) that issues the signer (chain: signer,
    intermediate, root); ``signer_name`` is the signer certificate's common name; ``lifetime`` ends the signer
    certificate that long from now (a few seconds: images signed with it, then checked once it has expired).
    """
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)  # noqa: UP017
    day = datetime.timedelta(days=1)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = (x509.CertificateBuilder().subject_name(_name("idcli test root CA")).issuer_name(_name("idcli test root CA"))
            .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - day).not_valid_after(now + 3650 * day)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_usage(signer=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256()))
    middle = None
    if intermediate:
        middle_key = ec.generate_private_key(ec.SECP256R1())
        middle = (x509.CertificateBuilder().subject_name(_name("idcli test intermediate CA"))
                  .issuer_name(root.subject).public_key(middle_key.public_key())
                  .serial_number(x509.random_serial_number()).not_valid_before(now - day)
                  .not_valid_after(now + 200 * day)  # before the signer's: tests use it
                  .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                  .add_extension(_usage(signer=False), critical=True)
                  .add_extension(x509.SubjectKeyIdentifier.from_public_key(middle_key.public_key()), critical=False)
                  .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
                                 critical=False)
                  .sign(root_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    issuer, issuer_key = (_name(signer_name), key) if self_signed else (root.subject, root_key)
    if middle is not None:
        issuer, issuer_key = middle.subject, middle_key
    start, end = (now - 30 * day, now - day) if expired else (now - day, now + (lifetime or 365 * day))
    leaf = (x509.CertificateBuilder().subject_name(_name(signer_name)).issuer_name(issuer)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(signer=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                           critical=False)
            .sign(issuer_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    encryption = (serialization.BestAvailableEncryption(password) if password
                  else serialization.NoEncryption())
    paths = TestCA(folder / f"{name}-root.pem", folder / f"{name}-signer-chain.pem", folder / f"{name}-signer.key")
    paths.root.write_bytes(root.public_bytes(pem))
    chain = (leaf.public_bytes(pem) + (middle.public_bytes(pem) if middle is not None else b"")
             + (b"" if self_signed else root.public_bytes(pem)))
    paths.cert.write_bytes(chain)
    paths.key.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, encryption))
    return paths
