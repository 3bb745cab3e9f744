"""The files of the renders kept in ``OUT/.idcli/superseded/<shot_id>/`` (superseded.py tells the whole protocol): their
names (``<shot_id>_t<take>.<key>[.n]`` and an extension), what their sidecars and PNGs record, the scan of the folder,
and the one rename that moves a file there or back. Read bounded and never through a link: a received folder may hold
anything. Split from superseded.py; moving_aside.py, kept_versions.py, interrupted_restore.py and restore.py build on
it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from . import safeio
from .errors import OutputError
from .shared_files import make_folders, refused_to_move

SUPERSEDED = Path(".idcli") / "superseded"
MAX_SIDECAR_BYTES = 4 * 1024 * 1024
# A kept file's name: the take's stem, the label of its job key (``key_label``), ``.N`` when that name was taken, and
# its extension.
KEPT_NAME = re.compile(r"^(?P<stem>(?P<shot>.+)_t(?P<take>\d+))\.(?P<key>[0-9a-f]{12}|unkeyed)(?:\.(?P<n>\d+))?"
                       r"(?P<ext>\.mask\.png|\.png|\.json)$")


def key_label(job_key: str | None) -> str:
    """The file-name form of a job key: its first 12 hex digits."""
    if not job_key or ":" not in job_key:
        return "unkeyed"
    digest = job_key.split(":", 1)[1][:12]
    return digest if re.fullmatch(r"[0-9a-f]{12}", digest) else "unkeyed"


def read_sidecar_file(path: Path) -> dict[str, Any] | None:
    """A sidecar's JSON (bounded read, never through a link), or None."""
    try:
        raw = safeio.read_regular(path, MAX_SIDECAR_BYTES, follow_links=False)
        data = json.loads(raw.decode("utf-8"))
    except (safeio.NotRegularFile, ValueError, RecursionError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _png_key(path: Path) -> str | None:
    from .store import png_record_of_fd

    try:
        fd = safeio.open_regular(path, follow_links=False)
    except safeio.NotRegularFile:
        return None
    try:
        if os.fstat(fd).st_size > 256 * 1024 * 1024:
            return None
        record = png_record_of_fd(fd)  # a damaged file is simply not keyed (None)
    finally:
        os.close(fd)
    key = record.get("job_key") if record else None
    return key if isinstance(key, str) else None


def take_key(image: Path, sidecar: Path) -> str | None:
    """The job key a take's files carry, whose label names them when moved aside: the sidecar's, else the PNG's."""
    record = read_sidecar_file(sidecar) if is_regular(sidecar) else None
    key = record.get("job_key") if record else None
    if not isinstance(key, str):
        key = _png_key(image) if is_regular(image) else None
    return key if isinstance(key, str) else None


def recorded_image_sha256(sidecar: Path) -> str | None:
    """The image sha256 a sidecar records; None when it cannot be read or records none."""
    record = (read_sidecar_file(sidecar) or {}).get("image")
    sha256 = record.get("sha256") if isinstance(record, dict) else None
    return sha256 if isinstance(sha256, str) and sha256 else None


def is_regular(path: Path) -> bool:
    """Whether ``path`` is a regular file, not a link to one (a link or a special file planted there never moves)."""
    try:
        return path.is_file() and not path.is_symlink()
    except OSError:
        return False


def free_name(folder: Path, base: str, exts: tuple[str, ...]) -> str:
    """``base`` unless one of its files exists already, then ``base.2``, ``base.3``, ..."""
    candidate, n = base, 1
    while any((folder / f"{candidate}{ext}").exists() for ext in exts):
        n += 1
        candidate = f"{base}.{n}"
    return candidate


def move_file(source: Path, target: Path) -> None:
    """One ``rename`` in the same file system, its folder synced after: the file is at one of its two paths whenever
    the process is killed. ``OutputError`` (exit 5) naming both when it cannot be done."""
    try:
        make_folders(target.parent)
        os.rename(source, target)
        safeio.fsync_dir(target.parent)
    except OSError as exc:
        raise (refused_to_move(source, target, exc)
               or OutputError(f"cannot move {source} aside to {target}: {exc.strerror or exc}")) from None


def scan_kept(root: Path, stem: str | None, shot: str | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """The kept versions' files, by (shot folder, version name): shot, take, the newest ctime and each file's path
    by its extension (``.png``, ``.json``, ``.mask.png``). ``shot``: only that shot's folder is listed (a commit asks
    of one take: a scan of every shot's per take was quadratic over a film)."""
    base = Path(root) / SUPERSEDED
    found: dict[tuple[str, str], dict[str, Any]] = {}
    try:
        if shot is None:
            folders = [e.name for e in os.scandir(base) if e.is_dir(follow_symlinks=False)]
        else:  # a folder, never a link to one, as the scan's entries
            folders = [shot] if stat.S_ISDIR(os.lstat(base / shot).st_mode) else []
    except OSError:
        return {}
    for folder in folders:
        try:
            entries = list(os.scandir(base / folder))
        except OSError:
            continue
        for entry in entries:
            match = KEPT_NAME.match(entry.name)
            if not match or not entry.is_file(follow_symlinks=False):
                continue
            if stem is not None and match["stem"] != stem:
                continue
            name = entry.name[: -len(match["ext"])]
            item = found.setdefault((folder, name), {"shot": match["shot"], "take": int(match["take"]),
                                                           "time": 0.0})
            rel = (SUPERSEDED / folder / entry.name).as_posix()
            item[match["ext"]] = rel
            with contextlib.suppress(OSError):
                item["time"] = max(item["time"], entry.stat(follow_symlinks=False).st_ctime)
    return found
