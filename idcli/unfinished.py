"""What a render's output folder still lacks of the shot list that last rendered it, and the command that finishes it.

The morning after a long render that was stopped (Ctrl-C, SIGTERM, a closed terminal, a kill, a full disk) or ended
with jobs failed, ``idcli verify`` said only that the images there were sound, and ``idcli review`` how many shots
it showed: nothing said that most of the shot list was never rendered, nor how to finish (the night-run trial,
2026-12-02; docs/reliability.md). The folder knows both: the run manifest (``.idcli/shotlist.jsonl``) lists every
take of the shot list as last rendered, and the journal's newest ``run-start`` without a ``run-end`` after it is a
run that never ended. A take is counted missing when no image is at its final path: an image whose sidecar a kill
cut off is adopted by the next render, not rendered again, so it is not missing work. Whether a committed take is
still current for an edited shot list needs the shot list planned: ``idcli plan FILE --out OUT`` says that; here the
note only says the file changed since. Reads only; takes no lock (a render starting meanwhile must not find the
folder busy), so a render running now is told by the pid its lock file names being alive on this host.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .shell_words import shell_path

# A shot id as the shot list allows it (docs/shot-lists.md): a received manifest naming "../x" is not looked up.
_SHOT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_HOLDER = re.compile(r"pid (\d+) on (.+)")


@dataclass(frozen=True)
class Unfinished:
    """Takes of the folder's last shot list with no image yet; ``command`` renders them."""

    shotlist: str  # the shot list file, absolute, where the manifest says it is now
    takes: int  # takes of that shot list, as last rendered
    missing_takes: tuple[str, ...]  # SHOT_tN of each take with no image, in shot-list order
    stopped: bool  # the last render started and never ended
    failed: int  # jobs the last render, which ended, counted failed (a full disk stops a run so too)
    error: str | None  # what stopped that render (a full disk), as its journal's run-end line says
    running: str | None  # "pid N on HOST" when a render holds the folder now
    changed: bool  # the shot list file's bytes differ from the ones last rendered
    gone: bool  # the shot list file is not there now
    command: str  # the one command that finishes, from the current folder

    @property
    def missing(self) -> int:
        return len(self.missing_takes)

    def note(self) -> str:
        """One line for the terminal, after ``idcli: note: ``."""
        name = Path(self.shotlist).name
        if self.running:
            why = f" (a render is writing the folder now: {self.running})"
        elif self.stopped:
            why = " (its last render was stopped before it ended)"
        elif self.failed:
            why = f" (its last render ended with {self.failed} failed" + (f": {self.error})" if self.error else ")")
        else:
            why = ""
        said = f"{self.missing} of the {self.takes} takes of {name} are not rendered yet{why}"
        if self.running:
            return said
        if self.gone:
            return f"{said}; {self.shotlist} is not there now: to finish, {self.command} with the shot list's path"
        changed = f" ({name} was changed since that render: this renders what it holds now)" if self.changed else ""
        return f"{said}; to finish: {self.command}{changed}"

    def as_dict(self) -> dict[str, Any]:
        """``verify --json``'s ``unfinished`` object (docs/file-formats.md)."""
        return {"shotlist": self.shotlist, "takes": self.takes, "missing": self.missing,
                "missing_takes": list(self.missing_takes), "stopped": self.stopped, "failed": self.failed,
                "error": self.error, "running": self.running, "shotlist_changed": self.changed,
                "shotlist_gone": self.gone, "command": self.command}


def _running_holder(root: Path) -> str | None:
    """``pid N on HOST`` when the folder's lock file names a process alive on this host (a render running now); a
    killed render's lock file keeps its text, so the pid is checked, not the text alone."""
    from . import safeio

    try:
        text = safeio.read_regular(root / ".idcli" / "lock", 200, follow_links=False).decode("utf-8", "replace")
    except safeio.NotRegularFile:
        return None
    match = _HOLDER.fullmatch(text.strip())
    if match is None or match[2] != socket.gethostname():
        return None
    try:
        os.kill(int(match[1]), 0)
    except PermissionError:
        return match[0]  # alive, another user's
    except (OSError, OverflowError):
        return None
    return match[0] if int(match[1]) != os.getpid() else None


def unfinished_takes(out_dir: str | Path) -> Unfinished | None:
    """The takes of ``out_dir``'s last shot list that have no image, or None: none missing, or no render's
    manifest there (a delivery folder, a flat folder of images, a folder never rendered into)."""
    from .errors import printable
    from .hashing import sha256_file
    from .recorded_paths import shotlist_file
    from .store import OutputStore

    root = Path(out_dir)
    store = OutputStore(root)
    manifest = store.read_manifest()
    if not manifest or not isinstance(manifest.get("takes"), list):
        return None
    takes = [(t[0], t[1]) for t in manifest["takes"]
             if isinstance(t, list) and len(t) == 2 and isinstance(t[0], str) and _SHOT_ID.fullmatch(t[0])
             and ".." not in t[0] and type(t[1]) is int and 0 < t[1] <= 1000]
    missing = tuple(f"{shot}_t{take}" for shot, take in takes
                    if not (root / shot / f"{shot}_t{take}.png").is_file())
    if not missing:
        return None
    found = shotlist_file(root, manifest)
    given = manifest.get("file")
    shotlist = found if found is not None else Path(given) if isinstance(given, str) and given else None
    if shotlist is None:
        return None  # a shot list from stdin or a string: no file to name in a command
    gone = not shotlist.is_file()
    recorded = manifest.get("shotlist_sha256")
    changed = not gone and isinstance(recorded, str) and bool(recorded) and sha256_file(shotlist) != recorded
    last = next(store.journal_newest_first(events=("run-start", "run-end")), None)
    running = _running_holder(root)
    stopped = running is None and last is not None and last.get("event") == "run-start"
    ended = last if last is not None and last.get("event") == "run-end" else {}
    failed, error = ended.get("failed"), ended.get("error")
    command = f"idcli render {shell_path(shotlist)} --out {shell_path(root)}"
    return Unfinished(str(shotlist.absolute()), len(takes), missing, stopped,
                      failed if type(failed) is int and failed > 0 else 0,
                      printable(error[:300]) if isinstance(error, str) and error else None,  # a received journal's text
                      running, changed, gone, command)
