"""A render run: plan the shot list, skip what is done, batch the rest through the engine, commit.

This is the library call behind ``idcli render``; pipelines call ``render`` directly.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from .errors import ExecutorUnavailableError, Interrupted, OutputError
from .interrupts import interrupted
from .models import ModelIdentity, resolve_model
from .plan import Job, Plan, make_plan
from .runtime import Runtime, resolve_runtime
from .shotlist import LoadedShotList
from .store import MAX_IMAGE_BYTES, OutputStore


@dataclass(frozen=True)
class OutputFile:
    """A file in the output folder, in the one form the JSON contract uses (docs/file-formats.md):
    ``path`` relative to the output folder (POSIX separators), ``abs_path`` absolute. It is an
    ``os.PathLike`` of the absolute path."""

    path: str
    abs_path: str

    @classmethod
    def of(cls, out_dir: Path, relpath: str) -> OutputFile:
        return cls(relpath, str(Path(out_dir).absolute() / relpath))

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
    status: str  # rendered, skipped, recovered, failed, pending (dry run)
    image: OutputFile
    sidecar: OutputFile
    error: str | None = None
    state: str = ""  # the job's state in the folder before this run: new, done, stale, recoverable

    @property
    def key(self) -> str | None:
        """Deprecated alias of ``job_key`` (the name used everywhere since the JSON contract)."""
        return self.job_key

    def as_dict(self) -> dict[str, Any]:
        return {"job_key": self.job_key, "shot_id": self.shot_id, "take": self.take, "seed": self.seed,
                "group": self.group, "state": self.state, "status": self.status, "image": self.image.as_dict(),
                "sidecar": self.sidecar.as_dict(),
                "error": None if self.error is None else {"message": self.error}}


# What ``RenderReport.counts`` counts, in this order.
# kept: not rendered because its image was edited by hand (state "modified"; --force renders it again).
# restored: put back from .idcli/superseded, where a take of exactly this job was kept (an edit undone).
STATUSES = ("rendered", "skipped", "recovered", "restored", "kept", "failed", "pending")


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
    # Images of shots or takes no longer in the shot list (kept, reported; idcli/orphans.py).
    orphans: list[dict[str, Any]] = field(default_factory=list)
    # Earlier renders this run moved to .idcli/superseded ({shot_id, take, name}).
    superseded: list[dict[str, Any]] = field(default_factory=list)
    # The project whose renders the folder held, when it was another one and --force let the run go on.
    other_project: str | None = None
    # Characters that could not be used ({file, line, column, field, message, hint} each): their shots failed.
    problems: list[dict[str, Any]] = field(default_factory=list)
    # What the plan could not do as asked, or warns of (plan.warnings: a group photo as a selfie, ...).
    warnings: list[str] = field(default_factory=list)
    # Each job's state in the folder before the run (job key -> new/done/stale/recoverable/modified).
    states: dict[str, str] = field(default_factory=dict, repr=False)
    executor: dict[str, Any] = field(default_factory=lambda: {"name": "local"})  # who rendered, and its figures

    def count(self, status: str) -> int:
        return sum(1 for j in self.jobs if j.status == status)

    @property
    def rendered(self) -> int:
        return self.count("rendered")

    @property
    def failed(self) -> int:
        return self.count("failed")

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
        error = None
        if self.error is not None:
            error = {"type": "OutputError" if self.error_exit_code else "RenderError", "message": self.error,
                     "file": None, "line": None, "column": None, "field": None, "hint": None, "problems": []}
        elif self.failed:
            error = {"type": "JobsFailed", "message": f"{self.failed} job(s) failed; the rest are kept",
                     "file": None, "line": None, "column": None, "field": None, "hint": None, "problems": []}
        return {
            "ok": code == 0,
            "exit_code": code,
            "error": error,
            "project": self.project,
            "file": self.file,
            "out_dir": self.out_dir,
            "dry_run": self.dry_run,
            "counts": {status: self.count(status) for status in STATUSES},
            "seconds": round(self.seconds, 3),
            "images_per_second": round(self.rendered / self.seconds, 4) if self.seconds and self.rendered else 0.0,
            "batch_sizes": self.batch_sizes,
            "executor": self.executor,
            "model": self.model,
            "jobs": [j.as_dict() for j in self.jobs],
            "problems": self.problems,
            "orphans": self.orphans,
            "superseded": self.superseded,
            "other_project": self.other_project,
            "warnings": self.warnings,
        }


class Progress(Protocol):
    """What a run reports as it goes. A progress object may also have the optional method
    ``batch_step(step: int, steps: int, jobs: int) -> None``: called after each model evaluation of the
    batch being rendered (``jobs`` images, evaluation ``step`` of ``steps``), for step progress and an
    estimate of the time left during long batches. Objects without it keep working (it is looked up
    with ``getattr``; it is not part of this protocol, so older implementations still satisfy it)."""

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


def plan_shotlist(loaded: LoadedShotList | str | Path, *, preset: str | None = None, device: str = "auto",
                  dtype: str | None = None, face_models: str | None = None,
                  on_encode: Callable[[str], None] | None = None,
                  takes: dict[str, int] | None = None, runtime: Runtime | None = None) -> tuple[Plan, Runtime]:
    """The plan of a shot list for the device it would run on (dtype is part of every key).

    Characters named in shots are resolved to identities first (selfies encoded once and cached),
    because their embeddings are part of the job keys. ``loaded`` may be a path to a shot list.
    Arguments of the wrong type or range raise ``InputError``. ``takes`` raises some shots' take counts
    (``--retake-flagged``: the added takes get the seeds the shot list's ``takes`` would give them).
    ``runtime``, when given, is the device
    and dtype the jobs will run with (a Ray cluster's workers), instead of this machine's.
    """
    from . import arguments as args
    from .adapters import resolve_adapter
    from .identity.resolve import resolve_identities
    from .plan import shot_characters

    loaded = args.as_loaded_shotlist(loaded)
    preset = args.check_optional_str("preset", preset)
    device = args.check_str("device", device)
    dtype = args.check_dtype(dtype)
    face_models = args.check_path_or_none("face_models", face_models)
    on_encode = args.check_callable("on_encode", on_encode)
    takes = args.check_takes(takes)
    runtime = runtime or resolve_runtime(device, dtype or loaded.shotlist.model.dtype)
    model = resolve_model(loaded.shotlist.model, loaded.base_dir, runtime.dtype, preset)
    # Plates (issue 12): checked fully (file, faces, boxes) before anything is planned; see idcli/plates.py.
    from .plates import plate_shots

    plates = plate_shots(loaded, face_models, model.preset)
    names = {name for shot in loaded.shotlist.shots for name in shot_characters(shot)}
    # A character whose selfies cannot be used fails only the shots naming it (plan.blocked).
    unusable: dict[str, Any] = {}
    identities = resolve_identities(loaded, names, model.preset, face_models, on_encode, unusable) if names else {}
    adapter = resolve_adapter(loaded.shotlist.model, model, loaded.base_dir) if identities else None
    if adapter is not None and adapter.is_plus:
        # FaceID-Plus v2 (issue 17): each identity's CLIP face features, computed once and cached.
        from .identity.clip_features import attach_clip_features

        # A pack without features for this encoder, where the encoder is not here, fails its shots only.
        identities = attach_clip_features(identities, adapter, loaded=loaded, failures=unusable,
                                          preset=model.preset)
    from .prompt_tokens import load_prompt_measure

    measure = load_prompt_measure(model)
    plan = make_plan(loaded, model, identities, adapter, unusable, measure, takes=takes, plates=plates)
    from .identity.group_selfies import group_selfie_warnings

    plan.warnings.extend(group_selfie_warnings(loaded, identities))  # a group photo's largest face is used
    synthetic = sorted(name for name, identity in identities.items() if identity.random_face_models)
    if synthetic and not model.random_weights:
        # The quickstart's `--face-models synthetic` kept with a real preset: real-looking images whose identities
        # come from random weights (the tiny presets already say RANDOM for the whole image).
        plan.warnings.append(
            f"the identities of {', '.join(repr(n) for n in synthetic)} come from idcli's SYNTHETIC random-weight "
            "face models (a test pack, not a face recogniser): these images carry no likeness. Point --face-models "
            "(or $IDCLI_FACE_MODELS) at an insightface pack such as buffalo_l for real identities")
    from .shotlist_checks import same_description_notes

    if loaded.yaml is not None:  # two characters of a dual-line shot with one description (validate notes it too)
        plan.warnings.extend(note.format(str(loaded.source))
                             for note in same_description_notes(loaded.shotlist, loaded.yaml))
        # AUTOMATIC1111 weights, LoRA tags, BREAK: read as plain words (idcli/prompt_syntax.py); said once here.
        from .prompt_syntax import foreign_syntax_notes, foreign_syntax_warning

        syntax = foreign_syntax_warning(foreign_syntax_notes(loaded.shotlist, loaded.yaml), str(loaded.source))
        if syntax is not None:
            plan.warnings.append(syntax)
        # An expression on a shot that names no character: a face asked of an empty scene; said once here.
        from .expression_notes import faceless_expression_notes, faceless_expression_warning

        faceless = faceless_expression_warning(faceless_expression_notes(loaded.shotlist, loaded.yaml),
                                               str(loaded.source))
        if faceless is not None:
            plan.warnings.append(faceless)
    if measure is None:
        plan.warnings.append(f"cannot read the tokenizer of {model.label} here: prompt token counts are unknown "
                             "(long prompts are still encoded in full when rendering)")
    return plan, runtime


def job_states(plan: Plan, out_dir: Path) -> dict[str, Any]:
    """Each job's state in an output folder (read only)."""
    store = OutputStore(out_dir)
    return {job.key: store.state(job) for job in plan.jobs}


# What ``plan_document``'s ``counts`` counts, in this order.
STATES = ("new", "done", "recoverable", "stale", "modified", "blocked")


def plan_document(plan: Plan, runtime: Runtime, out_dir: Path) -> dict[str, Any]:
    """The ``idcli plan --json`` document without its ``ok``/``exit_code``/``error`` head (docs/file-formats.md)."""
    from .provenance import model_record

    out = Path(out_dir)
    OutputStore(out).check_usable()  # what render would refuse (exit 5), not "every job is new"
    states = job_states(plan, out)
    rows = []
    for job in plan.jobs:
        r = job.request
        state = states[job.key]
        rows.append({"job_key": job.key, "shot_id": job.shot_id, "take": job.take, "seed": r.seed,
                     "subject": job.subject, "characters": list(job.characters), "method": r.method,
                     "conditioning": list(job.conditioning),
                     "size": {"width": r.width, "height": r.height},
                     "sampler": {"name": r.sampler, "steps": r.steps, "guidance": r.guidance},
                     "group": job.group, "state": state.status, "reason": state.reason,
                     "image": OutputFile.of(out, job.image_relpath).as_dict(),
                     "sidecar": OutputFile.of(out, job.sidecar_relpath).as_dict(),
                     # issue 18: the prompt's CLIP tokens (null: the tokenizer is not here) and windows
                     "prompt_tokens": job.prompt_tokens, "text_windows": r.text_windows,
                     # issue 12: a plate job's plate and faces (null: text-to-image); its image has the
                     # plate's size ("size" above is the square its faces are worked at)
                     "plate": _plate_row(job)})
    for blocked in plan.blocked:
        rows.append({"job_key": None, "shot_id": blocked.shot_id, "take": blocked.take, "seed": blocked.seed,
                     "subject": None, "characters": [blocked.character], "method": None, "conditioning": [],
                     "size": None,
                     "sampler": None, "group": None, "state": "blocked", "reason": blocked.problem.format(plan.source),
                     "image": OutputFile.of(out, blocked.image_relpath).as_dict(),
                     "sidecar": OutputFile.of(out, blocked.sidecar_relpath).as_dict(),
                     "prompt_tokens": None, "text_windows": None, "plate": None})
    from .orphans import find_orphans
    from .superseded import list_superseded

    store = OutputStore(out)
    projects = folder_projects(store)
    return {"project": plan.project, "file": plan.source, "out_dir": str(out.absolute()),
            "model": model_record(plan.model, runtime.device),
            "counts": {name: sum(1 for row in rows if row["state"] == name) for name in STATES}, "jobs": rows,
            "problems": [p.as_json(plan.source) for p in plan.problems],
            "orphans": find_orphans(out, [*((j.shot_id, j.take) for j in plan.jobs),
                                          *((b.shot_id, b.take) for b in plan.blocked)]),
            "superseded": [v.as_dict(out) for v in list_superseded(out)],
            "other_project": None if not projects or plan.project in projects else sorted(projects)[0],
            "warnings": list(plan.warnings)}


def _plate_row(job: Job) -> dict[str, Any] | None:
    """A plate job in ``plan --json``: the plate file, its size, the working size and each face."""
    if job.plate is None:
        return None
    p = job.plate
    return {"path": p["path"], "sha256": p["sha256"], "size": {"width": p["size"][0], "height": p["size"][1]},
            "working_size": p["working_size"], "strength": p["faces"][0]["strength"] if p["faces"] else None,
            "faces": [{"character": f["character"], "box": f["box"], "crop_box": f["crop_box"],
                       "detected": f["detected"]} for f in p["faces"]]}


def folder_projects(store: OutputStore) -> set[str]:
    """The projects whose renders an output folder holds: the last run's manifest, else the sidecars'."""
    from .superseded import read_sidecar_file

    manifest = store.read_manifest()
    if manifest is not None and isinstance(manifest.get("project"), str):
        return {manifest["project"]}
    projects = set()
    for sidecar in store.root.glob("[!.]*/*.json"):
        record = read_sidecar_file(sidecar)
        if record is not None and isinstance(record.get("project"), str) and "job_key" in record:
            projects.add(record["project"])
    return projects


def render(loaded: LoadedShotList | str | Path, out_dir: str | Path, *, preset: str | None = None, device: str = "auto",
           dtype: str | None = None, batch_size: int | str = "auto", force: bool = False,
           only: str | list[str] | None = None, dry_run: bool = False, wait: bool = False,
           face_models: str | None = None, save_masks: bool = False, compile: bool = False,
           sign: bool | None = None, progress: Progress | None = None,
           engine_factory: Callable[[ModelIdentity, Runtime, Any], Any] | None = None,
           qa: bool = True, qa_thresholds: Any = None, takes: dict[str, int] | None = None,
           executor: Any = "local", ray_address: str | None = None, workers: int | None = None) -> RenderReport:
    """Render every job of ``loaded`` that is not already done in ``out_dir``.

    ``save_masks`` writes each dual-line job rendered in this run a strip of its fusion mask over
    time next to the image (``<shot>_t<take>.mask.png``); jobs already done are not re-rendered for it.
    ``sign`` signs every image with C2PA content credentials (docs/provenance.md): True asks for it,
    False refuses it, None signs when the shot list or the environment names credentials.
    ``loaded`` may be a path to a shot list; ``only`` one shot id or a list of them; ``batch_size`` an
    int 1..1024 or ``"auto"``. Arguments of the wrong type or range raise ``InputError`` (exit code 2).
    ``qa`` checks each image with a cast against it on the commit thread (idcli/review/qa.py,
    ``qa_thresholds`` a QAThresholds) and records the result in its sidecar; it changes no job key.

    ``executor``: ``"local"`` (this process) or ``"ray"`` (Ray actors at ``ray_address``, default
    ``$RAY_ADDRESS`` else a local cluster; ``workers`` of them, default one per GPU), or a configured
    ``idcli.executors.ray.RayBackend``. This process plans and commits either way (docs/scale-out.md).
    """
    from . import arguments as args

    # Checked before anything starts: a wrong type must not hang (batch_size=0), be misread (only="a010")
    # or silently mean something else (batch_size="4").
    loaded = args.as_loaded_shotlist(loaded)
    out_dir = args.check_out_dir(out_dir)
    from .delivery_checks import refuse_render_into_delivery

    refuse_render_into_delivery(out_dir)
    batch_size = args.check_batch_size(batch_size)
    only = args.check_only(only)
    for name, flag in (("force", force), ("dry_run", dry_run), ("wait", wait), ("save_masks", save_masks),
                       ("compile", compile), ("qa", qa)):
        args.check_bool(name, flag)
    if sign is not None:
        args.check_bool("sign", sign)
    args.check_progress(progress)
    args.check_callable("engine_factory", engine_factory)
    args.check_qa_thresholds(qa_thresholds)
    takes = args.check_takes(takes)
    progress = progress or SilentProgress()
    started = time.perf_counter()
    signer = _signer(loaded, sign)  # credentials are checked before anything is planned or rendered
    backend = _backend(executor, ray_address, workers, engine_factory)
    try:
        return _render(loaded, out_dir, backend, preset=preset, device=device, dtype=dtype, batch_size=batch_size,
                       force=force, only=only, dry_run=dry_run, wait=wait, face_models=face_models,
                       save_masks=save_masks, compile=compile, progress=progress, engine_factory=engine_factory,
                       started=started, signer=signer, qa=qa, qa_thresholds=qa_thresholds, takes=takes)
    finally:
        if backend is not None:
            backend.close()


def _backend(executor: Any, ray_address: str | None, workers: int | None, engine_factory: Any) -> Any:
    """The Ray backend of a run (None: the local executor)."""
    if executor is None:
        return None
    if not isinstance(executor, str):
        if not callable(getattr(executor, "executor", None)):
            from .errors import InputError

            raise InputError(f"executor={executor!r}: give 'local', 'ray' or an idcli.executors.ray.RayBackend")
        return executor
    from .executors import check_executor

    if check_executor(executor) == "local":
        if ray_address is not None or workers is not None:
            from .errors import InputError

            raise InputError("--ray-address and --workers need --executor ray")
        return None
    from .executors.ray import RayBackend

    return RayBackend(ray_address, workers, engine_factory)


def _render(loaded: LoadedShotList, out_dir: str | Path, backend: Any, *, preset: str | None, device: str,
            dtype: str | None, batch_size: int | str, force: bool, only: list[str] | None, dry_run: bool,
            wait: bool, face_models: str | None, save_masks: bool, compile: bool, progress: Progress,
            engine_factory: Callable[[ModelIdentity, Runtime, Any], Any] | None, started: float,
            signer: Any, qa: bool, qa_thresholds: Any, takes: dict[str, int] | None) -> RenderReport:
    from .added_takes import added_takes, merge_takes

    # Takes an earlier --retake-flagged run added stay planned (idcli/added_takes.py): never orphaned.
    takes = merge_takes(added_takes(out_dir, loaded), takes)
    try:
        # A Ray run plans for its workers' device (a dry run without a cluster address plans for this machine).
        cluster = backend is not None and not (dry_run and not (backend.address or os.environ.get("RAY_ADDRESS")))
        runtime = backend.runtime(device, dtype or loaded.shotlist.model.dtype) if cluster else None
        plan, runtime = plan_shotlist(loaded, preset=preset, device=device, dtype=dtype, face_models=face_models,
                                      on_encode=lambda name: progress.note(f"encoding the selfies of '{name}'"),
                                      takes=takes, runtime=runtime)
    except KeyboardInterrupt:
        raise interrupted() from None
    # Orphans and the folder's manifest are judged against the whole shot list, not an --only selection.
    all_takes = [(job.shot_id, job.take) for job in plan.jobs] + [(b.shot_id, b.take) for b in plan.blocked]
    plan = plan.select(only)
    for warning in plan.warnings:
        progress.note(f"warning: {warning}")
    if compile:
        runtime = replace(runtime, compile=True)  # speed only: not part of any key
    from .provenance import model_record

    out = Path(out_dir)
    store = OutputStore(out)
    report = RenderReport(str(out.absolute()), model_record(plan.model, runtime.device), dry_run=dry_run,
                          project=plan.project, file=plan.source,
                          problems=[p.as_json(plan.source) for p in plan.problems], warnings=list(plan.warnings))
    report.executor = {"name": "local" if backend is None else backend.name}

    def outcome(job: Job, status: str, before: str = "", error: str | None = None) -> JobOutcome:
        return JobOutcome(job.key, job.shot_id, job.take, job.request.seed, job.group, status,
                          OutputFile.of(out, job.image_relpath), OutputFile.of(out, job.sidecar_relpath), error,
                          report.states.get(job.key, before))

    from .orphans import shotlist_takes

    if dry_run:
        from .orphans import find_orphans

        store.check_usable()  # the render itself would stop here (exit 5): so does its dry run
        for job in plan.jobs:
            state = store.state(job) if out.is_dir() else None
            kept = state is not None and state.status == "modified" and not force
            status = "kept" if kept else "skipped" if (state and state.status == "done" and not force) else "pending"
            report.jobs.append(outcome(job, status, state.status if state else "new"))
        if out.is_dir():
            report.orphans = find_orphans(out, all_takes)
            projects = folder_projects(store)
            report.other_project = None if not projects or plan.project in projects else sorted(projects)[0]
        _report_blocked(plan, report, out)
        report.seconds = time.perf_counter() - started
        return report

    # Identity QA (docs/review.md): resolved when there is something to render, before the engine loads.
    check = (lambda: _identity_qa(plan, face_models, qa_thresholds)) if qa else None
    stopped: Interrupted | ExecutorUnavailableError | None = None
    try:
        _run_session(plan, runtime, store, force, wait, batch_size, report, outcome, progress, engine_factory,
                     save_masks, signer, all_takes, loaded, check, backend)
    except KeyboardInterrupt:
        stopped = interrupted()
    except ExecutorUnavailableError as gone:  # the Ray cluster went away: what was committed is reported too
        stopped = gone
    _report_blocked(plan, report, out)
    # shot-list order, blocked takes and added takes too
    order = {take: i for i, take in enumerate(shotlist_takes(loaded, takes))}
    report.jobs.sort(key=lambda o: order.get((o.shot_id, o.take), len(order)))
    report.seconds = time.perf_counter() - started
    if stopped is not None:
        stopped.report = report  # what was settled before the signal: `render --json` still reports it
        raise stopped
    return report


def _report_blocked(plan: Plan, report: RenderReport, out: Path) -> None:
    """Takes of shots naming an unusable character: failed, with the character's problem (the rest render)."""
    for blocked in plan.blocked:
        report.jobs.append(JobOutcome(None, blocked.shot_id, blocked.take, blocked.seed, "", "failed",
                                      OutputFile.of(out, blocked.image_relpath),
                                      OutputFile.of(out, blocked.sidecar_relpath),
                                      blocked.problem.format(plan.source), "blocked"))


def _run_session(plan: Plan, runtime: Runtime, store: OutputStore, force: bool, wait: bool,
                 batch_size: int | str, report: RenderReport, outcome: Callable[..., JobOutcome],
                 progress: Progress, engine_factory: Callable[[ModelIdentity, Runtime, Any], Any] | None,
                 save_masks: bool = False, signer: Any = None, all_takes: list[tuple[str, int]] | None = None,
                 loaded: LoadedShotList | None = None,
                 qa: Callable[[], Callable[[Job, Any], Any] | None] | None = None,
                 backend: Any = None) -> None:
    from .errors import ProjectMismatchError
    from .orphans import find_orphans
    from .superseded import kept_render_of, kept_versions_by_take, put_back

    # --quiet silences the note of a wait behind another run, as every other note.
    with store.session(wait=wait, on_wait=lambda text: progress.note(f"note: {text}")):
        # Another project's renders are not overwritten by accident (same shot ids, same file names).
        projects = folder_projects(store)
        if projects and plan.project not in projects:
            other = sorted(projects)[0]
            if not force:
                raise ProjectMismatchError(
                    f"{store.root} holds renders of project '{other}', not '{plan.project}'; render into "
                    f"another folder (--out; the default is renders/{plan.project}) or pass --force (the other "
                    "project's takes of the same shot ids are then moved to .idcli/superseded)")
            report.other_project = other
        takes = all_takes if all_takes is not None else [(j.shot_id, j.take) for j in plan.jobs]
        from .recorded_paths import shotlist_relpath

        store.write_manifest({"project": plan.project, "file": plan.source,
                              # where the shot list is from here: true after the project folder moved
                              "file_relpath": shotlist_relpath(loaded, store.root) if loaded is not None else None,
                              "shotlist_sha256": loaded.raw_sha256 if loaded is not None else None,
                              "takes": [list(take) for take in takes], **_shot_order(loaded)})
        store.journal({"event": "run-start", "source": plan.source, "jobs": len(plan.jobs)})
        report.orphans = find_orphans(store.root, takes)
        pending: list[Job] = []
        # superseded/ listed once, at the first job not done (each job moves only its own take's files)
        kept_takes = functools.cache(lambda: kept_versions_by_take(store.root))
        for job in plan.jobs:
            state = store.state(job)
            report.states[job.key] = state.status
            if force and state.status in ("done", "recoverable", "modified"):
                state = type(state)("stale", "--force")
            if state.status == "modified":
                report.jobs.append(outcome(job, "kept", "modified"))
            elif state.status == "done":
                report.jobs.append(outcome(job, "skipped", "done"))
            elif state.status == "recoverable":
                _recover(store, job, state.record or {}, state.image_sha256)
                report.jobs.append(outcome(job, "recovered", "recoverable"))
            elif not force and (kept := kept_render_of(store.root, job.stem, job.key,
                                                         kept_takes().get(job.stem, []))) is not None:
                # The shot was edited back: its earlier take is exactly this job's; no need to render it.
                moved = put_back(store, kept)
                if moved:
                    report.superseded.append({"shot_id": job.shot_id, "take": job.take, "name": moved})
                report.jobs.append(outcome(job, "restored", state.status))
            else:
                pending.append(job)
        if signer is not None:
            _note_unsigned(store, plan.jobs, report, progress)
        done_before = len(report.jobs)
        progress.start(len(plan.jobs), done_before)
        if pending:
            check = qa() if qa is not None else None  # a missing face-model pack stops here (exit 4)
            if backend is None:
                from .executors.local import LocalExecutor

                engine = (engine_factory or _default_engine)(plan.model, runtime, plan.adapter)
                executor: Any = LocalExecutor(engine, runtime.device)
            else:
                executor = backend.executor(plan.model, runtime, plan.adapter, plan.project)
            try:
                _render_pending(executor, plan.model, runtime, store, pending, batch_size, report, outcome,
                                progress, save_masks, signer, plan.project, check)
            except OutputError as exc:
                # The folder cannot take more (disk full, permissions): stop; the rest count as failed.
                report.error, report.error_exit_code = str(exc), exc.exit_code
                seen = {o.job_key for o in report.jobs}
                report.jobs.extend(outcome(job, "failed", "new", str(exc)) for job in pending if job.key not in seen)
        report.superseded.extend(store.superseded)
        store.journal({"event": "run-end", "rendered": report.rendered, "failed": report.failed})
        progress.stop()


def _note_unsigned(store: OutputStore, jobs: list[Job], report: RenderReport, progress: Progress) -> None:
    """A signing run skips done images as any run does, so those rendered before signing was on stay
    unsigned (docs/provenance.md): say which, rather than leave the folder to look signed throughout."""
    from . import safeio
    from .signing import carries_manifest

    def signed(job: Job) -> bool:
        if ((store.read_sidecar(job) or {}).get("c2pa") or {}).get("signed"):
            return True
        try:  # a sidecar rebuilt from its PNG after a kill has no c2pa block; the image says
            return carries_manifest(safeio.read_regular(store.path(job.image_relpath), MAX_IMAGE_BYTES))
        except safeio.NotRegularFile:
            return False

    skipped = {o.job_key for o in report.jobs if o.status == "skipped"}
    unsigned = [job.stem for job in jobs if job.key in skipped and not signed(job)]
    if unsigned:
        shown = ", ".join(unsigned[:5]) + (f", … ({len(unsigned) - 5} more)" if len(unsigned) > 5 else "")
        progress.note(f"note: {len(unsigned)} image(s) already done were rendered without signing and stay unsigned "
                      f"({shown}); --force --only SHOT renders them again, signed")


def _signer(loaded: LoadedShotList, sign: bool | None) -> Any:
    """A C2PA signer when this run signs (its credentials checked now: exit 2 before any work), else None."""
    if sign is False:
        return None
    from .signing import Signer, SigningError, resolve_credentials

    provenance = loaded.shotlist.provenance
    try:
        credentials = resolve_credentials(sign, provenance.c2pa if provenance else None, loaded.resolve_path)
    except SigningError as exc:
        raise _at_its_shot_list_field(exc, loaded) from None
    return Signer(credentials) if credentials else None


def _at_its_shot_list_field(exc: Any, loaded: LoadedShotList) -> Exception:
    """A signing error about a credential the shot list names (provenance.c2pa.cert, .key, .ta_url) as a shot-list
    error: the shot list, the line and the field where it is written, as every other; the message names the file."""
    from .errors import Problem, ShotListError

    field_path = exc.field or ""
    if not field_path.startswith("provenance.c2pa."):
        return exc  # the environment's credentials (IDCLI_C2PA_CERT, a password variable): no line to name
    line, column = loaded.position(("provenance", "c2pa", field_path.rsplit(".", 1)[1]))
    return ShotListError(loaded.source, [Problem(str(exc), field_path, line, column)])


def _default_engine(model: ModelIdentity, runtime: Runtime, adapter: Any) -> Any:
    import signal

    # A KeyboardInterrupt raised inside torch's or diffusers' native import code can abort the process
    # or be lost; the signals are held during the imports and delivered right after them.
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        import diffusers  # noqa: F401
        import torch  # noqa: F401
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    from .engine import Engine

    return Engine(model, runtime, adapter)


def _recover(store: OutputStore, job: Job, record: dict[str, Any], image_sha256: str | None) -> None:
    """Rebuild the sidecar of an image committed without one from what state() read: its record and the
    hash of the same file (no second read, which could follow a link swapped in since)."""
    from .provenance import complete_sidecar

    if image_sha256 is None:
        raise ValueError(f"job {job.key} has no image hash to recover from")
    sidecar = complete_sidecar(record, image_sha256, batch_index=None, batch_size=None, started=None,
                               finished=None, recovered=True)
    store.commit(job, b"", sidecar)


def _render_pending(executor: Any, model: ModelIdentity, runtime: Runtime, store: OutputStore,
                    pending: list[Job], batch_size: int | str, report: RenderReport,
                    outcome: Callable[..., JobOutcome], progress: Progress, save_masks: bool = False,
                    signer: Any = None, project: str | None = None,
                    qa: Callable[[Job, Any], Any] | None = None) -> None:
    from .executors import RenderedBatch
    from .executors.output import EncodedImage, encode_result, png_pixels
    from .provenance import add_fusion_facts, add_plate_facts, complete_sidecar
    from .store import image_sha256
    from .writer import CommitQueue

    def commit_batch(rendered: RenderedBatch) -> tuple[list[Job], Exception | None]:
        # On the commit thread: PNG encoding (local executor), hashing and writes overlap the next batch's
        # rendering. Returns the jobs committed, and the error that stopped the rest (disk full, permissions).
        done: list[Job] = []
        keys = rendered.keys or [job.key for job in rendered.jobs]
        positions = rendered.positions or list(range(len(rendered.jobs)))
        for position, job, output in zip(positions, rendered.jobs, rendered.outputs, strict=True):
            image = output if isinstance(output, EncodedImage) else encode_result(
                job, output, model, runtime.device, rendered.adapter_record, project)
            # The jobs that went through the UNet together (the engine runs jobs of different CLIP window
            # counts as separate forwards, so that can be fewer than the batch).
            members = image.members if image.members is not None else list(range(len(keys)))
            index = members.index(position)
            png, signed = image.png, None
            # Identity QA (docs/review.md) looks at the pixels: the engine's, or the PNG a Ray worker encoded.
            checked = qa(job, output.pixels if not isinstance(output, EncodedImage) else png_pixels(png)) \
                if qa is not None else None
            try:
                if signer is not None:  # signed last, in memory, by the driver: nothing re-encodes it after this
                    png, signed = signer.sign(png, image.record)
            except OutputError as exc:
                return done, exc
            # The hash is of the bytes committed here, wherever they were encoded.
            sidecar = complete_sidecar(image.record, image_sha256(png), batch_index=index, batch_size=len(members),
                                       started=rendered.started, finished=rendered.finished,
                                       batch_keys=[keys[m] for m in members], executor=rendered.worker)
            if signed:
                sidecar["c2pa"] = signed
            if image.fusion is not None:
                add_fusion_facts(sidecar, image.fusion)
            if image.plate is not None:
                add_plate_facts(sidecar, image.plate)
            if checked is not None:
                sidecar["qa"] = checked  # in the sidecar, not the PNG
            try:
                if image.mask_png is not None:
                    # The --save-masks strip, written before the job commits (a committed job has its strip).
                    store.write(job.mask_relpath, image.mask_png)
                    if job.plate is not None:
                        sidecar["plate"]["mask"] = job.mask_relpath  # the face masks over the plate
                    else:
                        sidecar["fusion"]["mask_strip"] = job.mask_relpath
                store.commit(job, png, sidecar)
            except OutputError as exc:
                return done, exc
            done.append(job)
        return done, None

    def committed(result: tuple[list[Job], Exception | None]) -> None:
        done, error = result
        for job in done:
            report.jobs.append(outcome(job, "rendered", "new"))
            progress.advance(report.jobs[-1])
        if error is not None:
            raise error

    class Sink:
        """Where the executor hands rendered batches (to the commit queue) and failed jobs (to the report)."""

        # The progress display's optional per-evaluation callback (the local executor hands it to the engine).
        batch_step = getattr(progress, "batch_step", None)

        def rendered(self, batch: RenderedBatch) -> None:
            report.batch_sizes.append(len(batch.keys or batch.jobs))
            commits.submit(commit_batch, batch)

        def failed(self, jobs: list[Job], error: str) -> None:
            for job in jobs:
                report.jobs.append(outcome(job, "failed", "new", error))
                progress.advance(report.jobs[-1])

        def note(self, text: str) -> None:
            progress.note(text)

    commits = CommitQueue(committed, stops=lambda result: result[1] is not None)  # (done, error)
    try:
        try:
            executor.run(pending, batch_size, save_masks, Sink())
        except (KeyboardInterrupt, ExecutorUnavailableError):
            # Ctrl-C or SIGTERM, or the Ray cluster gone: the batches already rendered are committed first
            # (milliseconds each).
            with contextlib.suppress(Exception, KeyboardInterrupt):
                commits.drain()
            raise
        commits.drain()
    finally:
        # Stopped by an error: a commit already running finishes and its jobs are reported; queued ones
        # are dropped (their jobs stay pending for the next run).
        commits.cancel()
        commits.close()
        report.commits, report.commit_seconds = commits.commits, commits.busy_seconds
        report.executor.update(getattr(executor, "stats", {}))


def _identity_qa(plan: Plan, face_models: str | None, thresholds: Any) -> Callable[[Job, Any], Any] | None:
    """The commit thread's QA check (idcli/review/qa.py), or None when no job has a cast to check."""
    if not any(job.identities for job in plan.jobs):
        return None
    from .review.qa import IdentityQA, QAThresholds, commit_hook

    return commit_hook(IdentityQA.for_preset(plan.model.preset, face_models, thresholds or QAThresholds()))


def _shot_order(loaded: LoadedShotList | None) -> dict[str, Any]:
    """``shots`` for the run manifest: the shot list's order, takes and durations (the review commands)."""
    if loaded is None:
        return {}
    from .review.order import manifest_shots

    return {"shots": manifest_shots(loaded)}
