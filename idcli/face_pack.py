"""Fetching an insightface face-model pack (buffalo_l), only when the user accepts its licence.

The pretrained insightface packs are for non-commercial research only, and insightface publishes
them only as zip assets of its GitHub releases (insightface 2.1's own downloader,
``insightface/utils/storage.py``, reads ``releases/download/model-zoo/<pack>.zip``; the older
``releases/download/v0.7/`` holds the same names). There is no official Hugging Face repository, so
this is a small HTTP download rather than ``huggingface_hub``:

- resumable: the bytes go to ``$IDCLI_HOME/models/downloads/<pack>-<url hash>.zip.part``; a broken
  transfer is retried with a ``Range`` request, and a later run resumes from what was kept;
- checked: the length the server announced, every extracted member's CRC-32, the pack's required files, and
  the zip's sha256 against ``expected_sha256`` when one is given (insightface publishes none); the
  zip's and every file's sha256 are recorded in ``idcli-fetch.json`` in the pack folder;
- extracted safely: only ``.onnx`` files (at the top of the zip or under ``<pack>/``) are written,
  every other file is skipped and named; a member whose path would leave the target (zip-slip, an
  absolute path, a link) refuses the whole archive; sizes are bounded. Files appear in the target
  only once the whole zip checked out.

``IDCLI_INSIGHTFACE_URL`` (or ``base_url``) replaces the release URL: a mirror, or a loopback server in tests.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import stat
import sys
import urllib.error
import urllib.request
import warnings
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import InputError, ModelUnavailableError
from .hashing import sha256_file
from .identity.faces import (
    ACCEPT_FLAG,
    DEFAULT_PACK,
    LICENCE_NOTE,
    face_models_folder,
    fetch_command,
    is_synthetic_pack,
)
from .option_words import EachSurface, Option, words
from .paths import state_dir
from .safeio import remove_dead_temporaries, temporary_path

URL_ENV = "IDCLI_INSIGHTFACE_URL"
DEFAULT_URL = "https://github.com/deepinsight/insightface/releases/download/model-zoo"
# What idcli needs from each pack it can fetch: the SCRFD detector and the ArcFace recogniser.
REQUIRED_FILES = {"buffalo_l": ("det_10g.onnx", "w600k_r50.onnx")}
RECORD = "idcli-fetch.json"
MAX_FILE_BYTES = 1 << 30  # buffalo_l's largest file is ~170 MB
MAX_PACK_BYTES = 2 << 30
RETRIES = 3  # broken transfers retried within one run, each resuming where the last stopped
CHUNK = 1 << 20
LICENCE = "insightface pretrained models: non-commercial research only"


# How a caller accepts the licence: the command's flag, or the argument of each Python entry (docs/models.md).
ACCEPT = EachSurface("accept_insightface_licence=True (model_setup.fetch, face_pack.fetch_face_pack)", ACCEPT_FLAG)


def not_accepted_message(pack: str = DEFAULT_PACK) -> str:
    """Why nothing was fetched, in the surface's words (option_words.py)."""
    return words((f"face models not fetched: the pretrained insightface pack '{pack}' is licensed for non-commercial "
                  "research only. If your use is allowed, add ", ACCEPT, " to fetch it; or put a pack you may use in "
                  "the folder yourself (or pass ", Option("face_models", "DIR"), ")."))


def _read_record(folder: Path) -> dict[str, Any] | None:
    """The fetch record idcli left in ``folder``; read bounded, as PACK.json (the folder may be a received one)."""
    from .models import read_model_json

    with contextlib.suppress(OSError, ValueError):
        record = read_model_json(folder / RECORD)
        return record if isinstance(record, dict) else None
    return None


def pack_status(option: str | Path | None = None, pack: str = DEFAULT_PACK) -> dict[str, Any]:
    """Whether the folder idcli reads face models from holds a pack: files, size, licence, origin; ``problem``: what
    the render would refuse in it (a detector alone, a cut recogniser: face_pack_check.py, the graphs parsed, not run),
    None for a usable pack or none at all. The folder is the one real presets read, chosen where they choose it
    (``identity.faces.face_models_folder``: ``option``, else ``$IDCLI_FACE_MODELS``, else
    ``~/.insightface/models/buffalo_l``); a fetch fills it."""
    from .face_pack_check import face_pack_problem

    folder, chosen = face_models_folder(option)
    if folder is None:  # the word "synthetic": the random-weight test pack, built on first use
        return {"pack": "synthetic", "folder": "synthetic", "chosen_by": chosen,
                "present": True, "problem": None, "files": [], "size_bytes": None, "fetched_by_idcli": False,
                "licence": "synthetic random weights (idcli's test pack)", "fetch": None}
    onnx = sorted(folder.glob("*.onnx")) if folder.is_dir() else []
    record = _read_record(folder) if onnx else None
    synthetic = is_synthetic_pack(folder)
    # The pack the folder holds, not the one a fetch would get (`--face-models .../antelopev2` read "buffalo_l"):
    # the one idcli's fetch record names, else the folder's own name; an empty folder, the pack a fetch puts there.
    fetched = record.get("pack") if record is not None else None
    held = fetched if isinstance(fetched, str) and fetched else (folder.name if onnx else pack)
    return {
        "pack": held, "folder": str(folder), "chosen_by": chosen, "present": bool(onnx),
        "problem": face_pack_problem(onnx) if onnx else None,
        "files": [p.name for p in onnx], "size_bytes": sum(p.stat().st_size for p in onnx) if onnx else None,
        "fetched_by_idcli": record is not None,
        "licence": "synthetic random weights (idcli's test pack)" if synthetic else LICENCE,
        "fetch": fetch_command(folder, chosen, "sd15|sdxl"),
    }


# -- download -----------------------------------------------------------------------------------------


def _part_file(url: str, pack: str) -> Path:
    # Named by the URL: a changed URL never resumes another file's bytes.
    folder = state_dir() / "models" / "downloads"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{pack}-{hashlib.sha256(url.encode()).hexdigest()[:12]}.zip.part"


def _no_network(exc: BaseException) -> bool:
    reason = getattr(exc, "reason", exc)
    return isinstance(reason, (ConnectionRefusedError, socket.gaierror, socket.timeout, TimeoutError))


def _total_size(response: http.client.HTTPResponse, start: int) -> int | None:
    found = re.match(r"bytes \d+-\d+/(\d+)", response.headers.get("Content-Range") or "")
    if found:
        return int(found.group(1))
    length = response.headers.get("Content-Length")
    return start + int(length) if length and length.isdigit() else None


def download(url: str, part: Path, progress: bool = True) -> None:
    """Bring ``url`` into ``part``, resuming what ``part`` holds; raise when it ends short after retries."""
    from tqdm import tqdm

    from .versions import TOOL_VERSION

    tries = 0
    while True:
        have = part.stat().st_size if part.exists() else 0
        headers = {"User-Agent": f"idcli/{TOOL_VERSION}", "Accept": "application/octet-stream"}
        if have:
            headers["Range"] = f"bytes={have}-"
        total: int | None = None
        failure: BaseException | None = None
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60) as response:
                offset = re.match(r"bytes (\d+)-", response.headers.get("Content-Range") or "")
                # A server that ignores Range (200) or answers for another offset sends from the start again.
                resumed = have > 0 and response.status == 206 and offset is not None and int(offset[1]) == have
                if response.status == 206 and have and not resumed:
                    part.unlink(missing_ok=True)
                    continue
                start = have if resumed else 0
                total = _total_size(response, start)
                with part.open("ab" if resumed else "wb") as handle, \
                        tqdm(total=total, initial=start, unit="B", unit_scale=True, desc=part.name.split("-")[0],
                             disable=not progress, file=sys.stderr) as bar:
                    while chunk := response.read(CHUNK):
                        handle.write(chunk)
                        bar.update(len(chunk))
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and have:  # asked beyond the end: the kept bytes are not this file's start
                part.unlink()
                continue
            raise ModelUnavailableError(f"cannot fetch {url}: HTTP {exc.code} {exc.reason}. Check the address "
                                        f"(${URL_ENV} replaces {DEFAULT_URL}) and retry.") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            if isinstance(exc, urllib.error.URLError) and _no_network(exc) and not tries:
                raise ModelUnavailableError(
                    f"cannot reach {url} ({getattr(exc, 'reason', exc)}): no network? Connect and run the same "
                    f"command again, or set ${URL_ENV} to a mirror of the insightface release assets.") from None
            failure = exc
        got = part.stat().st_size if part.exists() else 0
        if failure is None and (total is None or got == total):
            return
        if total is not None and got == total:  # every byte came although the connection broke at the end
            return
        if total is not None and got > total:
            part.unlink()
            raise ModelUnavailableError(f"the download of {url} is longer than the server announced; the partial "
                                        "file was deleted — run the same command again")
        tries += 1
        if tries > RETRIES:
            told = f"{got} of {total} bytes" if total is not None else f"{got} bytes, {failure}"
            raise ModelUnavailableError(
                f"the download of {url} ended early (truncated: {told}) {tries} times; the bytes are kept in "
                f"{part} — run the same command again to resume")


# -- extraction ---------------------------------------------------------------------------------------


def _member_target(info: zipfile.ZipInfo, pack: str) -> str | None:
    """The file name a zip member lands as in the pack folder; None to skip it; raises on zip-slip."""
    name = info.filename
    parts = PurePosixPath(name).parts
    mode = info.external_attr >> 16
    if ("\\" in name or name.startswith("/") or ".." in parts or (parts and ":" in parts[0])
            or stat.S_ISLNK(mode)):
        raise ModelUnavailableError(f"the face-model zip holds '{name}', a path outside the pack folder (or a "
                                    "link): refused, nothing was installed. The archive is not insightface's; "
                                    f"check ${URL_ENV}")
    if info.is_dir() or not name.endswith(".onnx"):
        return None
    if len(parts) == 1 or (len(parts) == 2 and parts[0] == pack):
        return parts[-1]
    return None


def extract_pack(archive: Path, staging: Path, pack: str) -> tuple[dict[str, str], list[str]]:
    """Write the pack's ``.onnx`` files into ``staging``; return {file: sha256} and the skipped members."""
    try:
        with zipfile.ZipFile(archive) as zipped:
            infos = zipped.infolist()
            plan = [(info, _member_target(info, pack)) for info in infos]  # zip-slip refused before any write
            files: dict[str, str] = {}
            skipped = [info.filename for info, target in plan if target is None and not info.is_dir()]
            written = 0
            for info, target in plan:
                if target is None:
                    continue
                if target in files:
                    raise ModelUnavailableError(f"the face-model zip holds '{target}' twice: refused")
                digest = hashlib.sha256()
                with zipped.open(info) as source, (staging / target).open("xb") as sink:
                    while block := source.read(CHUNK):
                        written += len(block)
                        if written > MAX_PACK_BYTES or sink.tell() + len(block) > MAX_FILE_BYTES:
                            raise ModelUnavailableError(f"the face-model zip unpacks to more than idcli allows "
                                                        f"({MAX_FILE_BYTES >> 20} MiB a file, {MAX_PACK_BYTES >> 20} "
                                                        "MiB in all): refused")
                        sink.write(block)
                        digest.update(block)
                files[target] = digest.hexdigest()
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:  # reading a member checks its CRC-32 at its end
        raise ModelUnavailableError(f"the downloaded face-model pack is not a whole zip ({exc}): damaged or "
                                    "truncated; it was deleted — run the same command again") from None
    return files, skipped


def _install(staging: Path, target: Path) -> None:
    """Move the checked files into ``target``, the record last (it marks a finished install)."""
    target.mkdir(parents=True, exist_ok=True)
    for file in sorted(staging.iterdir(), key=lambda p: p.name == RECORD):
        os.replace(file, target / file.name)


def check_expected_sha256(expected_sha256: str | None) -> None:
    """``--face-pack-sha256`` as given: 64 lower-case hex digits (checked before any download starts)."""
    if expected_sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", expected_sha256):
        raise InputError(f"expected sha256 '{expected_sha256}' is not 64 lower-case hex digits")


def licence_accepted(accept_insightface_licence: bool, accept_licence: bool | None) -> bool:
    """The licence answer of a caller that may still spell it ``accept_licence=`` (fetch_face_pack's name until
    2026-12-01; model_setup.fetch and the docs say ``accept_insightface_licence=``): the old spelling works as
    before, with a DeprecationWarning at the caller's line; both given is refused rather than one picked."""
    if accept_licence is None:
        return accept_insightface_licence
    if accept_insightface_licence:
        raise InputError("accept_insightface_licence= and accept_licence= both given: accept_licence= is the "
                         "deprecated spelling of accept_insightface_licence=; give that one only")
    warnings.warn("fetch_face_pack(accept_licence=...): accept_licence= is deprecated: use "
                  "accept_insightface_licence=, as model_setup.fetch does (the same answer)", DeprecationWarning,
                  stacklevel=3)
    return accept_licence


def fetch_face_pack(*, accept_insightface_licence: bool = False, option: str | Path | None = None,
                    pack: str = DEFAULT_PACK, base_url: str | None = None, expected_sha256: str | None = None,
                    progress: bool = True, accept_licence: bool | None = None) -> dict[str, Any]:
    """Download and install ``pack`` where idcli reads face models, only with ``accept_insightface_licence``
    (``--accept-insightface-license``; ``accept_licence``, its old spelling, still works and warns).

    A folder that already holds a usable pack is left alone (reported as present); one the render would refuse (a
    detector alone, a cut recogniser: ``problem``) gets the pack's files over its own of the same names. Without
    ``accept_insightface_licence`` nothing is downloaded: the result's ``state`` is ``"licence not accepted"``
    and ``message`` says how to accept.
    """
    accepted = licence_accepted(accept_insightface_licence, accept_licence)
    status = pack_status(option, pack)
    if status["present"] and status["problem"] is None:
        return status | {"state": "present"}
    if not accepted:
        broken = (f"the face models in {status['folder']} are not usable: {status['problem']}. "
                  if status["problem"] else "")
        return status | {"state": "licence not accepted", "message": broken + not_accepted_message(pack)}
    if pack not in REQUIRED_FILES:
        raise InputError(f"unknown face-model pack '{pack}' (allowed: {', '.join(REQUIRED_FILES)})")
    check_expected_sha256(expected_sha256)
    url = f"{(base_url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip('/')}/{pack}.zip"
    target = Path(status["folder"])
    part = _part_file(url, pack)
    download(url, part, progress)
    zip_sha256 = sha256_file(part)
    if expected_sha256 is not None and zip_sha256 != expected_sha256:
        part.unlink()
        raise ModelUnavailableError(f"the downloaded {pack}.zip has sha256 {zip_sha256}, not the expected "
                                    f"{expected_sha256}: damaged or a different file; it was deleted — run the "
                                    "same command again, or check the expected hash and the URL")
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_temporaries(target.parent)  # the staging folder of a fetch killed mid-install
    staging = temporary_path(target)  # atomic_write's naming: the same liveness rule judges it
    staging.mkdir(0o700)
    try:
        try:
            files, skipped = extract_pack(part, staging, pack)
        except ModelUnavailableError:
            part.unlink(missing_ok=True)  # a damaged or hostile archive is never resumed
            raise
        missing = [name for name in REQUIRED_FILES[pack] if name not in files]
        if missing:
            part.unlink(missing_ok=True)
            raise ModelUnavailableError(f"{url} has no {', '.join(missing)}: not the {pack} pack; nothing was "
                                        f"installed. Check ${URL_ENV}")
        record = {"pack": pack, "url": url, "zip_sha256": zip_sha256, "zip_bytes": part.stat().st_size,
                  "files": files, "skipped": skipped, "licence": LICENCE_NOTE}
        (staging / RECORD).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", "utf-8")
        _install(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    part.unlink(missing_ok=True)
    return pack_status(option, pack) | {"state": "fetched", "zip_sha256": zip_sha256, "skipped": skipped,
                                        "url": url}
