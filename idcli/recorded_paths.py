"""Finding a render's input files again after the project folder moved (``idcli reproduce``, export).

Sidecars record an input (a selfie, a plate) as the shot list gives it — ``path``, relative to the shot
list — beside ``abs_path``, where it resolved when planned, and its sha256. The run manifest records the
shot list's place relative to the output folder (``file_relpath``), which stays true when the whole
project (shot list, selfies, renders) is moved or copied together. So an input is looked for at
``abs_path``, then at ``path`` beside the shot list found through the manifest, then as the manifest's
``file`` names it from the current folder (manifests from before ``file_relpath``); the first with the
recorded sha256 is used. An older sidecar records only an absolute ``path``: in a moved project its trailing
parts are looked for in those folders, and, for a manifest from before ``file_relpath``, in the folders
holding the output folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .paths import absolute


def shotlist_relpath(loaded: Any, out_dir: Path) -> str | None:
    """The shot list file relative to the output folder ("/"-separated), or None (not from a file, or no
    relative path between them: another drive)."""
    source = Path(loaded.source)
    if not source.is_file():
        return None
    try:
        return Path(os.path.relpath(source.absolute(), out_dir.absolute())).as_posix()
    except ValueError:
        return None


def shotlist_file(out_dir: Path, manifest: dict[str, Any] | None = None) -> Path | None:
    """The shot list that last rendered ``out_dir``, where it is now (None when unknown)."""
    if manifest is None:
        from .store import OutputStore

        manifest = OutputStore(out_dir).read_manifest()
    if not manifest:
        return None
    relative = manifest.get("file_relpath")
    if isinstance(relative, str) and relative:
        return Path(os.path.normpath(out_dir.absolute() / relative))
    given = manifest.get("file")  # an older manifest: only an absolute ``file`` says where, not the render's cwd
    return Path(given) if isinstance(given, str) and Path(given).is_absolute() else None


def shotlist_dirs(out_dir: Path | None) -> list[Path]:
    """Folders a recorded ``path`` may be relative to: the shot list's, found through the manifest of
    ``out_dir`` (``file_relpath``, else ``file``, as older manifests give it)."""
    if out_dir is None:
        return []
    from .store import OutputStore

    manifest = OutputStore(out_dir).read_manifest() or {}
    dirs = []
    found = shotlist_file(out_dir, manifest)
    if found is not None:
        dirs.append(found.parent)
    if isinstance(manifest.get("file"), str):
        dirs.append(Path(manifest["file"]).parent)
    if not isinstance(manifest.get("file_relpath"), str):
        # An older idcli's manifest (or none) does not say where the shot list is from the output folder:
        # the folders holding it are where a shot list usually sits (OUT beside it, or renders/<project>).
        dirs += [absolute(out_dir).parent, absolute(out_dir).parent.parent]
    return list(dict.fromkeys(dirs))


def candidates(path: str, abs_path: str | None, dirs: list[Path]) -> list[Path]:
    """Where a recorded input may be, in the order to try: ``abs_path``, ``path`` in each of ``dirs``,
    ``path`` itself (an absolute one, as older sidecars record selfies)."""
    found = [Path(abs_path)] if abs_path else []
    found += [folder / path for folder in dirs]
    found.append(Path(path))
    if Path(path).is_absolute():
        # An older sidecar's absolute path, its project moved since: its trailing parts in each of ``dirs``,
        # longest first (``selfies/mara_1.jpg`` beside the moved shot list); the caller checks the sha256.
        parts = Path(path).parts[1:]
        found += [folder / Path(*parts[start:]) for folder in dirs for start in range(1, len(parts))]
    return list(dict.fromkeys(found))
