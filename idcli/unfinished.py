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
folder busy), so a render running now is told by the pid its lock file names being alive on this host with
that file open.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .shell_words import shell_path
from .shotlist import SAFE_ID  # a shot id as a shot list allows it: a manifest naming "../x" is not looked up

_HOLDER = re.compile(r"pid (\d+) on (.+)")


@dataclass(frozen=True)
class Unfinished:
    """Takes of the folder's last shot list with no image yet; ``command`` renders them."""

    shotlist: str  # the shot list file, absolute, where the manifest says it is now
    takes: int  # takes of that shot list, as last rendered
    missing_takes: tuple[str, ...]  # SHOT_tN of each take with no image, in shot-list order
    stopped: bool  # the last render started and never ended
    failed: int  # jobs the last render, which ended, counted failed
    not_rendered: int  # jobs the last render, which ended, did not reach: the folder stopped it (a full disk)
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
        elif self.not_rendered:
            from .run_report import not_rendered_words

            failed = f"{self.failed} failed, " if self.failed else ""
            why = f" (its last render ended with {failed}{not_rendered_words(self.not_rendered, self.error)})"
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
                "not_rendered": self.not_rendered, "error": self.error,
                "running": self.running, "shotlist_changed": self.changed,
                "shotlist_gone": self.gone, "command": self.command}


def render_request(*, preset: str | None, device: str, dtype: str | None, face_models: str | None,
                   executor: str, ray_address: str | None, workers: int | None, sign: bool | None) -> dict[str, Any]:
    """What a render was asked that the next render of the same folder needs to be the same work, for the
    journal's ``run-start`` line: the options that change the jobs' keys (``preset``, ``dtype``, ``face_models``)
    or where the work runs (``device``, ``executor``, ``ray_address``, ``workers``), and ``sign`` (a finishing run
    must not leave unsigned images among signed ones). Not ``--only``: the note counts, and the command renders,
    the whole shot list; nor what changes no image (``--quiet``, ``--json``, ``--batch-size``, ``--no-qa``,
    ``--compile``). A pasted "to finish" command without them rendered with other face models or another preset:
    new keys, everything again, or an error (docs/reliability.md)."""
    folder = face_models
    if folder is not None and folder != "synthetic":  # the word is the test pack, not a folder
        # the command is pasted from another folder the morning after; "~" as idcli reads it (face_models_folder)
        folder = os.path.abspath(os.path.expanduser(folder))
    return {"preset": preset, "device": device, "dtype": dtype, "face_models": folder, "executor": executor,
            "ray_address": ray_address, "workers": workers, "sign": sign}


def finish_command(shotlist: Path, folder: Path, request: dict[str, Any] | None = None) -> str:
    """``idcli render FILE --out DIR`` with the options of ``request`` (:func:`render_request`, as a journal
    recorded it: values of the wrong type are left out), shell-quoted, from the current folder."""
    request = request if isinstance(request, dict) else {}
    words = ["idcli render", shell_path(shotlist), "--out", shell_path(folder)]

    def given(name: str) -> str | None:
        value = request.get(name)
        return value if isinstance(value, str) and value and not value.startswith("-") else None

    if (preset := given("preset")) is not None:
        words += ["--preset", shlex.quote(preset)]
    if (device := given("device")) is not None and device != "auto":
        words += ["--device", shlex.quote(device)]
    if (faces := given("face_models")) is not None:
        shown = faces if faces == "synthetic" else shell_path(Path(faces))
        # a folder named synthetic here, shown "synthetic", would be read as the word: the test pack
        words += ["--face-models", "./synthetic" if shown == "synthetic" and faces != "synthetic" else shown]
    if given("executor") == "ray":
        words += ["--executor", "ray"]
        if (address := given("ray_address")) is not None:
            words += ["--ray-address", shlex.quote(address)]
        if type(workers := request.get("workers")) is int and workers > 0:
            words += ["--workers", str(workers)]
    if type(sign := request.get("sign")) is bool:
        words.append("--sign" if sign else "--no-sign")
    return " ".join(words)


def _running_holder(root: Path) -> str | None:
    """``pid N on HOST`` when the folder's lock file names a process alive on this host (a render running now); a
    killed render's lock file keeps its text, so the pid is checked, not the text alone."""
    from . import safeio

    lock = root / ".idcli" / "lock"
    try:
        text = safeio.read_regular(lock, 200, follow_links=False).decode("utf-8", "replace")
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
    if int(match[1]) == os.getpid() or not _has_open(int(match[1]), lock):
        return None
    return match[0]


def _has_open(pid: int, path: Path) -> bool:
    """Whether process ``pid`` has ``path`` open, as a render holds its lock file for its whole session; True where
    that cannot be read (no /proc, another user's process). The pid of a killed render is given again (after a
    reboot; pid 1 of every container run, in a container that shares the host's name): a live process of that pid
    was told as the render writing the folder now, and the command that finishes never given (until 2026-12-02)."""
    try:
        opened = os.listdir(f"/proc/{pid}/fd")
        wanted = os.stat(path, follow_symlinks=False)
    except OSError:
        return True
    for descriptor in opened:
        try:
            found = os.stat(f"/proc/{pid}/fd/{descriptor}")  # the file the descriptor is open on
        except OSError:  # closed meanwhile, or a socket's
            continue
        if (found.st_dev, found.st_ino) == (wanted.st_dev, wanted.st_ino):
            return True
    return False


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
             if isinstance(t, list) and len(t) == 2 and isinstance(t[0], str) and SAFE_ID.fullmatch(t[0])
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
    failed, error, unreached = ended.get("failed"), ended.get("error"), ended.get("not_rendered")
    # the request of the newest run (a finishing run asks for the same work); a dry run journals none
    begun = next(store.journal_newest_first(events=("run-start",)), None) or {}
    command = finish_command(shotlist, root, begun.get("request"))
    return Unfinished(str(shotlist.absolute()), len(takes), missing, stopped,
                      failed if type(failed) is int and failed > 0 else 0,
                      unreached if type(unreached) is int and unreached > 0 else 0,
                      printable(error[:300]) if isinstance(error, str) and error else None,  # a received journal's text
                      running, changed, gone, command)
