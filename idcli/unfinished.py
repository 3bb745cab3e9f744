"""What a render's output folder still lacks of the shot list that last rendered it, and the command that finishes it.

The morning after a long render that was stopped (Ctrl-C, SIGTERM, a closed terminal, a kill, a full disk) or ended
with jobs failed, ``idcli verify`` said only that the images there were sound, and ``idcli review`` how many shots
it showed: nothing said that most of the shot list was never rendered, nor how to finish (the night-run trial,
2026-12-02; docs/reliability.md). The folder knows both: the run manifest (``.idcli/shotlist.jsonl``) lists every
take of the shot list as last rendered, and the journal's newest ``run-start`` without a ``run-end`` after it is a
run that never ended. A take is counted missing when no image is at its final path: an image whose sidecar a kill
cut off is adopted by the next render, not rendered again, so it is not missing work. Whether a committed take is
still current for an edited shot list needs the shot list planned: ``idcli plan FILE --out OUT`` says that; here the
note only says the file changed since. Said apart, from the last render's ``run-start`` line: takes a character's
unusable selfie blocks (no render makes them until the file is replaced), shots its ``--only`` did not ask for, and
a request no ``idcli render`` option says (a library call's ``dtype``: said in words, no command). Reads only;
takes no lock (a render starting meanwhile must not find the folder busy), so a render running now is told by the
pid its lock file names being alive on this host with that file open.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from .blocked_takes import BlockedTakes, read_blocked
from .shell_words import shell_path
from .shotlist import SAFE_ID  # a shot id as a shot list allows it: a manifest naming "../x" is not looked up

_HOLDER = re.compile(r"pid (\d+) on (.+)")
# More --only shots than this: the command says them by prefixes where one says several (night-counts-3)
MOST_ONLY_SAID = 10


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
    command: str  # the one command that renders every missing take, from the current folder (no --only)
    # What the last render was asked for, and could not do, as its run-start line says (since 2026-12-02):
    only: tuple[str, ...] | None = None  # the shot ids it was asked for (--only); None: every shot
    blocked: tuple[BlockedTakes, ...] = ()  # missing takes it could not plan: a character cannot be used
    asked_command: str = ""  # the command that renders the takes it was asked for (with its --only); "": none can
    not_in_command: dict[str, Any] | None = None  # what it was asked that no idcli render option says (dtype)
    asked_takes: int = 0  # takes of the shots it was asked for
    only_gone: tuple[str, ...] = ()  # of ``only``, the shot ids the shot list, edited since, holds no more
    # A --retake-flagged render's shots whose every take QA flagged, fewer than its --max-takes (``max_takes``): the
    # next retake round adds a take to each; one stopped between two rounds leaves these and no take missing
    retake_shots: tuple[str, ...] = ()
    max_takes: int = 0

    @property
    def missing(self) -> int:
        return len(self.missing_takes)

    @cached_property  # read by note() and as_dict() over a film's takes: counted once
    def not_asked_takes(self) -> tuple[str, ...]:
        """Missing takes of shots the last render was not asked for (``--only``), less blocked ones."""
        if self.only is None:
            return ()
        asked, blocked = set(self.only), {take for b in self.blocked for take in b.takes}  # sets: a film's takes
        return tuple(t for t in self.missing_takes if _shot_of(t) not in asked and t not in blocked)

    @cached_property
    def left_takes(self) -> tuple[str, ...]:
        """Missing takes the last render was asked for and could plan: what it left to do."""
        skipped = {take for b in self.blocked for take in b.takes} | set(self.not_asked_takes)
        return tuple(t for t in self.missing_takes if t not in skipped)

    def note(self) -> str:
        """One line for the terminal, after ``idcli: note: ``."""
        name = Path(self.shotlist).name
        left, not_asked = self.left_takes, self.not_asked_takes
        asked = "" if self.only is None else f" its last render was asked for ({_only_words(self.only)})"
        # the run-end line's failed are the takes it rendered and failed, never the blocked ones (counted apart):
        # subtracted from them, a render's real failures beside blocked takes went unsaid (until 2026-12-02)
        failed = self.failed
        if self.running:
            why = f" (a render is writing the folder now: {self.running})"
        elif self.stopped:
            why = " (its last render was stopped before it ended)"
        elif self.not_rendered:
            from .run_report import not_rendered_words

            failing = f"{failed} failed, " if failed else ""
            why = f" (its last render ended with {failing}{not_rendered_words(self.not_rendered, self.error)})"
        elif failed:
            why = f" (its last render ended with {failed} failed" + (f": {self.error})" if self.error else ")")
        else:
            why = ""
        parts: list[str] = []
        if left:
            said = (f"{len(left)} of {_the_takes(self.asked_takes or self.takes)} of {name}{asked} "
                    f"{'is' if len(left) == 1 else 'are'} not rendered yet{why}")
            parts.append(said if self.running else said + self._finish(name))
        elif self.retake_shots:
            count = len(self.retake_shots)
            said = (f"{count} shot{'s' if count != 1 else ''} of {name}{asked} {'has' if count == 1 else 'have'} "
                    f"every take flagged by identity QA and fewer than {self.max_takes} takes "
                    f"({_first_five(self.retake_shots)}): its last render, with --retake-flagged, ")
            parts.append(said + (f"goes on with its retake rounds{why}" if self.running else
                                 "stopped before its retake rounds ended" + self._finish(name)))
        elif self.only is not None and not self.blocked:  # blocked takes are of shots it was asked for
            parts.append(f"its last render rendered all it was asked for ({_only_words(self.only)})")
        for index, blocked in enumerate(self.blocked):
            count = len(blocked.takes)
            were = (f"{'was' if count == 1 else 'were'} blocked in its last render" if blocked.changed_since
                    else "blocked")
            head = (f"{count} of {_the_takes(self.asked_takes or self.takes)} of {name}{asked} "
                    f"{'' if blocked.changed_since else 'is ' if count == 1 else 'are '}{were}"
                    if not parts and index == 0 else f"{count} {were}")
            parts.append(f"{head}: {blocked.words()}; {self._unblock(blocked)}")
        if not_asked:
            shots = len({_shot_of(t) for t in not_asked})
            said = (f"{shots} other shot{'s' if shots != 1 else ''} of {name} {'were' if shots != 1 else 'was'} not "
                    "asked for in that render")
            if not left and not self.running and not self.gone and self.not_in_command is None:
                said += f"; to render {'them' if shots != 1 else 'it'}: {self.command}{self._changed(name)}"
            parts.append(said)
        return "; ".join(parts)

    def _finish(self, name: str) -> str:
        """"; to finish: COMMAND", or what to repeat in words where no command says it."""
        if self.gone:
            return f"; {self.shotlist} is not there now: to finish, {self.asked_command} with the shot list's path"
        if not self.asked_command:  # every shot it was asked for is gone from the edited shot list
            return (f"; {name} was changed since that render and holds none of the shots it was asked for now: to "
                    f"render what it holds, {self.command}")
        if self.not_in_command:
            asked = ", ".join(f"{key}={value!r}" for key, value in self.not_in_command.items())
            return (f"; to finish, repeat that render as it was asked, with {asked} (a library call's: no idcli render "
                    "option says it)")
        return f"; to finish: {self.asked_command}{self._changed(name)}"

    def _unblock(self, blocked: BlockedTakes) -> str:
        """What renders blocked takes: nothing before the file is fixed; once it changed, the render asked for (a
        selfie replaced in place, or the shot list edited to name another, said the takes blocked with no command)."""
        them = "it" if len(blocked.takes) == 1 else "them"
        if not blocked.changed_since:
            return blocked.again()
        since = f"{blocked.changed_since} was changed"
        if self.running or self.gone or self.not_in_command is not None or not self.asked_command:
            return f"{since} since that render"
        if self.left_takes:  # "to finish: COMMAND" is said before: the same command, printed once
            return f"{since} since that render: if that fixed it, the command to finish renders {them} too"
        return f"{since} since that render: if that fixed it, this renders {them}: {self.asked_command}"

    def _changed(self, name: str) -> str:
        """What a command renders when the shot list was edited since that render."""
        if not self.changed:
            return ""
        # an --only shot renamed or removed since: render refuses the whole command (no such shot)
        left_out = f"; {_only_words(self.only_gone)} left out: no such shot in it now" if self.only_gone else ""
        return f" ({name} was changed since that render: this renders what it holds now{left_out})"

    def as_dict(self) -> dict[str, Any]:
        """``verify --json``'s ``unfinished`` object (docs/file-formats.md)."""
        return {"shotlist": self.shotlist, "takes": self.takes, "missing": self.missing,
                "missing_takes": list(self.missing_takes), "stopped": self.stopped, "failed": self.failed,
                "not_rendered": self.not_rendered, "error": self.error,
                "running": self.running, "shotlist_changed": self.changed,
                "shotlist_gone": self.gone, "command": self.command,
                # since 2026-12-02 (night-counts): what the last render was asked for and could not do
                "only": None if self.only is None else list(self.only),
                "left_takes": list(self.left_takes), "not_asked_takes": list(self.not_asked_takes),
                "blocked": [b.as_dict() for b in self.blocked], "asked_command": self.asked_command or None,
                "not_in_command": self.not_in_command,
                # since 2026-12-02 (night-counts-3): the shots a --retake-flagged render's next round adds a take to
                "retake_shots": list(self.retake_shots)}


def _the_takes(count: int) -> str:
    """``the 7 takes``; ``the 1 take``."""
    return f"the {count} take{'s' if count != 1 else ''}"


def _shot_of(take: str) -> str:
    """The shot id of ``SHOT_tN``."""
    return take.rsplit("_t", 1)[0]


def _only_words(only: tuple[str, ...]) -> str:
    """``--only a, b, c`` as the note says a selection (the first five, then how many)."""
    return f"--only {_first_five(only)}"


def _first_five(shots: tuple[str, ...]) -> str:
    """``a, b, c``: shot ids as the note names them (the first five, then how many)."""
    return ", ".join(shots[:5]) + (f", … ({len(shots)} shots)" if len(shots) > 5 else "")


# The --max-takes of the ``render --retake-flagged`` whose rounds run now (review/retake.py sets it around them): each
# round is a run.render, whose run-start ``request`` records it; a public render() option would be a second way to ask.
RETAKE_ROUNDS: ContextVar[int | None] = ContextVar("idcli_retake_rounds", default=None)


def render_request(*, preset: str | None, device: str, dtype: str | None, face_models: str | None,
                   executor: str, ray_address: str | None, workers: int | None, sign: bool | None,
                   only: list[str] | None = None) -> dict[str, Any]:
    """What a render was asked that the next render of the same folder needs to be the same work, for the
    journal's ``run-start`` line: the options that change the jobs' keys (``preset``, ``dtype``, ``face_models``)
    or where the work runs (``device``, ``executor``, ``ray_address``, ``workers``), ``sign`` (a finishing run
    must not leave unsigned images among signed ones) and ``only`` (the shots it was asked for: the note counts
    those, and says the rest were not asked for); not what changes no image (``--quiet``, ``--json``,
    ``--batch-size``, ``--no-qa``, ``--compile``). A pasted "to finish" command without them rendered with other
    face models or another preset: new keys, everything again, or an error (docs/reliability.md). A round of
    ``--retake-flagged`` adds ``retake_flagged`` and ``max_takes`` (:data:`RETAKE_ROUNDS`): a plain render finishes
    the round it stopped in and runs no other."""
    folder = face_models
    if folder is not None and folder != "synthetic":  # the word is the test pack, not a folder
        # the command is pasted from another folder the morning after; "~" as idcli reads it (face_models_folder)
        folder = os.path.abspath(os.path.expanduser(folder))
    return {"preset": preset, "device": device, "dtype": dtype, "face_models": folder, "executor": executor,
            "ray_address": ray_address, "workers": workers, "sign": sign,
            **({"only": list(only)} if only else {}),
            **({"retake_flagged": True, "max_takes": rounds} if (rounds := RETAKE_ROUNDS.get()) is not None else {})}


def requested_only(request: Any) -> tuple[str, ...] | None:
    """The shot ids a journaled request was asked for (``--only``), each a shot id as a shot list allows one;
    None: every shot (none recorded, or a value of the wrong type: the whole shot list, as before)."""
    only = request.get("only") if isinstance(request, dict) else None
    if not isinstance(only, list) or not only or not all(
            isinstance(shot, str) and SAFE_ID.fullmatch(shot) for shot in only):
        return None
    return tuple(dict.fromkeys(only))


def finish_command(shotlist: Path, folder: Path, request: dict[str, Any] | None = None,
                   only_values: list[str] | None = None) -> str:
    """``idcli render FILE --out DIR`` with the options of ``request`` (:func:`render_request`, as a journal
    recorded it: values of the wrong type are left out), shell-quoted, from the current folder. A request's
    ``dtype`` has no option (:func:`unsaid`). ``only_values``: the ``--only`` values to say instead of the
    request's shot ids (:func:`short_only`'s prefixes)."""
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
    values = requested_only(request) if only_values is None else [
        value for value in only_values if _PREFIX_PATTERN.fullmatch(value)]
    for shot in values or ():
        words += ["--only", shlex.quote(shot)]
    if request.get("retake_flagged") is True:  # its retake rounds, not only the round it stopped in
        from .review.retake import DEFAULT_MAX_TAKES

        words.append("--retake-flagged")
        if type(most := request.get("max_takes")) is int and 1 <= most <= 100 and most != DEFAULT_MAX_TAKES:
            words += ["--max-takes", str(most)]
    return " ".join(words)


# an --only value the note writes: a shot id, or a prefix of ids and "*" (short_only)
_PREFIX_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\*?")


def short_only(chosen: list[str], shots: list[str]) -> list[str]:
    """``chosen`` (shot ids of ``shots``, the shot list's) as fewer ``--only`` values where a prefix says several:
    ``sc0*`` for sc01…sc09 when it matches no shot outside ``chosen``; the others as themselves, in ``chosen``'s
    order. Counted by bisection over the sorted ids: a film's 10,000 shots and 300 chosen in milliseconds."""
    from bisect import bisect_left

    every, wanted = sorted(shots), sorted(set(chosen))

    def matching(ids: list[str], prefix: str) -> int:
        return bisect_left(ids, prefix + "\U0010ffff") - bisect_left(ids, prefix)

    values: list[str] = []
    covered: set[str] = set()
    for shot in chosen:
        if shot in covered:
            continue
        for length in range(1, len(shot)):
            prefix = shot[:length]
            count = matching(every, prefix)
            if count > 1 and count == matching(wanted, prefix):  # every shot it matches is chosen
                values.append(prefix + "*")
                covered.update(one for one in wanted if one.startswith(prefix))
                break
        else:
            values.append(shot)
            covered.add(shot)
    return values


def unsaid(request: Any) -> dict[str, Any] | None:
    """What a journaled request asked that no ``idcli render`` option says: a library caller's ``dtype`` (a key of
    every job: the command would render other images). None: the command says all of it. (A caller's ``takes`` is
    not here: the manifest records the takes planned, and every later render plans them again, added_takes.py.)"""
    dtype = request.get("dtype") if isinstance(request, dict) else None
    return {"dtype": dtype} if isinstance(dtype, str) and dtype else None


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


def unfinished_takes(out_dir: str | Path, hashed: Mapping[str, str] | None = None) -> Unfinished | None:
    """The takes of ``out_dir``'s last shot list that have no image, or None: none missing, or no render's
    manifest there (a delivery folder, a flat folder of images, a folder never rendered into). ``hashed``: the
    sha256 of images just read, by path (``verify``'s), which the retake rounds' check reuses."""
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
    # the request of the newest run (a finishing run asks for the same work); a dry run journals none
    begun = next(store.journal_newest_first(events=("run-start",)), None) or {}
    recorded_request = begun.get("request")
    request: dict[str, Any] = recorded_request if isinstance(recorded_request, dict) else {}
    only = requested_only(request)
    most, retakes = _retake_rounds_left(root, takes, request, only, hashed)
    if not missing and not retakes:
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
    recorded_blocked = begun.get("blocked")
    command = finish_command(shotlist, root, {**request, "only": None})  # the whole shot list, as before
    selection = set(only or ())
    asked = sum(1 for shot, _take in takes if only is None or shot in selection)
    holds = _shot_ids(shotlist) if changed and only is not None else None
    only_gone = tuple(shot for shot in only or () if holds is not None and shot not in holds)
    asked_only = [shot for shot in only or () if shot not in only_gone]
    # A large selection said by prefixes where one says several shots and no other (the shot list unchanged), where
    # one --only per shot made it hundreds of words (night-counts-3). Never the command with no --only, though every
    # missing take be of the selection: a take of another shot that is there but not done as this render keys it
    # (rendered in another dtype or preset, a selfie replaced since) it renders again, moving it aside: the work
    # --only left alone (hostile-read-31; the note judges takes by their images, it plans nothing)
    patterns = (short_only(asked_only, list(dict.fromkeys(shot for shot, _take in takes)))
                if len(asked_only) > MOST_ONLY_SAID and not changed else None)
    asked_command = "" if only and len(only_gone) == len(only) else finish_command(
        shotlist, root, {**request, "only": asked_only or None}, only_values=patterns)
    return Unfinished(str(shotlist.absolute()), len(takes), missing, stopped,
                      failed if type(failed) is int and failed > 0 else 0,
                      unreached if type(unreached) is int and unreached > 0 else 0,
                      printable(shortened(error)) if isinstance(error, str) and error else None,  # a received text
                      running, changed, gone, command, only,
                      read_blocked(recorded_blocked, set(missing), shell_path(shotlist) if changed else None),
                      asked_command, unsaid(request), asked, only_gone, retakes, most)


def _retake_rounds_left(root: Path, takes: list[tuple[str, int]], request: dict[str, Any],
                        only: tuple[str, ...] | None, hashed: Mapping[str, str] | None) -> tuple[int, tuple[str, ...]]:
    """A ``--retake-flagged`` render's ``--max-takes`` and the shots its next round adds a take to (review/retake.py);
    (0, ()) for any other render. Such a run stopped between two rounds leaves no take missing: without this, nothing
    said the rounds had not ended (until 2026-12-02)."""
    if request.get("retake_flagged") is not True:
        return 0, ()
    from .review.retake import DEFAULT_MAX_TAKES, flagged_in_folder

    most = request.get("max_takes")
    most = most if type(most) is int and 1 <= most <= 100 else DEFAULT_MAX_TAKES
    return most, flagged_in_folder(root, takes, most, only, hashed)


def shortened(error: str, limit: int = 300) -> str:
    """A journal's error in at most ``limit`` characters (a received journal's text may be any length): cut between
    words (or a path's folders) and marked "…", the "To fix: …" it ends with kept whole. Cut at 300 mid-word, a damaged
    weight file's refusal under a long model path ended "To fix: copy it again from where it cam"."""
    if len(error) <= limit:
        return error
    reason, said, fix = error.partition(" To fix: ")
    fix = said.lstrip() + fix
    if said and len(fix) <= limit // 2:  # room left for the why: half the note at least
        return _cut(reason, limit - len(fix) - 2) + "… " + fix
    return _cut(error, limit - 1) + "…"


def _cut(text: str, length: int) -> str:
    """``text`` to at most ``length`` characters, ending before a space or a "/" where one is in its second half."""
    if len(text) <= length:
        return text
    at = max(text.rfind(" ", 0, length + 1), text.rfind("/", 0, length + 1))
    return text[:at] if at > length // 2 else text[:length]


def _shot_ids(shotlist: Path) -> set[str] | None:
    """The shot ids the shot list file holds now (read, not validated), or None where that cannot be told."""
    from .errors import IdcliError
    from .yamlsafe import load_yaml_file

    try:
        data = load_yaml_file(shotlist).data
    except (IdcliError, OSError, ValueError):  # not YAML now, unreadable: the command as it was
        return None
    shots = data.get("shots") if isinstance(data, dict) else None
    if not isinstance(shots, list) or not all(isinstance(s, dict) and isinstance(s.get("id"), str) for s in shots):
        return None
    return {s["id"] for s in shots}
