"""C2PA content credentials: signing every committed image, and reading a signed one back.

The commit path calls ``Signer.sign_png`` on the encoded PNG bytes, in memory, just before they are
written: the sidecar's sha256 is then the signed file's (resume still works), and nothing re-saves
the image afterwards (Pillow would drop the manifest). The manifest holds a ``c2pa.created`` action
with the IPTC digital source type ``trainedAlgorithmicMedia``, idcli and the model as the generator,
and the ``org.idcli.render`` assertion with what a reviewer needs from the sidecar. No thumbnail; no
time-stamp authority unless one is configured: signing is fully offline.

Credentials (docs/provenance.md): a PEM certificate chain (end-entity first, then its issuers; a
self-signed leaf is refused by C2PA validators) and its private key (PEM, optionally encrypted). They
are checked before anything renders: a bad key, a wrong password, an expired or mismatched
certificate is an ``InputError`` (exit 2).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .c2pa_words import UNTRUSTED
from .errors import InputError, OutputError
from .hashing import sha256_bytes
from .option_words import Option
from .random_mark import random_face_model_names
from .versions import ENGINE_ALGORITHM, TOOL_NAME, TOOL_VERSION

CERT_ENV = "IDCLI_C2PA_CERT"
KEY_ENV = "IDCLI_C2PA_KEY"
PASSWORD_ENV = "IDCLI_C2PA_KEY_PASSWORD"  # default name of the variable holding the key's password
ASSERTION_LABEL = "org.idcli.render"
DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
# A plate image (docs/plates.md) is an existing frame with faces re-generated in it: IPTC's composite type.
COMPOSITE_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
MAX_CREDENTIAL_BYTES = 1024 * 1024
# The SDK's default is a JPEG thumbnail in the manifest (about a megabyte for a large render).
_SIGN_SETTINGS = {"builder": {"thumbnail": {"enabled": False}}}


class SigningError(InputError):
    """Credentials that cannot sign (exit 2, before anything renders)."""


EXTRA_HINT = "install the provenance extra: pip install 'idcli[provenance]' (c2pa-python and cryptography)"


def available() -> bool:
    """Whether c2pa-python and cryptography are installed (the ``provenance`` extra)."""
    from importlib.util import find_spec

    return find_spec("c2pa") is not None and find_spec("cryptography") is not None


@dataclass(frozen=True)
class Credentials:
    """A checked certificate chain and private key, ready for c2pa-python."""

    cert_path: str
    key_path: str
    chain_pem: bytes = b""
    key_pem: bytes = b""  # unencrypted PKCS#8: what the SDK takes
    alg: str = "es256"
    subject: str = ""
    issuer: str = ""
    not_after: str = ""
    ta_url: str | None = None
    serial_number: str = ""  # the signer certificate's, lowercase hex: what a studio revoking a key looks for
    subject_common_name: str | None = None
    issuer_common_name: str | None = None

    def record(self) -> dict[str, Any]:
        """What a sidecar says about the signer (never the key)."""
        return {"alg": self.alg, "subject": self.subject, "issuer": self.issuer, "not_after": self.not_after,
                "time_stamp_authority": self.ta_url, "serial_number": self.serial_number,
                "subject_common_name": self.subject_common_name, "issuer_common_name": self.issuer_common_name}


def common_name(name: Any) -> str | None:
    """The first common name of a ``cryptography`` x509 Name, or None when it has none."""
    from cryptography.x509.oid import NameOID

    return next((str(a.value) for a in name.get_attributes_for_oid(NameOID.COMMON_NAME)), None)


def _read(path: Path, what: str, field: str | None = None) -> bytes:
    """The credential file's bytes. Through safeio: a path from IDCLI_C2PA_CERT/KEY is checked by nothing
    else, and a plain open() of a FIFO there waited forever for a writer."""
    from .safeio import NotRegularFile, read_regular

    try:
        return read_regular(path, MAX_CREDENTIAL_BYTES)
    except NotRegularFile as exc:
        reasons = {"missing": "cannot read it (no such file)", "folder": "is a folder",
                   "special": "is not a regular file",
                   "too-large": f"over {MAX_CREDENTIAL_BYTES:,} bytes, not a PEM file"}
        reason = reasons.get(exc.kind) or f"cannot read it ({exc.detail})"
        raise SigningError(f"C2PA {what} {path}: {reason}", file=path, field=field) from None


def _algorithm(key: Any, key_path: Path, field: str | None = None) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if isinstance(key, ec.EllipticCurvePrivateKey):
        algs = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}
        if key.curve.name in algs:
            return algs[key.curve.name]
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    elif isinstance(key, rsa.RSAPrivateKey):
        return "ps256"
    raise SigningError(f"C2PA key {key_path}: {type(key).__name__} keys cannot sign C2PA manifests; use an "
                       "EC P-256/P-384/P-521, Ed25519 or RSA (PS256) key", file=key_path, field=field)


def load_credentials(cert_path: str | Path, key_path: str | Path, password: bytes | None = None,
                     ta_url: str | None = None, now: datetime | None = None,
                     password_env: str | None = None, cert_field: str | None = None,
                     key_field: str | None = None) -> Credentials:
    """Read and check a certificate chain and its key; then sign a tiny PNG with them, so anything the
    C2PA SDK itself refuses is found here, before a render, too. ``password_env``: the environment
    variable the password was read from, named in the errors about it. ``cert_field``, ``key_field``: where the
    paths were given (``IDCLI_C2PA_CERT``, ``provenance.c2pa.key``), the ``field`` of an error about that file
    (with the file's path as its ``file``), as ``--json`` reports it."""
    if not available():
        raise SigningError(f"C2PA signing needs c2pa-python and cryptography: {EXTRA_HINT}")
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert_path, key_path = Path(cert_path).expanduser(), Path(key_path).expanduser()

    def bad_cert(message: str) -> SigningError:
        return SigningError(message, file=cert_path, field=cert_field)

    def bad_key(message: str, field: str | None = key_field) -> SigningError:
        return SigningError(message, file=key_path, field=field)

    try:
        chain = x509.load_pem_x509_certificates(_read(cert_path, "certificate", cert_field))
    except ValueError:
        raise bad_cert(f"C2PA certificate {cert_path}: not a PEM certificate chain") from None
    try:
        key = serialization.load_pem_private_key(_read(key_path, "key", key_field), password=password)
    except TypeError:
        where = (f"; set {PASSWORD_ENV} (or the shot list's provenance.c2pa.password_env)"
                 if password_env in (None, PASSWORD_ENV) else f"; set {password_env} (provenance.c2pa.password_env)")
        hint = where if password is None else ""
        raise bad_key(f"C2PA key {key_path}: the key is encrypted and "
                      f"{'no password was given' if password is None else 'does not take a password'}"
                      f"{hint}", field=(password_env or PASSWORD_ENV) if password is None else key_field) from None
    except ValueError:
        wrong = f"wrong password in {password_env}" if password_env else "wrong password"
        what = f"{wrong}, or not a PEM private key" if password else "not a PEM private key"
        raise bad_key(f"C2PA key {key_path}: cannot load it ({what})",
                      field=password_env if password and password_env else key_field) from None
    leaf = chain[0]
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if (leaf.public_key().public_bytes(serialization.Encoding.DER, public)
            != key.public_key().public_bytes(serialization.Encoding.DER, public)):
        raise bad_key(f"C2PA key {key_path} does not belong to the certificate {cert_path} (the first "
                      "certificate in the file must be the signer's own)")
    moment = now or datetime.now(timezone.utc)  # noqa: UP017
    if moment < leaf.not_valid_before_utc:
        raise bad_cert(f"C2PA certificate {cert_path} is not valid before {leaf.not_valid_before_utc:%Y-%m-%d}")
    if moment > leaf.not_valid_after_utc:
        raise bad_cert(f"C2PA certificate {cert_path} expired on {leaf.not_valid_after_utc:%Y-%m-%d}")
    if leaf.issuer == leaf.subject:
        raise bad_cert(f"C2PA certificate {cert_path} is self-signed; C2PA validators refuse a self-signed "
                       "signer. Make a CA and an end-entity certificate signed by it (docs/provenance.md)")
    try:
        constraints = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
        if constraints.ca:
            raise bad_cert(f"C2PA certificate {cert_path} is a CA certificate; sign with an end-entity "
                           "certificate (CA:false) issued by it (docs/provenance.md)")
    except x509.ExtensionNotFound:
        pass
    _check_chain(chain, cert_path, moment, cert_field)
    alg = _algorithm(key, key_path, key_field)
    pem = serialization.Encoding.PEM
    credentials = Credentials(
        str(cert_path), str(key_path), b"".join(c.public_bytes(pem) for c in chain),
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        alg, leaf.subject.rfc4514_string(), leaf.issuer.rfc4514_string(), leaf.not_valid_after_utc.isoformat(),
        ta_url, format(leaf.serial_number, "x"), common_name(leaf.subject), common_name(leaf.issuer))
    _trial_sign(credentials, leaf, cert_field)
    return credentials


def _check_chain(chain: list[Any], cert_path: Path, moment: datetime, field: str | None = None) -> None:
    """Each certificate of the file issued by the one after it, and none expired.

    The SDK signs with a chain in another order, or one missing an intermediate, without a word; but no
    validator can then build the path to the root, so every image of the render would fail
    ``idcli verify --trust`` (``Valid``, never ``Trusted``). The root itself may be left out.
    """
    from itertools import pairwise

    from cryptography.exceptions import InvalidSignature

    def name(cert: Any) -> str:
        return cert.subject.rfc4514_string()

    for number, (cert, issuer) in enumerate(pairwise(chain), start=1):
        try:
            cert.verify_directly_issued_by(issuer)  # names, then the signature
        except (ValueError, TypeError, InvalidSignature):
            raise SigningError(
                f"C2PA certificate {cert_path}: certificate {number} ({name(cert)}) is not issued by the "
                f"certificate after it ({name(issuer)}) but by '{cert.issuer.rfc4514_string()}'; put the "
                "signer's certificate first, then the one that issued it, and so on towards the root, "
                "leaving none out (docs/provenance.md)", file=cert_path, field=field) from None
    for number, cert in enumerate(chain[1:], start=2):
        if moment > cert.not_valid_after_utc:
            raise SigningError(f"C2PA certificate {cert_path}: certificate {number} ({name(cert)}) expired on "
                               f"{cert.not_valid_after_utc:%Y-%m-%d}", file=cert_path, field=field)


# Extended key usages C2PA's default certificate profile accepts for a signer (c2pa-rs
# CertificateAcceptancePolicy): emailProtection and documentSigning; anyExtendedKeyUsage is refused.
_SIGNER_USAGES = ("1.3.6.1.5.5.7.3.4", "1.3.6.1.5.5.7.3.36")


def _profile_gaps(leaf: Any) -> list[str]:
    """What the signer's certificate lacks of C2PA's certificate profile (docs/provenance.md): the SDK refuses
    such a certificate with "the certificate is invalid" and no reason."""
    from cryptography import x509

    def extension(kind: Any) -> Any:
        try:
            return leaf.extensions.get_extension_for_class(kind).value
        except x509.ExtensionNotFound:
            return None

    gaps = []
    usage = extension(x509.KeyUsage)
    if usage is None or not usage.digital_signature:
        gaps.append("no digitalSignature key usage")
    purposes = extension(x509.ExtendedKeyUsage)
    if purposes is None:
        gaps.append("no extended key usage")
    elif not any(p.dotted_string in _SIGNER_USAGES for p in purposes):
        gaps.append("an extended key usage without emailProtection or documentSigning")
    if extension(x509.AuthorityKeyIdentifier) is None:
        gaps.append("no authority key identifier")
    return gaps


def _trial_sign(credentials: Credentials, leaf: Any, cert_field: str | None = None) -> None:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG")
    try:
        Signer(credentials).sign_png(buffer.getvalue(), {"job_key": "trial"})
    except OutputError as exc:
        if credentials.ta_url:  # signing without it tells whether the time-stamp authority is what failed
            try:
                Signer(replace(credentials, ta_url=None)).sign_png(buffer.getvalue(), {"job_key": "trial"})
            except OutputError:
                pass
            else:
                raise SigningError(f"C2PA time-stamp authority {credentials.ta_url} (provenance.c2pa.ta_url) cannot "
                                   f"time-stamp: {exc}; check the URL and that it is reachable from here",
                                   field="provenance.c2pa.ta_url") from None
        gaps = _profile_gaps(leaf)
        why = (f"; the signer's certificate has {', '.join(gaps)} (C2PA asks for keyUsage digitalSignature, an "
               "extended key usage emailProtection or documentSigning, subject and authority key identifiers: "
               "docs/provenance.md, A test certificate authority)") if gaps else ""
        raise SigningError(f"C2PA certificate {credentials.cert_path} and key {credentials.key_path} cannot "
                           f"sign: {exc}{why}", file=credentials.cert_path, field=cert_field) from None


def resolve_credentials(sign: bool | None, spec: Any, resolve: Any) -> Credentials | None:
    """The credentials a render signs with, or None when it does not sign.

    Signing is on with ``--sign``, with ``provenance.c2pa`` in the shot list, or when both
    ``IDCLI_C2PA_CERT`` and ``IDCLI_C2PA_KEY`` are set (one alone is an error); ``--no-sign`` turns it off.
    The shot list's paths win over the environment's; ``resolve`` turns a path as the shot list writes it into a path
    (``LoadedShotList.resolve_path``: ``~`` expanded, relative to the shot list).
    """
    if sign is False:
        return None
    env_cert, env_key = os.environ.get(CERT_ENV), os.environ.get(KEY_ENV)
    if spec is not None:
        cert, key = str(resolve(spec.cert)), str(resolve(spec.key))
        password_env, ta_url = spec.password_env or PASSWORD_ENV, spec.ta_url
        fields = ("provenance.c2pa.cert", "provenance.c2pa.key")
    elif env_cert and env_key:
        cert, key, password_env, ta_url = env_cert, env_key, PASSWORD_ENV, None
        fields = (CERT_ENV, KEY_ENV)
    elif env_cert or env_key:  # one of the two, the other unset or misspelt: not a silent unsigned render
        given, missing = (CERT_ENV, KEY_ENV) if env_cert else (KEY_ENV, CERT_ENV)
        raise SigningError(f"{given} is set but {missing} is not: set both to sign every image, or pass ",
                           Option("sign", False, negated="--no-sign"), " to render unsigned (docs/provenance.md)",
                           field=missing)
    elif sign:
        raise SigningError(Option("sign", True), f" needs a certificate and key: set {CERT_ENV} and {KEY_ENV}, or "
                           "provenance: {c2pa: {cert: ..., key: ...}} in the shot list (docs/provenance.md)",
                           field="sign")
    else:
        return None
    password = os.environ.get(password_env)
    return load_credentials(cert, key, password.encode("utf-8") if password else None, ta_url,
                            password_env=password_env, cert_field=fields[0], key_field=fields[1])


def manifest_for(record: dict[str, Any]) -> dict[str, Any]:
    """The C2PA manifest definition of one image, from its reproducible record (the sidecar's core)."""
    model = record.get("model") or {}
    model_name = _shown_model_id(model) or f"{model.get('preset')} (random weights)"
    plate = record.get("plate")
    description = f"rendered by {TOOL_NAME} {TOOL_VERSION} with the model {model_name}"
    if plate:
        description += (f"; faces re-generated into the plate {manifest_file_name(plate.get('path'))} "
                        f"(sha256 {plate.get('sha256')})")
    noise = random_face_model_names(record)
    if noise:  # a real model can be given the synthetic face pack: its identities are noise, its pixels are not
        description += (f"; the identities of {', '.join(noise)} were made by random-weight test face models, "
                        "so they carry no likeness")
    return {
        "claim_generator_info": [{"name": TOOL_NAME, "version": TOOL_VERSION}],
        "title": Path(str((record.get("image") or {}).get("path", "image.png"))).name,
        "format": "image/png",
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [{
                "action": "c2pa.created",
                "digitalSourceType": digital_source_type(record),
                "softwareAgent": {"name": TOOL_NAME, "version": TOOL_VERSION},
                "description": description,
            }]}},
            {"label": ASSERTION_LABEL, "data": reviewer_fields(record)},
        ],
    }


def digital_source_type(record: dict[str, Any]) -> str:
    """The IPTC digital source type of an image from its record: composite where faces were re-generated into a
    plate, else made by the model whole. A delivered copy repeats its take's (delivery.sign_copy)."""
    return COMPOSITE_SOURCE_TYPE if record.get("plate") else DIGITAL_SOURCE_TYPE


def manifest_file_name(path: Any) -> Any:
    """A recorded path's last component: a manifest travels with the image (idcli deliver carries it as the
    delivered copy's parent ingredient), so it names files, never the studio's folders."""
    from .delivery_record import file_name

    return file_name(path) if isinstance(path, str) else path


def _shown_model_id(model: dict[str, Any]) -> Any:
    """The model's id as a manifest shows it: a hub id as is, a local folder by its name (as A1111's ``Model``)."""
    return manifest_file_name(model.get("id")) if model.get("source") == "local" else model.get("id")


def reviewer_fields(record: dict[str, Any]) -> dict[str, Any]:
    """The sidecar fields a reviewer needs, carried inside the signed manifest (file names, no folders)."""
    model = record.get("model") or {}
    expression = (record.get("expression") or {}).get("label") if record.get("expression") else None
    line = (record.get("method") or {}).get("identity") or {}  # one character's line: the strength it applied

    def applied(c: dict[str, Any]) -> Any:
        if "applied_strength" in c:  # several characters: each line's own (the expression balance)
            return c["applied_strength"]
        return line.get("strength") if c.get("conditions_image") and line.get("identity_key") == \
            c.get("identity_key") else None

    identities = [{k: c.get(k) for k in ("name", "source", "identity_key", "pack_sha256", "selfie_sha256",
                                           "embedding_sha256", "conditions_image", "strength", "random_face_models")}
                  | {"face_models": (c.get("face_models") or {}).get("hash"), "applied_strength": applied(c),
                     # a two-shot's expressions are per character; its top-level one is null
                     "expression": (c.get("expression") or {}).get("label") if c.get("expression") else
                     (expression if c.get("conditions_image") else None)}
                  for c in record.get("identity") or [] if isinstance(c, dict)]
    fields = {
        "job_key": record.get("job_key"),
        "engine": record.get("engine", ENGINE_ALGORITHM),
        "tool": record.get("tool"),
        "shot_id": record.get("shot_id"),
        "take": record.get("take"),
        "seed": record.get("seed"),
        "prompt": record.get("prompt"),
        "negative_prompt": record.get("negative_prompt"),
        "framing": record.get("framing"),
        "expression": expression,
        "method": (record.get("method") or {}).get("name"),
        "model": {k: model.get(k) for k in ("preset", "source", "revision", "hash", "dtype", "random_weights")}
        | {"id": _shown_model_id(model)},
        "sampler": record.get("sampler"),
        "size": record.get("size"),
        "identities": identities,
    }
    plate = record.get("plate")
    if plate:  # which frame the image starts from, and which face is whose
        # Sizes and boxes as named fields: the C2PA SDK reads a list of small integers back as bytes.
        width, height = plate.get("size") or (None, None)
        fields["plate"] = {"sha256": plate.get("sha256"), "path": manifest_file_name(plate.get("path")),
                           "size": {"width": width, "height": height},
                           "faces": [{"character": f.get("character"),
                                      "box": dict(zip(("x", "y", "width", "height"), f.get("box") or (), strict=False))}
                                     for f in plate.get("faces") or []]}
    return fields


def sign_with_manifest(credentials: Credentials, png: bytes, manifest: dict[str, Any], *,
                       parent: tuple[dict[str, Any], bytes] | None = None, what: str = "") -> bytes:
    """PNG bytes with ``manifest`` signed and embedded (a render's, or a delivered copy's with its ``parent``
    ingredient: definition and PNG bytes); a failure is an OutputError naming ``what`` was being signed."""
    import c2pa

    c = credentials
    try:  # one C2PA signer per image: the SDK consumes it
        signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(
            alg=c.alg.encode(), sign_cert=c.chain_pem, private_key=c.key_pem,
            ta_url=c.ta_url.encode() if c.ta_url else None))
        out = io.BytesIO()
        with c2pa.Builder(manifest, c2pa.Context.from_dict(_SIGN_SETTINGS)) as builder:
            if parent is not None:
                builder.add_ingredient(parent[0], "image/png", io.BytesIO(parent[1]))
            builder.sign(signer, "image/png", io.BytesIO(png), out)
    except c2pa.C2paError as exc:
        raise OutputError(f"C2PA signing{' of ' + what if what else ''} failed: {exc}") from None
    return out.getvalue()


class Signer:
    """Signs PNG bytes with one set of credentials (one C2PA signer per image: the SDK consumes it)."""

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials

    def sign_png(self, png: bytes, record: dict[str, Any]) -> bytes:
        """The PNG with its manifest embedded; failures are OutputErrors (the run stops, nothing partial)."""
        return sign_with_manifest(self.credentials, png, manifest_for(record))

    def sign(self, png: bytes, record: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
        """The signed PNG and the sidecar's ``c2pa`` field: who signed, and the hash of the image before its
        manifest (what ``idcli reproduce`` compares a re-render with: a signature carries a time)."""
        signed = self.sign_png(png, record)
        return signed, {"signed": True, "assertion": ASSERTION_LABEL, "unsigned_sha256": sha256_bytes(png),
                        **self.credentials.record()}


def without_manifest(png: bytes) -> bytes | None:
    """The PNG as it was before signing, or None when it carries no C2PA manifest.

    c2pa-python embeds the manifest as one ``caBX`` chunk and changes no other byte, so removing that
    chunk gives back the signed bytes' original exactly (what ``c2pa.unsigned_sha256`` hashes). Used by
    ``idcli reproduce`` when a signed image's sidecar lacks that hash (rebuilt from the PNG after a kill by an idcli
    before 2026-12-01), and to read a rebuilt sidecar's ``c2pa`` block back from the image (block_read_back).
    A PNG that is not whole (provenance.png_chunks: cut short, a bad CRC) carries none that can be read.
    """
    from .provenance import PNG_SIGNATURE, PngFormatError, png_chunk, png_chunks

    try:
        chunks = png_chunks(png)
    except PngFormatError:
        return None  # a damaged file: nothing to give back as the image before signing
    if not any(kind == b"caBX" for kind, _ in chunks):
        return None
    return PNG_SIGNATURE + b"".join(png_chunk(kind, payload) for kind, payload in chunks if kind != b"caBX")


def carries_manifest(png: bytes) -> bool:
    """Whether the bytes are a whole PNG with a ``caBX`` chunk (where C2PA keeps its manifest), read by the one
    strict chunk reader (provenance.png_chunks). A file that is no PNG, or one cut short or damaged, carries none
    that can be read: the C2PA reader would call it ``Invalid`` ("asset could not be parsed"), as if a signature
    were broken; the image's sha256 is what says it was damaged."""
    from .provenance import PngFormatError, png_chunks

    try:
        return any(kind == b"caBX" for kind, _ in png_chunks(png))
    except PngFormatError:
        return False


@dataclass
class ManifestReport:
    """What the C2PA reader says about one file."""

    present: bool
    state: str | None = None  # Valid, Trusted or Invalid (None when there is no manifest)
    failures: list[str] | None = None
    created: bool = False  # the first action is c2pa.created, trainedAlgorithmicMedia (or composite: a plate)
    assertion: dict[str, Any] | None = None  # our org.idcli.render assertion
    signer: str | None = None
    error: str | None = None
    signer_org: str | None = None  # the signer certificate's organisation (C2PA's signature_info "issuer")
    serial_number: str | None = None  # the signer certificate's serial, lowercase hex
    issuer_common_name: str | None = None  # the common name of the certificate that issued the signer's
    alg: str | None = None  # the signature's algorithm as a sidecar writes it (es256, ps256, ed25519...)
    not_after: str | None = None  # the end of the signer certificate's validity (ISO 8601), as a sidecar writes it
    notes: list[str] | None = None  # the reader's failure codes that fail nothing here (UNTRUSTED without a root)

    def as_dict(self) -> dict[str, Any]:
        return {"present": self.present, "state": self.state, "failures": self.failures or [],
                "created": self.created, "signer": self.signer, "serial_number": self.serial_number,
                "issuer_common_name": self.issuer_common_name, "job_key": (self.assertion or {}).get("job_key"),
                "error": self.error, "notes": self.notes or []}


def read_manifest(data: bytes, trust_pem: str | None = None) -> ManifestReport:
    """Read and validate the manifest of PNG bytes (``trust_pem``: a studio's root certificates, which
    turn ``Valid`` into ``Trusted``)."""
    import c2pa

    try:
        context = c2pa.Context.from_dict({"trust": {"user_anchors": trust_pem}}) if trust_pem else None
        reader = c2pa.Reader("image/png", io.BytesIO(data), context=context) if context else \
            c2pa.Reader("image/png", io.BytesIO(data))
    except c2pa.C2paError as exc:
        text = str(exc)
        if "ManifestNotFound" in type(exc).__name__ or "no JUMBF" in text or "not found" in text.lower():
            return ManifestReport(False)
        return ManifestReport(True, "Invalid", error=text)
    with reader:
        state = reader.get_validation_state()
        results = reader.get_validation_results() or {}
        manifest = reader.get_active_manifest() or {}
        certificate = _signer_certificate(reader)
    listed = [f"{f.get('code')}: {f.get('explanation')}"
              for f in (results.get("activeManifest") or {}).get("failure", [])]
    # Without a root to trust, the reader lists every signer as untrusted among the failures of a Valid manifest;
    # that fails no image then (no trust was asked for), and a script reading ``failures`` saw a failure on a good
    # image: it is a note. Under a root it is the failure it says.
    failures = [f for f in listed if trust_pem or not f.startswith(UNTRUSTED)]
    notes = [f for f in listed if f not in failures]
    actions: list[dict[str, Any]] = []
    assertion = None
    for item in manifest.get("assertions", []):
        if str(item.get("label", "")).startswith("c2pa.actions"):
            actions.extend(item.get("data", {}).get("actions", []))
        elif item.get("label") == ASSERTION_LABEL:
            # Its data is what the signer wrote: anyone's manifest (a Valid, untrusted one) may hold a list or a
            # string there, which was an internal error of verify; only an object is idcli's assertion.
            data = item.get("data")
            assertion = data if isinstance(data, dict) else None
    created = bool(actions) and actions[0].get("action") == "c2pa.created" and \
        actions[0].get("digitalSourceType") in (DIGITAL_SOURCE_TYPE, COMPOSITE_SOURCE_TYPE)
    info = manifest.get("signature_info") or {}
    issuer = found if isinstance(found := certificate.get("issuer"), dict) else {}
    validity = found if isinstance(found := certificate.get("validity"), dict) else {}
    return ManifestReport(True, state, failures, created, assertion, info.get("common_name"),
                          signer_org=info.get("issuer"), serial_number=_hex_serial(info.get("cert_serial_number")),
                          issuer_common_name=_text(issuer.get("CN")),
                          alg=info["alg"].lower() if isinstance(info.get("alg"), str) else None,
                          not_after=_text(validity.get("notAfter")), notes=notes)


def block_read_back(png: bytes) -> dict[str, Any] | None:
    """The sidecar's ``c2pa`` block of a signed PNG, read back from the image (None when it carries no manifest):
    what a sidecar rebuilt from its PNG after a kill records, so that it says what the signing run's sidecar said.

    The hash before the manifest is the image's without its ``caBX`` chunk; the signer's facts are the manifest's
    (``read_manifest``). A manifest does not hold the signer's full subject and issuer names as the signing run
    wrote them, nor the time-stamp authority's URL: those are null, as is any fact the reader does not give (no
    c2pa-python here, an SDK without crJSON, a manifest it cannot read: ``idcli verify`` says why)."""
    original = without_manifest(png)
    if original is None:
        return None
    manifest = read_manifest(png) if available() else ManifestReport(True)
    if not manifest.present:
        return None
    return {"signed": True, "assertion": ASSERTION_LABEL, "unsigned_sha256": sha256_bytes(original),
            "alg": manifest.alg, "subject": None, "issuer": None, "not_after": manifest.not_after,
            "time_stamp_authority": None, "serial_number": manifest.serial_number,
            "subject_common_name": manifest.signer, "issuer_common_name": manifest.issuer_common_name}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _hex_serial(decimal: Any) -> str | None:
    """The signer certificate's serial as a sidecar writes it (lowercase hex) from ``signature_info``'s
    ``cert_serial_number`` (decimal digits); None when there is none."""
    try:
        return format(int(str(decimal), 10), "x") if decimal is not None else None
    except ValueError:
        return None


def _signer_certificate(reader: Any) -> dict[str, Any]:
    """What the active manifest says of its signer certificate (its ``issuer`` and ``validity``, among others).
    ``signature_info`` gives the signer's own common name and organisation only; the reader's crJSON (c2pa-python
    0.38) gives the certificate's issuer and validity, per manifest, under ``signature.certificateInfo``: the active
    manifest's is read (a delivered copy also holds its take's).

    Empty when it is not known: crJSON is new in 0.38 and may go or change, so an SDK without it, one whose crJSON
    raises, or a store that does not say gives an unknown issuer, which verify does not compare (c2pa_block_problems),
    never a failed take or an internal error."""
    import json

    try:
        active = json.loads(reader.json()).get("active_manifest")
        for manifest in json.loads(reader.crjson()).get("manifests") or []:
            if isinstance(manifest, dict) and manifest.get("label") == active:
                info = (manifest.get("signature") or {}).get("certificateInfo")
                return info if isinstance(info, dict) else {}
    except Exception:  # no crjson (AttributeError), the SDK's C2paError, a damaged store: whatever it raises
        return {}
    return {}
