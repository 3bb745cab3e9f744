"""The renders kept in ``OUT/.idcli/superseded``, listed (superseded.py tells the whole protocol): each version of a
take with its job key and files, in the order the journal moved them aside (its lines' times; a version it does not
name by its files' change time), the count a render reports, and the kept render of a job a render puts back instead
of rendering it again. Reads only. Split from superseded.py."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import safeio
from .kept_files import KEPT_NAME, read_sidecar_file, recorded_image_sha256, scan_kept
from .paths import absolute


@dataclass(frozen=True)
class SupersededVersion:
    """One earlier version of a take, kept in ``.idcli/superseded``."""

    shot_id: str
    take: int
    name: str  # the base name, <stem>.<key>[.n]
    job_key: str | None
    image: str | None  # paths relative to the output folder
    sidecar: str | None
    mask: str | None
    superseded_at: float  # when it was moved aside: its journal line's time, else its files' change time

    @property
    def stem(self) -> str:
        return f"{self.shot_id}_t{self.take}"

    def as_dict(self, root: Path) -> dict[str, Any]:
        from datetime import datetime, timezone

        def file(rel: str | None) -> dict[str, str] | None:
            return None if rel is None else {"path": rel, "abs_path": str(absolute(root) / rel)}

        return {"shot_id": self.shot_id, "take": self.take, "name": self.name, "job_key": self.job_key,
                "key": self.name.split(".", 1)[1] if "." in self.name else None,
                "superseded_at": datetime.fromtimestamp(self.superseded_at, timezone.utc).isoformat(),  # noqa: UP017
                "image": file(self.image), "sidecar": file(self.sidecar)}


def by_job(version: SupersededVersion) -> Hashable:
    """``list_superseded``'s ``order_among`` for a render: of one job's versions it puts back or reuses the newest."""
    return version.job_key or (version.shot_id, version.name)


def by_take(version: SupersededVersion) -> Hashable:
    """``list_superseded``'s ``order_among`` for ``restore``: by default it puts back the take's newest version."""
    return version.stem


def each_alone(version: SupersededVersion) -> Hashable:
    """``list_superseded``'s ``order_among`` for a caller that looks versions up by name: no order is needed."""
    return version.shot_id, version.name


def list_superseded(root: Path, stem: str | None = None, *,
                    order_among: Callable[[SupersededVersion], Hashable] | None = None) -> list[SupersededVersion]:
    """Every kept version in the output folder (of one take when ``stem`` is given), oldest first: in the order the
    journal moved them aside (``superseded_at``: its lines' times), a version it does not name by its files' change
    time, then by name.

    ``order_among`` (``by_job``, ``by_take``, ``each_alone``): the journal is read only for versions that share its
    value with another, those a caller chooses among; the others keep their files' change time (a render lists the
    kept versions every run, and a film's journal is tens of MB). Default: for every version (what a listing shows).
    """
    versions = []
    for (_folder, name), item in scan_kept(root, stem).items():
        sidecar = item.get(".json")
        record = read_sidecar_file(Path(root) / sidecar) if sidecar else None
        key = record.get("job_key") if record else None
        versions.append(SupersededVersion(item["shot"], item["take"], name, key if isinstance(key, str) else None,
                                          item.get(".png"), sidecar, item.get(".mask.png"), item["time"]))
    if order_among is not None:
        shared = Counter(order_among(v) for v in versions)
        wanted = {(v.shot_id, v.name) for v in versions if shared[order_among(v)] > 1}
    else:
        wanted = {(v.shot_id, v.name) for v in versions}
    if wanted:
        moves = _journal_moves(Path(root), wanted)
        versions = [replace(v, superseded_at=moved) if (moved := moves.get((v.shot_id, v.name))) is not None else v
                    for v in versions]
    return sorted(versions, key=lambda v: (v.superseded_at, v.name))


def _journal_moves(root: Path, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], float | None]:
    """When each kept version in ``wanted`` (shot id, name) was moved aside: the time of the journal's newest line
    that moved a file aside under its name (``supersede``'s ``as``, ``restore``'s ``moved_aside``, ``restore-begin``'s
    ``aside``; never later than a version's moved aside by a later line: the lines' order is the moves'), or None when
    that line has no time idcli writes, or when a restore took
    that name out of superseded/ since (the file there now was moved aside by a line the journal lost). Versions the
    journal does not name are left out.

    One pass from the journal's end, skipping unparsed the lines of other events, of other shots and of shots whose
    versions are all found, stopping once all are: a film's journal is tens of MB (docs/performance.md, "Kept
    versions' order")."""
    from .store import OutputStore

    found: dict[tuple[str, str], float | None] = {}
    newer: float | None = None  # the time given to the last version found, moved aside after this line's
    waiting = Counter(shot for shot, _name in wanted)
    only = next(iter(waiting)) if len(waiting) == 1 else None
    for entry in OutputStore(root).journal_newest_first(mentioning=only, shots=waiting,
                                                        events=("supersede", "restore", "restore-begin")):
        shot, event = entry.get("shot_id"), entry.get("event")
        if not isinstance(shot, str):
            continue
        if event == "supersede":
            named = [(entry.get("as"), True)]
        elif event == "restore":
            named = [(entry.get("moved_aside"), True), (entry.get("from"), False)]
        elif event == "restore-begin":
            # The name it moves the take at the final paths aside under, written before its renames: a restore killed
            # after them (its `restore` line never written, and a render, which does not finish it, committed into the
            # take since) has no other line naming it. A finished restore's `restore` line, newer, names it first.
            named = [(entry.get("aside"), True)]
        else:
            continue
        for name, moved in named:
            if not isinstance(name, str) or (shot, name) not in wanted or (shot, name) in found:
                continue
            moment = _journal_time(entry.get("time")) if moved else None
            if moment is not None and newer is not None and moment >= newer:
                # the line written later is the newer move, whatever the clocks said (one set back, two machines
                # on one shared folder, a coarse one giving both the same time): just before it
                moment = math.nextafter(newer, -math.inf)
            found[shot, name] = moment
            newer = moment if moment is not None else newer
            waiting[shot] -= 1
            if not waiting[shot]:
                del waiting[shot]  # journal_newest_first skips its lines from here on
        if not waiting:
            break
    return found


def _journal_time(value: Any) -> float | None:
    """A journal line's ``time`` (ISO 8601, as ``OutputStore.journal`` writes it) as a POSIX time; None if it is not
    one (a received folder's journal may hold anything), or if its instant is no date in UTC, where ``as_dict`` shows
    it (9999-12-31T23:59:59-05:00 is in the year 10000 there)."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
        return moment.astimezone(timezone.utc).timestamp() if moment.tzinfo is not None else None  # noqa: UP017
    except (ValueError, OverflowError, OSError):
        return None


def count_superseded(root: Path) -> int:
    """How many versions the output folder keeps (``list_superseded``'s length, and ``restore --list``'s), with no
    sidecar read: what a render says it keeps in all after a run (a film's folder keeps thousands)."""
    return len(scan_kept(root, None))


def kept_versions_by_take(root: Path) -> dict[str, list[SupersededVersion]]:
    """Every kept version by take (``SHOT_tN``, as ``list_superseded``'s ``stem``), oldest first.

    One scan of ``superseded/`` for a whole run: a scan per job was quadratic in a film's takes. Ordered as a render
    chooses among them (``by_job``): the journal is read only when one job's image is kept more than once.
    """
    by_take: dict[str, list[SupersededVersion]] = {}
    for version in list_superseded(root, order_among=by_job):
        match = KEPT_NAME.match(f"{version.name}.png")
        if match:
            by_take.setdefault(match["stem"], []).append(version)
    return by_take


def kept_render_of(root: Path, stem: str, job_key: str,
                   versions: list[SupersededVersion] | None = None) -> SupersededVersion | None:
    """A kept version of take ``stem`` made by exactly this job (same key), its image intact; else None.

    A shot edited and then edited back has the key of a take kept here: render puts that take back
    instead of rendering it again (``restored``). ``versions``: the take's kept versions, oldest first,
    when the caller listed them already (``kept_versions_by_take``); else they are listed here.
    """
    for version in reversed(list_superseded(root, stem, order_among=by_job) if versions is None else versions):
        if version.job_key != job_key or version.image is None or version.sidecar is None:
            continue
        expected = recorded_image_sha256(Path(root) / version.sidecar)
        if expected and safeio.sha256_regular(Path(root) / version.image) == expected:
            return version
    return None
