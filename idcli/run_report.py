"""What a render run reports: each job's outcome, the run's report (the ``render --json`` document) and the
progress protocol it reports to as it goes.

Split from run.py, which runs; this module only describes, so the console, scripts and the commit path can use
the report's types without the run itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from .paths import absolute

if TYPE_CHECKING:
    from .blocked_takes import BlockedTakes


@dataclass(frozen=True)
class OutputFile:
    """A file in the output folder, in the one form the JSON contract uses (docs/file-formats.md):
    ``path`` relative to the output folder (POSIX separators), ``abs_path`` absolute. It is an
    ``os.PathLike`` of the absolute path."""

    path: str
    abs_path: str

    @classmethod
    def of(cls, out_dir: Path, relpath: str) -> OutputFile:
        return cls(relpath, str(absolute(out_dir) / relpath))

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "abs_path": self.abs_path}

    def __fspath__(self) -> str:
        # Usable wherever a path is (open(), Path(), PIL): the absolute one.
        return self.abs_path


@dataclass
class JobOutcome:
    job_key: str | None  # None for a take that could not be planned (a character it names is unusable)
    shot_id: str
    take: int
    seed: int
    group: str
    status: str  # rendered, skipped, recovered, restored, reused, kept, failed, not_rendered, pending (dry run)
    image: OutputFile
    sidecar: OutputFile
    error: str | None = None
    state: str = ""  # the job's state in the folder before this run: new, done, stale, recoverable
    reason: str | None = None  # why it was stale (JobState.reason): an edit, or its image missing or damaged
    cause: str | None = None  # what changed since its sidecar, in words (idcli/stale_causes.py), where it can say

    @property
    def key(self) -> str | None:
        """Deprecated alias of ``job_key`` (the name used everywhere since the JSON contract)."""
        return self.job_key

    def as_dict(self) -> dict[str, Any]:
        return {"job_key": self.job_key, "shot_id": self.shot_id, "take": self.take, "seed": self.seed,
                "group": self.group, "state": self.state, "status": self.status, "image": self.image.as_dict(),
                "sidecar": self.sidecar.as_dict(),
                "error": None if self.error is None else {"message": self.error},
                # reason: why a job was stale (as plan --json's), what the human "rendered again" note says per take
                "reason": self.reason, "cause": self.cause}


class TakeState(NamedTuple):
    """A take's state in the output folder before a run, and for a stale one its reason and cause (JobOutcome's)."""

    status: str
    reason: str | None = None
    cause: str | None = None


# What ``RenderReport.counts`` counts, in this order.
# kept: not rendered because its image was edited by hand (state "modified"; --force renders it again).
# restored: put back from .idcli/superseded, where a take of exactly this job was kept (an edit undone).
# reused: made of an image of exactly this job's key at another take's path or kept in superseded (idcli/reuse.py).
# not_rendered: not reached because the folder stopped the run (a full disk); no fault of the job, unlike failed.
STATUSES = ("rendered", "skipped", "recovered", "restored", "reused", "kept", "failed", "not_rendered", "pending")


def not_rendered_words(count: int, error: str | None) -> str:
    """"N not rendered: the disk filled while writing PATH": the takes a full disk (or a folder that refused a
    write) stopped the run before. Counted failed, 91 of them read as 91 broken shots (the night-run trial)."""
    why = error or "the folder stopped the run"
    if " To fix: " not in why:  # a refusal's words (a model's, exit 4) end with their fix: kept whole, ";" and all
        why = why.split(";")[0]
    return f"{count} not rendered: " + why.replace("disk full while", "the disk filled while", 1)


@dataclass
class RenderReport:
    out_dir: str
    model: dict[str, Any]
    jobs: list[JobOutcome] = field(default_factory=list)
    seconds: float = 0.0
    batch_sizes: list[int] = field(default_factory=list)
    dry_run: bool = False
    error: str | None = None  # why the run stopped early (disk full, permissions), if it did
    commits: int = 0  # batches that went through the commit queue
    commit_seconds: float = 0.0  # spent committing them, overlapping the rendering (idcli bench reads it)
    project: str = ""
    file: str = ""  # the shot list, as given
    # The exit code the error above maps to (an unusable output folder: EXIT_OUTPUT_UNUSABLE).
    error_exit_code: int | None = None
    # The file the error above names (the image or sidecar a full disk refused), as `error.file` in --json.
    error_file: str | None = None
    # Images of shots or takes no longer in the shot list (kept, reported; idcli/orphans.py).
    orphans: list[dict[str, Any]] = field(default_factory=list)
    # Earlier renders this run moved to .idcli/superseded ({shot_id, take, name}).
    superseded: list[dict[str, Any]] = field(default_factory=list)
    # Earlier renders .idcli/superseded keeps after the run, this run's and every earlier run's: what `idcli restore
    # OUT --list` lists (superseded.count_superseded).
    superseded_total: int = 0
    # The project whose renders the folder held, when it was another one and --force let the run go on.
    other_project: str | None = None
    # Characters that could not be used ({file, line, column, field, message, hint} each): their shots failed.
    problems: list[dict[str, Any]] = field(default_factory=list)
    # What the plan could not do as asked, or warns of (plan.warnings: a group photo as a selfie, ...).
    warnings: list[str] = field(default_factory=list)
    # Each take's state in the folder before the run ((shot id, take) -> new/done/stale/recoverable/modified, and
    # why when stale). By take, not job key: two shots of the same content share a key, each with its own image.
    states: dict[tuple[str, int], TakeState] = field(default_factory=dict, repr=False)
    # Why each stale job was stale (job key -> JobState.reason): an edit, or an image missing or damaged.
    stale_reasons: dict[str, str] = field(default_factory=dict, repr=False)
    # What changed since its sidecar, in words, per job stale for an edit (job key -> idcli/stale_causes.py's
    # cause); a job whose sidecar cannot say has none. Each job's ``cause`` in the --json document.
    stale_causes: dict[str, str] = field(default_factory=dict, repr=False)
    executor: dict[str, Any] = field(default_factory=lambda: {"name": "local"})  # who rendered, and its figures
    # The run-start line's ``blocked`` (blocked_takes.blocked_record): per unusable character, the takes it blocked,
    # its problem and its files; what the summary line and ``--json``'s ``blocked`` say, as the morning note does.
    blocked_record: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def count(self, status: str) -> int:
        return sum(1 for j in self.jobs if j.status == status)

    @property
    def rendered(self) -> int:
        return self.count("rendered")

    @property
    def failed(self) -> int:
        return self.count("failed")

    @property
    def not_rendered(self) -> int:
        return self.count("not_rendered")

    @property
    def blocked(self) -> int:
        """Of ``failed``, the takes not planned because a character they name cannot be used (state ``blocked``):
        a render blocks them again until its file is fixed, so they are said apart, as ``verify`` says them."""
        return sum(1 for j in self.jobs if j.status == "failed" and j.state == "blocked")

    def blocked_takes(self) -> tuple[BlockedTakes, ...]:
        """The blocked takes by the character that blocks them, with its problem and the other unusable characters
        they name (``also``), in the morning note's form (idcli/blocked_takes.py)."""
        from .blocked_takes import read_blocked

        takes = {f"{j.shot_id}_t{j.take}" for j in self.jobs if j.status == "failed" and j.state == "blocked"}
        return read_blocked(self.blocked_record, takes) if takes else ()

    @property
    def exit_code(self) -> int:
        """0 all done; EXIT_OUTPUT_UNUSABLE when the folder stopped the run; EXIT_JOBS_FAILED when jobs failed."""
        from .errors import EXIT_JOBS_FAILED, EXIT_OK

        if self.error is not None and self.error_exit_code is not None:
            return self.error_exit_code
        return EXIT_JOBS_FAILED if self.failed else EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        """The ``idcli render --json`` document (docs/file-formats.md, "The --json contract")."""
        code = self.exit_code
        error: dict[str, Any] | None = None
        if self.error is not None:
            error = {"type": "OutputError" if self.error_exit_code else "RenderError", "message": self.error,
                     "file": self.error_file, "line": None, "column": None, "field": None, "hint": None,
                     "problems": []}
        elif self.failed:
            # The characters' problems that failed takes of this run (one naming no take of it is a note), each at
            # its file and line, the first repeated in the error's own fields: the error object's contract.
            failing = [p for p in self.problems if any(
                j.status == "failed" and j.state == "blocked" and p["message"] in (j.error or "") for j in self.jobs)]
            first = failing[0] if failing else {}
            error = {"type": "JobsFailed", "message": f"{self.failed} job(s) failed; the rest are kept",
                     **{k: first.get(k) for k in ("file", "line", "column", "field", "hint")}, "problems": failing}
        return {
            "ok": code == 0,
            "exit_code": code,
            "error": error,
            "project": self.project,
            "file": self.file,
            "out_dir": self.out_dir,
            "dry_run": self.dry_run,
            # blocked (2026-12-02): of failed, the takes a character's unusable file blocked; failed still counts them
            "counts": {**{status: self.count(status) for status in STATUSES}, "blocked": self.blocked},
            "seconds": round(self.seconds, 3),
            "images_per_second": round(self.rendered / self.seconds, 4) if self.seconds and self.rendered else 0.0,
            "batch_sizes": self.batch_sizes,
            "executor": self.executor,
            "model": self.model,
            "jobs": [j.as_dict() for j in self.jobs],
            "problems": self.problems,
            "orphans": self.orphans,
            "superseded": self.superseded,
            "superseded_total": self.superseded_total,
            "other_project": self.other_project,
            "warnings": self.warnings,
            # as verify --json's unfinished.blocked: per character, the takes it blocked and what to replace
            "blocked": [b.as_dict() for b in self.blocked_takes()],
        }


class Progress(Protocol):
    """What a run reports as it goes. A progress object may also have the optional method
    ``batch_step(step: int, steps: int, jobs: int) -> None``: called after each model evaluation of the
    batch being rendered (``jobs`` images, evaluation ``step`` of ``steps``), for step progress and an
    estimate of the time left during long batches. Objects without it keep working (it is looked up
    with ``getattr``; it is not part of this protocol, so older implementations still satisfy it).

    Likewise the optional ``settled(counts: dict[str, int]) -> None``: called just before ``start`` with what the
    ``already_done`` jobs are, by the statuses of ``RenderReport.counts`` (``skipped``: done before, ``recovered``,
    ``restored``, ``reused``, ``kept``: edited by hand), so that a progress line can say each in the report's
    numbers.

    ``stop`` is called once after ``start`` however the run ends: finished, or stopped by Ctrl-C, an engine that cannot
    load or a Ray cluster gone (before the exception reaches the caller); neither is called when planning fails."""

    def start(self, total: int, already_done: int) -> None: ...
    def advance(self, outcome: JobOutcome) -> None: ...
    def note(self, text: str) -> None: ...
    def stop(self) -> None: ...


class SilentProgress:
    """Reports nothing (library use, --quiet)."""

    def start(self, total: int, already_done: int) -> None: ...
    def advance(self, outcome: JobOutcome) -> None: ...
    def note(self, text: str) -> None: ...
    def stop(self) -> None: ...
