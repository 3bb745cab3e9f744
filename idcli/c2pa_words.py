"""What a C2PA manifest that does not validate means, in words a reviewer acts on (``idcli verify``).

The C2PA reader reports validation codes (``signingCredential.expired: certificate expired``,
``assertion.dataHash.mismatch: asset hash error, …``): exact, and what an engineer greps for, but a studio's legal
reviewer read an expired certificate as a forged image. Each code idcli knows is said in words first; the reader's
own codes and text follow in parentheses, unchanged. A code it does not know is shown as the reader gives it.
"""

from __future__ import annotations

from typing import Any

from .option_words import Option, words

EXPIRED = "signingCredential.expired"
UNTRUSTED = "signingCredential.untrusted"
DATA_HASH = "assertion.dataHash.mismatch"

_PLAIN = {
    DATA_HASH: "its bytes changed after it was signed",
    "assertion.hashedURI.mismatch": "an assertion of its manifest changed after it was signed",
    "claimSignature.mismatch": "its manifest was changed after it was signed (the signature does not match it)",
    "signingCredential.revoked": "its signer's certificate was revoked",
    "signingCredential.invalid": "its signer's certificate is not one C2PA accepts",
}


def invalid_manifest_problem(manifest: Any, trust_pem: str | None, *, unchanged: bool = False) -> str:
    """The problem line of a manifest whose state is neither ``Valid`` nor ``Trusted`` (``manifest``: a
    ``signing.ManifestReport``). ``unchanged``: the image's bytes are its sidecar's, so a lapsed signature is no sign
    of an altered image, and the line says so."""
    # Without --trust every signer is "untrusted"; that is not why the manifest is invalid.
    failures = [f for f in manifest.failures or [] if trust_pem or not f.startswith(UNTRUSTED)]
    raw = "; ".join(failures) or manifest.error or "no detail"
    codes = [failure.split(":", 1)[0].strip() for failure in failures]
    said = []
    for code in dict.fromkeys(codes):
        if code == EXPIRED:
            said.append(_expired(manifest.not_after, unchanged and DATA_HASH not in codes))
        elif code == UNTRUSTED and EXPIRED not in codes:  # an expired chain is untrusted too: the expiry is the why
            said.append(words(("its signer does not chain to the ", Option("trust"), " root")))
        elif code in _PLAIN:
            said.append(_PLAIN[code])
    if not failures and manifest.error:
        said.append("the file or its C2PA manifest is damaged and cannot be read")
    detail = f"{'; '.join(said)} ({raw})" if said else raw
    return f"C2PA validation state {manifest.state}: {detail}"


def _expired(not_after: str | None, unchanged: bool) -> str:
    """A signature lapsed with its certificate: when, why it matters without a time stamp, and what to do."""
    from datetime import datetime, timezone

    when = ""
    try:
        if not_after:
            when = f" on {datetime.fromisoformat(not_after).astimezone(timezone.utc):%Y-%m-%d %H:%M:%S} UTC"  # noqa: UP017
    except ValueError:
        when = ""
    said = f"its signer's certificate expired{when}, and a manifest without a time stamp lapses with it"
    if unchanged:
        said += ("; the image itself is as signed (its bytes are its sidecar's): sign it again with a current "
                 "certificate (idcli render FILE --force --sign)")
    return said
