"""A render run: plan the shot list, skip what is done, batch the rest through the engine, commit.

This is the library call behind ``idcli render``; pipelines call ``render`` directly.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .commit_path import recover_sidecar, render_pending
from .errors import ExecutorUnavailableError, Interrupted, ModelUnavailableError, OutputError
from .folder_projects import folder_projects
from .interrupts import interrupted
from .models import ModelIdentity
from .paths import absolute
from .plan import Job, Plan, is_pattern, selected_shots
from .planning import plan_to_render
from .reuse import recorded_key
from .run_report import JobOutcome, OutputFile, Progress, RenderReport, SilentProgress, TakeState
from .run_signing import note_unsigned, signer_for
from .runtime import Runtime
from .shotlist import LoadedShotList
from .store import OutputStore

if TYPE_CHECKING:
    from .arguments import ShotIds
    from .executors.ray import RayBackend
    from .review.qa import QAThresholds


def render(loaded: LoadedShotList | str | Path, out_dir: str | Path, *, preset: str | None = None, device: str = "auto",
           dtype: str | None = None, batch_size: int | str = "auto", force: bool = False,
           only: ShotIds | None = None, dry_run: bool = False, wait: bool = False,
           face_models: str | os.PathLike[str] | None = None, save_masks: bool = False, compile: bool = False,
           sign: bool | None = None, progress: Progress | None = None,
           engine_factory: Callable[[ModelIdentity, Runtime, Any], Any] | None = None,
           qa: bool = True, qa_thresholds: QAThresholds | None = None, takes: dict[str, int] | None = None,
           executor: Literal["local", "ray"] | RayBackend | None = "local", ray_address: str | None = None,
           workers: int | None = None) -> RenderReport:
    """Render every job of ``loaded`` that is not already done in ``out_dir``.

    ``save_masks`` writes each dual-line job rendered in this run a strip of its fusion mask over
    time next to the image (``<shot>_t<take>.mask.png``); jobs already done are not re-rendered for it.
    ``sign`` signs every image with C2PA content credentials (docs/provenance.md): True asks for it,
    False refuses it, None signs when the shot list or the environment names credentials.
    ``loaded`` may be a path to a shot list; ``only`` one shot id or a list of them (or patterns: ``"sc01_*"``);
    ``batch_size`` an int 1..1024 or ``"auto"``. Arguments of the wrong type or range raise ``InputError`` (exit
    code 2).
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
    # as a string from here: QA's face models (`_identity_qa`) are chosen from it as well as the plan's
    face_models = args.check_path_or_none("face_models", face_models)
    args.check_progress(progress)
    args.check_callable("engine_factory", engine_factory)
    args.check_qa_thresholds(qa_thresholds)
    takes = args.check_takes(takes)
    progress = progress or SilentProgress()
    started = time.perf_counter()
    signer = signer_for(loaded, sign)  # credentials are checked before anything is planned or rendered
    backend = _backend(executor, ray_address, workers, engine_factory)
    from .unfinished import render_request

    if backend is not None and not isinstance(executor, str):  # a caller's RayBackend holds its cluster and workers
        address, count = getattr(backend, "address", None), getattr(backend, "workers", None)
        ray_address = address if isinstance(address, str) else None
        workers = count if type(count) is int else None
    # a dtype the shot list says itself is one the morning after's command repeats (unfinished.unsaid)
    request = render_request(preset=preset, device=device,
                             dtype=None if dtype == loaded.shotlist.model.dtype else dtype, face_models=face_models,
                             executor="local" if backend is None else "ray", ray_address=ray_address,
                             workers=workers, sign=sign, only=only)
    try:
        return _render(loaded, out_dir, backend, preset=preset, device=device, dtype=dtype, batch_size=batch_size,
                       force=force, only=only, dry_run=dry_run, wait=wait, face_models=face_models,
                       save_masks=save_masks, compile=compile, progress=progress, engine_factory=engine_factory,
                       started=started, signer=signer, qa=qa, qa_thresholds=qa_thresholds, takes=takes,
                       request=request)
    except KeyboardInterrupt:
        # Ctrl-C or SIGTERM where _render holds no guard of its own (a plan warning being printed, a dry run's
        # look at the folder): the same Interrupted, with its signal's exit code, never a bare KeyboardInterrupt.
        raise interrupted() from None
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
            from .option_words import Option

            raise InputError(Option("ray_address"), " and ", Option("workers"), " need ", Option("executor", "ray"),
                             field="executor")
        return None
    from .executors.ray import RayBackend

    return RayBackend(ray_address, workers, engine_factory)


def _render(loaded: LoadedShotList, out_dir: str | Path, backend: Any, *, preset: str | None, device: str,
            dtype: str | None, batch_size: int | str, force: bool, only: list[str] | None, dry_run: bool,
            wait: bool, face_models: str | None, save_masks: bool, compile: bool, progress: Progress,
            engine_factory: Callable[[ModelIdentity, Runtime, Any], Any] | None, started: float,
            signer: Any, qa: bool, qa_thresholds: Any, takes: dict[str, int] | None,
            request: dict[str, Any] | None = None) -> RenderReport:
    from .added_takes import added_takes, merge_takes

    # Takes an earlier --retake-flagged run added stay planned (idcli/added_takes.py): never orphaned.
    takes = merge_takes(added_takes(out_dir, loaded), takes)
    if not (wait or dry_run):  # a folder another run holds is told now, not after seconds of planning (exit 3)
        OutputStore(Path(out_dir)).check_not_busy()
    try:
        # A Ray run plans for its workers' device (a dry run without a cluster address plans for this machine).
        cluster = backend is not None and not (dry_run and not (backend.address or os.environ.get("RAY_ADDRESS")))
        runtime = backend.runtime(device, dtype or loaded.shotlist.model.dtype) if cluster else None
        plan, runtime = plan_to_render(loaded, preset=preset, device=device, dtype=dtype, face_models=face_models,
                                       on_encode=lambda name: progress.note(f"encoding the selfies of '{name}'"),
                                       takes=takes, runtime=runtime, only=only)
    except KeyboardInterrupt:
        raise interrupted() from None
    # Orphans and the folder's manifest are judged against the whole shot list, not an --only selection.
    all_takes = [(job.shot_id, job.take) for job in plan.jobs] + [(b.shot_id, b.take) for b in plan.blocked]
    plan = plan.select(only)
    if request is not None and only and any(is_pattern(value) for value in only):
        # the run-start line records the shots a pattern selected: the morning note counts and commands those
        request["only"] = selected_shots(only, [shot.id for shot in loaded.shotlist.shots])
    for warning in plan.warnings:
        progress.note(f"warning: {warning}")
    if compile:
        runtime = replace(runtime, compile=True)  # speed only: not part of any key
        from .engine.compiled import cpu_compile_note

        slow_start = None if dry_run else cpu_compile_note(runtime.device)
        if slow_start is not None:  # before the engine is built and compiles: minutes with no image on a CPU
            progress.note(f"note: {slow_start}")
    from .provenance import model_record

    out = Path(out_dir)
    store = OutputStore(out)
    report = RenderReport(str(absolute(out)), model_record(plan.model, runtime.device), dry_run=dry_run,
                          project=plan.project, file=plan.source,
                          problems=[p.as_json(plan.source) for p in plan.problems], warnings=list(plan.warnings))
    report.executor = {"name": "local" if backend is None else backend.name}
    if plan.blocked:  # the run-start line's record, and what the summary and --json say of the takes blocked
        from .blocked_takes import blocked_record

        report.blocked_record = blocked_record(plan.blocked, plan.source, loaded, plan.problems)

    def outcome(job: Job, status: str, before: str = "", error: str | None = None) -> JobOutcome:
        state = report.states.get((job.shot_id, job.take), TakeState(before))
        return JobOutcome(job.key, job.shot_id, job.take, job.request.seed, job.group, status,
                          OutputFile.of(out, job.image_relpath), OutputFile.of(out, job.sidecar_relpath), error,
                          *state)

    from .kept_versions import count_superseded, kept_versions_by_take
    from .orphans import shotlist_takes

    if dry_run:
        from .orphans import find_orphans

        # The render itself would stop here (exit 5; at a shot's folder that is a file, at its first commit): so
        # does its dry run, and at another project.
        store.check_usable(job.shot_id for job in plan.jobs)
        report.other_project = _other_project(store, plan, force, progress, "the render goes into it anyway")
        rows, known = [], {}
        kept_takes = functools.cache(lambda: kept_versions_by_take(out))
        for job in plan.jobs:
            state = store.state(job) if out.is_dir() else None
            status = _dry_run_status(out, job, state, force, kept_takes)
            rows.append((job, status, state.status if state else "new"))
            known[job.image_relpath] = recorded_key(job, state) if state is not None else None
        if out.is_dir():
            report.orphans = find_orphans(out, all_takes)
            report.superseded_total = count_superseded(out)
        reusing = _reused_in_dry_run(plan, out, rows, force, save_masks, known, report.orphans, kept_takes)
        for job, status, before in rows:
            report.jobs.append(outcome(job, "reused" if job.stem in reusing else status, before))
        _report_blocked(plan, report, out)
        report.seconds = time.perf_counter() - started
        return report

    # Identity QA (docs/review.md): resolved when there is something to render, before the engine loads.
    check = (lambda: _identity_qa(plan, face_models, qa_thresholds)) if qa else None
    stopped: Interrupted | ExecutorUnavailableError | None = None
    try:
        _run_session(plan, runtime, store, force, wait, batch_size, report, outcome, progress, engine_factory,
                     save_masks, signer, all_takes, loaded, check, backend, request)
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
        report.superseded_total = count_superseded(out)  # what the folder keeps, however far the run came
        stopped.report = report  # what was settled before the signal: `render --json` still reports it
        raise stopped
    return report


def _dry_run_status(out: Path, job: Job, state: Any, force: bool,
                    kept_takes: Callable[[], dict[str, list[Any]]]) -> str:
    """What the render would do with ``job`` before rendering anything, as ``_run_session`` decides it: ``kept``
    (edited by hand), ``skipped`` (done), ``recovered`` (its sidecar rebuilt from its PNG), ``restored`` (a kept
    version of exactly this job put back), else ``pending`` (to render, or to reuse: ``_reused_in_dry_run``)."""
    if state is None or force:
        return "pending"
    by_status = {"modified": "kept", "done": "skipped", "recoverable": "recovered"}
    if state.status in by_status:
        return by_status[state.status]
    from .kept_versions import kept_render_of

    if kept_render_of(out, job.stem, job.key, kept_takes().get(job.stem, [])) is not None:
        return "restored"
    return "pending"


def _reused_in_dry_run(plan: Plan, out: Path, rows: list[tuple[Job, str, str]], force: bool, save_masks: bool,
                       known: dict[str, str | None], orphans: list[dict[str, Any]],
                       kept_takes: Callable[[], dict[str, list[Any]]]) -> set[str]:
    """The takes a render would make of an image of the same job already in the folder (idcli/reuse.py), as
    ``plan`` names them: of the jobs a dry run calls pending (``_dry_run_status``). ``kept_takes``: superseded/ as
    the dry run listed it once."""
    candidates = [job for job, status, _before in rows if status == "pending"]
    if force or not candidates or not out.is_dir():
        return set()
    from .reuse import reuse_plan

    return set(reuse_plan(out, candidates, kept_takes(), plan.adapter, known,
                          [orphan["image"]["path"] for orphan in orphans], save_masks))


def _report_blocked(plan: Plan, report: RenderReport, out: Path) -> None:
    """Takes of shots naming an unusable character: failed, with the character's problem (the rest render)."""
    for blocked in plan.blocked:
        report.jobs.append(JobOutcome(None, blocked.shot_id, blocked.take, blocked.seed, "", "failed",
                                      OutputFile.of(out, blocked.image_relpath),
                                      OutputFile.of(out, blocked.sidecar_relpath),
                                      blocked.problem.format(plan.source), "blocked"))


def _other_project(store: OutputStore, plan: Plan, force: bool, progress: Progress, went: str) -> str | None:
    """The project whose renders the output folder holds when it is not the plan's (None: none, or the plan's own).
    Refused without ``force``: another project's renders are not overwritten by accident (same shot ids, same file
    names); a dry run refuses it as the render would. With ``force`` the run goes on, and says so to ``progress``
    (``went``: what it does), as it says its other notes: a Python caller hears it, the command prints it."""
    from .errors import ProjectMismatchError

    projects = folder_projects(store) if store.root.is_dir() else set()
    if not projects or plan.project in projects:
        return None
    other = sorted(projects)[0]
    if not force:
        from .option_words import Option

        raise ProjectMismatchError(
            f"{store.root} holds renders of project '{other}', not '{plan.project}'; render into "
            "another folder (", Option("out_dir", flag="--out"), ") or pass ", Option("force", True),
            " (the other project's takes of the same shot ids are then moved to .idcli/superseded)")
    from .folder_projects import other_project_note

    progress.note(other_project_note(store.root, other, plan.project, went))
    return other


def _run_session(plan: Plan, runtime: Runtime, store: OutputStore, force: bool, wait: bool,
                 batch_size: int | str, report: RenderReport, outcome: Callable[..., JobOutcome],
                 progress: Progress, engine_factory: Callable[[ModelIdentity, Runtime, Any], Any] | None,
                 save_masks: bool = False, signer: Any = None, all_takes: list[tuple[str, int]] | None = None,
                 loaded: LoadedShotList | None = None,
                 qa: Callable[[], Callable[[Job, Any], Any] | None] | None = None,
                 backend: Any = None, request: dict[str, Any] | None = None) -> None:
    from .interrupted_restore import rejoin_put_back
    from .kept_versions import count_superseded, kept_render_of, kept_versions_by_take
    from .orphans import find_orphans
    from .restore import put_back
    from .stale_causes import edited_cause

    # --quiet silences the note of a wait behind another run, as every other note.
    with store.session(wait=wait, on_wait=lambda text: progress.note(f"note: {text}")):
        report.other_project = _other_project(store, plan, force, progress, "rendering into it anyway")
        takes = all_takes if all_takes is not None else [(j.shot_id, j.take) for j in plan.jobs]
        from .recorded_paths import shotlist_relpath

        store.write_manifest({"project": plan.project, "file": plan.source,
                              # where the shot list is from here: true after the project folder moved
                              "file_relpath": shotlist_relpath(loaded, store.root) if loaded is not None else None,
                              "shotlist_sha256": loaded.raw_sha256 if loaded is not None else None,
                              "takes": [list(take) for take in takes], **_shot_order(loaded)})
        # request: what the morning after's "to finish" command repeats; blocked: takes no render can finish
        # until a character's file is fixed (unfinished.py)
        store.journal({"event": "run-start", "source": plan.source, "jobs": len(plan.jobs),
                       **({"request": request} if request is not None else {}),
                       **({"blocked": report.blocked_record} if report.blocked_record else {})})
        report.orphans = find_orphans(store.root, takes)
        pending: list[Job] = []
        # superseded/ listed once, at the first job not done (each job moves only its own take's files)
        kept_takes = functools.cache(lambda: kept_versions_by_take(store.root))
        put_back_count = 0  # versions this run took out of superseded/ (restored)
        known: dict[str, str | None] = {}  # the key at each job's image path, for finding reusable images
        adopting: list[tuple[Job, Any]] = []  # images committed without their sidecar (a kill): rebuilt below
        for job in plan.jobs:
            state = store.state(job)
            known[job.image_relpath] = recorded_key(job, state)
            stale = state.status == "stale"
            cause = edited_cause(job, state, plan.model) if stale else None
            # By take: a take of the same content as another (the same job key) has its own image and state.
            report.states[job.shot_id, job.take] = TakeState(state.status, state.reason if stale else None, cause)
            if stale:
                report.stale_reasons[job.key] = state.reason
                if cause is not None:
                    report.stale_causes[job.key] = cause
            if force and state.status in ("done", "recoverable", "modified"):
                state = type(state)("stale", "--force")
            if state.status == "modified":
                report.jobs.append(outcome(job, "kept", "modified"))
            elif state.status == "done":
                report.jobs.append(outcome(job, "skipped", "done"))
            elif state.status == "recoverable":
                adopting.append((job, state))
            elif not force and (kept := kept_render_of(store.root, job.stem, job.key,
                                                         kept_takes().get(job.stem, []))) is not None:
                # The shot was edited back: its earlier take is exactly this job's; no need to render it.
                moved = put_back(store, kept)
                put_back_count += 1
                known[job.image_relpath] = job.key
                if moved:
                    report.superseded.append({"shot_id": job.shot_id, "take": job.take, "name": moved})
                report.jobs.append(outcome(job, "restored", state.status))
            else:
                pending.append(job)
        if adopting:  # the journal read once for them all: a reused image's sidecar takes back what its PNG lacks
            from .reuse import begun_reuses

            begun = begun_reuses(store, [(job, state.image_sha256) for job, state in adopting])
            for job, state in adopting:
                # The image a killed restore put back, its own sidecar still kept: that sidecar, not one rebuilt.
                if rejoin_put_back(store, job.shot_id, job.take) is not None:
                    put_back_count += 1  # a version (its sidecar alone) taken out of superseded/
                else:
                    recover_sidecar(store, job, state.record or {}, state.image_sha256, begun.get(job.stem))
                report.jobs.append(outcome(job, "recovered", "recoverable"))
        # Resolved once, at the first image QA checks (reused or rendered): a missing face-model pack stops there.
        qa_check = functools.cache(lambda: qa() if qa is not None else None)
        if pending and not force:
            try:
                pending = _reuse(plan, store, pending, kept_takes(), known, report, outcome, save_masks, signer,
                                 qa_check)
            except OutputError as exc:  # as when rendering: what was committed is reported, the rest failed
                _stopped_by_folder(report, exc, pending, outcome)
                pending = []
            except ModelUnavailableError as refused:  # identity QA's face models, at the first image reused
                _journal_refusal(store, report, pending, refused)
                raise
        store.stamps.save()  # now, not at the session's end: a run killed while rendering keeps them
        if signer is not None:
            note_unsigned(store, plan.jobs, report, progress)
        done_before = len(report.jobs)
        if callable(settled := getattr(progress, "settled", None)):  # optional (run_report.Progress): what they are
            settled({status: report.count(status) for status in ("skipped", "recovered", "restored", "reused", "kept")})
        progress.start(len(plan.jobs), done_before)
        # Stopped once however the run ends (Ctrl-C, an engine that cannot load, a Ray cluster gone): a caller's
        # bar (rich's refresh thread, a tqdm) was otherwise left running in a process that goes on to render again.
        try:
            if pending:
                check = qa_check()  # a missing face-model pack stops here (exit 4)
                with _local_engine(plan, runtime, engine_factory, backend) as engine:
                    if backend is None:
                        from .executors.local import LocalExecutor

                        executor: Any = LocalExecutor(engine, runtime.device)
                    else:
                        executor = backend.executor(plan.model, runtime, plan.adapter, plan.project)
                    try:
                        render_pending(executor, plan.model, runtime, store, pending, batch_size, report, outcome,
                                        progress, save_masks, signer, plan.project, check)
                    except OutputError as exc:
                        _stopped_by_folder(report, exc, pending, outcome)
            report.superseded.extend(store.superseded)
            # What superseded/ keeps now: from the one listing the run took (before it moved anything), less what it
            # put back, plus what it moved there; else listed now. A second listing cost a film's resume a second scan.
            report.superseded_total = (sum(map(len, kept_takes().values())) - put_back_count + len(report.superseded)
                                       if kept_takes.cache_info().currsize else count_superseded(store.root))
            # the error that stopped it (a full disk), for the morning after: unfinished.py says it
            store.journal({"event": "run-end", "rendered": report.rendered, "failed": report.failed,
                           **({"error": report.error, "not_rendered": report.not_rendered} if report.error else {})})
        except (ModelUnavailableError, ExecutorUnavailableError) as refused:
            # The engine could not load (a damaged weight file found only now; no Ray worker could start; the cluster
            # went away): the run ends here, and its journal says why, not a run-start alone that the morning after
            # reads as a render killed mid-run.
            _journal_refusal(store, report, pending, refused)
            raise
        finally:
            progress.stop()


def _journal_refusal(store: OutputStore, report: RenderReport, pending: list[Job], refused: Exception) -> None:
    """The run-end line of a run a model refusal stopped: why, and the takes of ``pending`` not reached."""
    seen = {(o.shot_id, o.take) for o in report.jobs}
    with contextlib.suppress(OSError, OutputError):  # a full disk must not hide why the run stopped
        store.journal({"event": "run-end", "rendered": report.rendered, "failed": report.failed,
                       "error": str(refused),
                       "not_rendered": sum((job.shot_id, job.take) not in seen for job in pending)})


def _stopped_by_folder(report: RenderReport, exc: OutputError, pending: list[Job],
                       outcome: Callable[..., JobOutcome]) -> None:
    """The folder cannot take more (disk full, permissions) while committing ``pending`` (reused or rendered): the
    run stops; the error is the report's, not raised, and the jobs not committed are ``not_rendered`` (no fault of
    theirs: counted failed, a full disk's 91 read as 91 broken shots)."""
    report.error, report.error_exit_code, report.error_file = str(exc), exc.exit_code, exc.file
    seen = {(o.shot_id, o.take) for o in report.jobs}  # by take: two shots alike share a job key
    report.jobs.extend(outcome(job, "not_rendered", "new", str(exc)) for job in pending
                       if (job.shot_id, job.take) not in seen)


def _reuse(plan: Plan, store: OutputStore, pending: list[Job], kept: dict[str, list[Any]],
           known: dict[str, str | None], report: RenderReport, outcome: Callable[..., JobOutcome], save_masks: bool,
           signer: Any, qa: Callable[[], Callable[[Job, Any], Any] | None]) -> list[Job]:
    """Commit each pending job whose exact key is already in the folder from that image (``reused``, idcli/reuse.py);
    the jobs left to render. ``known``: the key at each job's image path, as this run's states read it."""
    from .commit_path import commit_reused
    from .reuse import note_commit, note_moved, renders_by_key, reusable_source

    sources = renders_by_key(store.root, [version for versions in kept.values() for version in versions], known,
                             [orphan["image"]["path"] for orphan in report.orphans])
    # ``kept`` was listed before this run restored takes: what a restore displaced is in superseded now (as the plan,
    # which names it at its take's path, said it would be used).
    note_moved(sources, store.root, report.superseded)
    if not any(job.key in sources for job in pending):
        return pending
    left = []
    for job in pending:
        found = reusable_source(store.root, job, sources, plan.adapter, save_masks)
        moved = len(store.superseded)
        if found is None or not commit_reused(store, job, found, plan.model, plan.project, signer, qa()):
            left.append(job)
            continue
        note_commit(sources, store.root, job, store.superseded[moved:])
        report.jobs.append(outcome(job, "reused", "new"))
    return left


@contextlib.contextmanager
def _local_engine(plan: Plan, runtime: Runtime, engine_factory: Callable[[ModelIdentity, Runtime, Any], Any] | None,
                  backend: Any) -> Iterator[Any]:
    """The engine of a local run (None for Ray: its workers build theirs). Without an ``engine_factory``, the one
    an earlier render in this process left when it is exactly the engine this run would build (idcli/kept_engine.py:
    the model is not loaded again per call), and this run's is left for the next."""
    if backend is not None:
        yield None
        return
    from .kept_engine import engine_for

    with engine_for(plan.model, runtime, plan.adapter, engine_factory) as engine:
        yield engine


def default_engine(model: ModelIdentity, runtime: Runtime, adapter: Any) -> Any:
    """The engine ``render()`` builds when no ``engine_factory`` is given (the Ray workers and reproduce too)."""
    import signal

    # A KeyboardInterrupt raised inside torch's or diffusers' native import code can abort the process
    # or be lost; the signals are held during the imports and delivered right after them.
    held = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}  # SIGHUP: a closed terminal stops a run as they do
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        import torch  # noqa: F401

        from .package_imports import import_packages

        import_packages("transformers", "diffusers")  # two threads' first import at once: one failed
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    from .engine import Engine

    return Engine(model, runtime, adapter)


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
