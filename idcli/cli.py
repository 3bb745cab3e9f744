"""The ``idcli`` command line: thin commands over the library (see idcli/__init__.py).

Heavy libraries (torch, diffusers, insightface) are imported inside commands, never here, so that
``idcli --help`` answers at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from .errors import EXIT_INTERRUPTED, EXIT_INVALID_INPUT, EXIT_OK, EXIT_OUTPUT_UNUSABLE, IdcliError, InputError
from .versions import TOOL_VERSION

app = typer.Typer(
    name="idcli",
    help="Batch production of identity-consistent previs images from YAML shot lists.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

ShotListArg = Annotated[Path, typer.Argument(help="Shot list (YAML, schema version 1).", show_default=False)]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Output folder [default: renders/<project>].")]
PresetOpt = Annotated[str | None, typer.Option("--preset", help="Model preset overriding the shot list: "
                                               "tiny-sd, tiny-sdxl, sd15, sdxl (and bench-sd15, "
                                               "bench-sdxl: real-size, random weights).")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout for machines.")]
# Scale-out (docs/scale-out.md): who renders the batches; this process plans and commits either way.
ExecutorOpt = Annotated[str, typer.Option("--executor", help="local (this process) or ray (Ray actors, one per "
                                          "GPU; needs the ray extra).")]
RayAddressOpt = Annotated[str | None, typer.Option("--ray-address", help="Ray cluster to use with --executor ray "
                                                   "[default: $RAY_ADDRESS, else a local cluster for this run].",
                                                   show_default=False)]
WorkersOpt = Annotated[int | None, typer.Option("--workers", help="Ray workers with --executor ray [default: one "
                                                "per GPU of the cluster, else 1].", show_default=False)]
FaceModelsOpt = Annotated[str | None, typer.Option(
    "--face-models", help="Folder of insightface ONNX models [default: $IDCLI_FACE_MODELS, else the preset's: "
    "synthetic for tiny presets, ~/.insightface/models/buffalo_l otherwise]. Never downloaded.")]
NoQaOpt = Annotated[bool, typer.Option("--no-qa", help="Skip identity QA (faces matched to the cast, recorded in "
                                       "each sidecar as qa).")]
QaLowIdentityOpt = Annotated[float | None, typer.Option(
    "--qa-low-identity", help="QA flags low_identity below this cosine to the character [default: 0.35].",
    show_default=False)]
QaLeakageOpt = Annotated[float | None, typer.Option(
    "--qa-leakage", help="QA flags leakage at or above this cosine to another character [default: 0.35].",
    show_default=False)]


def _fail(message: str, code: int) -> None:
    print(f"idcli: error: {message}", file=sys.stderr)
    raise typer.Exit(code)


# -- stdout: one JSON document, and a reader that may go away ------------------------------------------


def _stdout_gone() -> None:
    """The reader of stdout went away (``idcli plan --json | head -c 100``): that is not the run's failure.

    stdout is pointed at /dev/null so that the interpreter's final flush does not fail a second time
    (the recipe of Python's docs, "Note on SIGPIPE"); the run keeps its own exit code.
    """
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _emit(text: str) -> None:
    """Print one block of text on stdout (see :func:`_stdout_gone` for a closed pipe)."""
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        _stdout_gone()


def _emit_json(document: dict[str, Any]) -> None:
    _emit(json.dumps(document, indent=2, ensure_ascii=False))


def _ok(**fields: Any) -> dict[str, Any]:
    """A successful ``--json`` document: ``ok``, ``exit_code`` and ``error`` first (docs/file-formats.md)."""
    return {"ok": True, "exit_code": EXIT_OK, "error": None, **fields}


def _failure(error: dict[str, Any], exit_code: int) -> dict[str, Any]:
    return {"ok": False, "exit_code": exit_code, "error": error}


def _error_object(type_name: str, message: str, file: str | None = None) -> dict[str, Any]:
    return {"type": type_name, "message": message, "file": file, "line": None, "column": None, "field": None,
            "hint": None, "problems": []}


def _guarded(fn: Callable[[], Any], as_json: bool = False) -> Any:
    """Run a command body; idcli errors become one message and their exit code.

    With ``as_json`` the failure is also one JSON document on stdout (``ok: false``, ``exit_code``,
    ``error``), so a script reads the same shape whatever happened.
    """
    try:
        return fn()
    except BrokenPipeError:
        _stdout_gone()  # a table printed into a pipe whose reader left: the command itself succeeded
        return None
    except OSError as exc:
        # A file-system failure not anticipated deeper down (permissions, a file where a folder should
        # be): one line, not a traceback.
        if os.environ.get("IDCLI_DEBUG"):
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        message = f"{where}{exc.strerror or exc}"
        if as_json:
            _emit_json(_failure(_error_object("OutputError", message, str(exc.filename) if exc.filename else None),
                                EXIT_OUTPUT_UNUSABLE))
        _fail(message, EXIT_OUTPUT_UNUSABLE)
    except IdcliError as exc:
        if os.environ.get("IDCLI_DEBUG"):
            raise
        if as_json:
            _emit_json(_failure(exc.as_json(), exc.exit_code))
        message = exc.render()
        problems = getattr(exc, "problems", None)
        if problems and len(problems) > 1:
            print(message, file=sys.stderr)
            print(f"idcli: {len(problems)} problems; nothing was rendered", file=sys.stderr)
            raise typer.Exit(exc.exit_code) from None
        _fail(message, exc.exit_code)


def folder_notes(document: dict[str, Any], folder: Path) -> list[str]:
    """What a person should know about the output folder beyond the jobs: characters that cannot be used,
    edited images kept, orphans, superseded renders, another project's renders (plan and render)."""
    notes = []
    for problem in document.get("problems") or []:
        blocked = [f"{j['shot_id']}_t{j['take']}" for j in document.get("jobs", []) if j.get("state") == "blocked"]
        where = ":".join(str(x) for x in (problem["file"], problem["line"], problem["column"]) if x is not None)
        notes.append(f"error: {where}: {problem['message']} — these takes fail, the rest render: "
                     f"{', '.join(blocked[:10])}{' ...' if len(blocked) > 10 else ''}")
    modified = [f"{j['shot_id']}_t{j['take']}" for j in document.get("jobs", []) if j.get("state") == "modified"]
    if modified:
        notes.append(f"note: {len(modified)} image(s) edited by hand since they were rendered are kept, not "
                     f"rendered again: {', '.join(modified[:10])}{' ...' if len(modified) > 10 else ''} "
                     "(--force renders them, moving the edited ones to .idcli/superseded)")
    orphans = document.get("orphans") or []
    if orphans:
        names = [f"{o['shot_id']}_t{o['take']}" for o in orphans]
        notes.append(f"note: {len(orphans)} image(s) of shots or takes no longer in the shot list are kept in "
                     f"{folder}: {', '.join(names[:10])}{' ...' if len(names) > 10 else ''}")
    superseded = document.get("superseded") or []
    if superseded:
        notes.append(f"note: {len(superseded)} earlier render(s) kept in {folder / '.idcli' / 'superseded'} "
                     "(idcli restore OUT SHOT_tN puts one back)")
    if document.get("other_project"):
        notes.append(f"note: {folder} holds renders of project '{document['other_project']}', not "
                     f"'{document.get('project')}' (render refuses it without --force)")
    return notes


def _version(value: bool) -> None:
    if value:
        print(f"idcli {TOOL_VERSION}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    """Batch production of identity-consistent previs images from YAML shot lists."""


def _default_out(loaded: Any, out: Path | None) -> Path:
    return out if out is not None else Path("renders") / loaded.shotlist.project


def _parse_batch_size(value: str) -> int | str:
    if value == "auto":
        return value
    if value.isdigit() and 1 <= int(value) <= 1024:
        return int(value)
    raise InputError(f"--batch-size {value}: give a number 1..1024 or 'auto'")


@app.command()
def validate(file: ShotListArg, face_models: FaceModelsOpt = None,
             selfies: Annotated[bool, typer.Option("--selfies", help="Also encode the selfies of every character "
                                                   "the shots name (cached by content) and report one without a "
                                                   "usable face at its line; plan and render always do.")] = False,
             as_json: JsonOpt = False) -> None:
    """Check a shot list; exit 0 when valid, 2 with every problem listed when not.

    Without --selfies this reads no image (fast, for editors and CI): selfie files must exist.
    """
    from .shotlist import load_shotlist

    def body() -> None:
        loaded = load_shotlist(file)
        doc = loaded.shotlist
        from .plan import take_count

        if selfies:
            _check_characters(loaded, face_models)
        # Plates (issue 12): read, bounded and their faces found at validation; see idcli/plates.py.
        from .plates import plate_shots

        plate_shots(loaded, face_models, need_faces=False)

        takes = sum(take_count(shot, doc.defaults) for shot in doc.shots)
        if as_json:
            notes = [{"line": n.line, "column": n.column, "path": n.path, "message": n.message, "hint": n.hint}
                     for n in loaded.notes]  # several characters under method 'single', ...
            _emit_json(_ok(file=str(file), project=doc.project, shot_count=len(doc.shots), job_count=takes,
                           characters=sorted(doc.characters), **({"notes": notes} if notes else {})))
        else:
            _emit(f"{file}: valid — project {doc.project}, {len(doc.shots)} shots, {takes} jobs, "
                  f"{len(doc.characters)} characters")
            for note in loaded.notes:  # several characters under method 'single', ...
                _emit(f"note: {note.format(loaded.source)}")

    _guarded(body, as_json)


def _check_characters(loaded: Any, face_models: str | None) -> None:
    """Encode the characters the shots name (cached by content); one problem per unusable character."""
    from .errors import ModelUnavailableError, ShotListError
    from .identity.resolve import resolve_identities
    from .plan import shot_characters

    names = {name for shot in loaded.shotlist.shots for name in shot_characters(shot)}
    failures: dict[str, Any] = {}
    try:
        resolve_identities(loaded, names, loaded.shotlist.model.preset, face_models, None, failures)
    except ModelUnavailableError as exc:
        # No face models here (a real preset on a machine without insightface's): the document itself
        # is valid; say what was not checked.
        print(f"idcli: note: the selfies were not checked: {exc}", file=sys.stderr)
        return
    if failures:
        raise ShotListError(loaded.source, [failures[name] for name in sorted(failures)])


@app.command()
def schema() -> None:
    """Print the shot list's JSON Schema (for editors' YAML completion)."""
    from .shotlist import json_schema

    _guarded(lambda: _emit(json.dumps(json_schema(), indent=2)))


@app.command()
def expressions(
    category: Annotated[str | None, typer.Option("--category", "-c", help="Only this category: love, joy, surprise, "
                                                 "anger, sadness or fear.", show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """List the expression vocabulary: 135 terms by category and subgroup, with default intensity and look."""
    from .expressions import terms_in, vocabulary

    def body() -> None:
        vocab = vocabulary()
        # Validate --category before printing anything, so that a typo is an error and not an empty list.
        terms = list(terms_in(category)) if category is not None else [*vocab.values(), vocab.neutral]
        if as_json:
            _emit_json(_ok(terms=[t.as_dict() for t in terms]))
            return
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        console = Console(width=None if sys.stdout.isatty() else 160)
        for name in dict.fromkeys(t.category for t in terms if t.category in vocab.prototypes):
            rows = [t for t in terms if t.category == name]
            table = Table(title=escape(f"{name}: {len(rows)} terms — {vocab.category_descriptions[name]} "
                                       f"(the label '{name}' means the term '{vocab.prototypes[name]}')"),
                          title_justify="left")
            for column in ("subgroup", "term", "intensity", "description"):
                table.add_column(column, no_wrap=column != "description")
            for i, term in enumerate(rows):
                first = i == 0 or rows[i - 1].subgroup != term.subgroup
                last = i == len(rows) - 1 or rows[i + 1].subgroup != term.subgroup
                table.add_row(term.subgroup if first else "", term.label, f"{term.default_intensity:.2f}",
                              escape(term.description), end_section=last)
            console.print(table)
        if category is None:
            console.print(escape(f"neutral (not one of the 135 terms): {vocab.neutral.description}"))

    _guarded(body, as_json)


@app.command()
def plan(file: ShotListArg, out: OutOpt = None, preset: PresetOpt = None, device: DeviceOpt = "auto",
         face_models: FaceModelsOpt = None, as_json: JsonOpt = False) -> None:
    """Show the jobs a render would run: shot, take, seed, size, state (new / done / stale), batch group."""
    from .run import plan_document, plan_shotlist
    from .shotlist import load_shotlist

    def body() -> None:
        loaded = load_shotlist(file)
        the_plan, runtime = plan_shotlist(loaded, preset=preset, device=device, face_models=face_models)
        folder = _default_out(loaded, out)
        document = plan_document(the_plan, runtime, folder)
        if as_json:
            _emit_json(_ok(**document))
            return
        for warning in the_plan.warnings:
            print(f"idcli: warning: {warning}", file=sys.stderr)
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        rows = document["jobs"]
        table = Table(title=escape(f"{the_plan.project}: {len(rows)} jobs → {folder}  ({the_plan.model.label}, "
                                   f"{runtime.device}/{runtime.dtype})"))
        for column in ("shot", "take", "seed", "identity", "size", "steps", "sampler", "tokens", "state", "group",
                       "key"):
            table.add_column(column)
        style = {"new": "yellow", "done": "green", "recoverable": "green", "stale": "magenta", "modified": "red"}
        for row in rows:
            if row["state"] == "blocked":
                continue  # no key, no size: listed below with the character's problem
            table.add_row(escape(row["shot_id"]), str(row["take"]), str(row["seed"]),
                          escape(", ".join(row["conditioning"])),
                          _size_cell(row), str(row["sampler"]["steps"]),
                          row["sampler"]["name"], _tokens_cell(row["prompt_tokens"], row["text_windows"]),
                          f"[{style.get(row['state'], 'white')}]{row['state']}[/]",
                          row["group"], row["job_key"].split(":")[1][:12])
        Console(width=None if sys.stdout.isatty() else 160).print(table)
        for line in _plate_lines(rows):  # issue 12: which plate each plate shot uses, and its faces
            _emit(line)
        for line in folder_notes(document, folder):
            _emit(line)

    _guarded(body, as_json)


def _size_cell(row: dict[str, Any]) -> str:
    """The plan table's size: the image's; a plate job's is its plate's (listed below the table)."""
    plate = row.get("plate")
    size = plate["size"] if plate is not None else row["size"]
    return f"{size['width']}x{size['height']}" + (" plate" if plate is not None else "")


def _plate_lines(rows: list[dict[str, Any]]) -> list[str]:
    """One line per plate shot of ``plan``'s table: its plate file, size, and which face is whose."""
    lines, seen = [], set()
    for row in rows:
        plate = row.get("plate")
        if plate is None or row["shot_id"] in seen:
            continue
        seen.add(row["shot_id"])
        faces = ", ".join(f"{f['character']} at [{', '.join(str(v) for v in f['box'])}]" for f in plate["faces"])
        lines.append(f"plate {row['shot_id']}: {plate['path']} ({plate['size']['width']}x{plate['size']['height']}, "
                     f"faces worked at {plate['working_size']}px, strength {plate['strength']:g}): {faces}")
    return lines


def _tokens_cell(tokens: int | None, windows: int) -> str:
    """The plan table's token count: '?' when unknown, and the windows of a prompt longer than one."""
    if tokens is None:
        return "?"
    return f"{tokens} ({windows}×77)" if windows > 1 else str(tokens)


@app.command()
def render(
    file: ShotListArg,
    out: OutOpt = None,
    preset: PresetOpt = None,
    device: DeviceOpt = "auto",
    batch_size: Annotated[str, typer.Option("--batch-size", "-b", help="Images per GPU batch, or 'auto'.")] = "auto",
    force: Annotated[bool, typer.Option("--force", help="Render again even jobs that are done or whose image was "
                                        "edited by hand, and into a folder of another project (earlier renders "
                                        "are kept in OUT/.idcli/superseded).")] = False,
    only: Annotated[list[str] | None, typer.Option("--only", help="Render only this shot id (repeatable).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would render; write nothing.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for another run on the same folder to end.")] = False,
    face_models: FaceModelsOpt = None,
    save_masks: Annotated[bool, typer.Option("--save-masks", help="Write each dual-line image's fusion mask over "
                                             "time as SHOT_tN.mask.png beside it, for review.")] = False,
    compile_unet: Annotated[bool, typer.Option("--compile", help="torch.compile the UNet: slower start, maybe "
                                               "faster batches (docs/performance.md).")] = False,
    sign: Annotated[bool | None, typer.Option("--sign/--no-sign", help="Sign every image with C2PA content "
                                              "credentials (certificate and key from the shot list's "
                                              "provenance.c2pa or IDCLI_C2PA_CERT / IDCLI_C2PA_KEY; "
                                              "docs/provenance.md) [default: sign when either names them].",
                                              show_default=False)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
    as_json: JsonOpt = False,
    no_qa: NoQaOpt = False,
    qa_low_identity: QaLowIdentityOpt = None,
    qa_leakage: QaLeakageOpt = None,
    retake_flagged: Annotated[bool, typer.Option("--retake-flagged", help="Add takes (new deterministic seeds) to "
                                                 "shots whose every take identity QA flagged, up to --max-takes; "
                                                 "see docs/review.md.")] = False,
    max_takes: Annotated[int, typer.Option("--max-takes", help="With --retake-flagged: most takes a shot may "
                                           "reach.")] = 6,
    executor: ExecutorOpt = "local",
    ray_address: RayAddressOpt = None,
    workers: WorkersOpt = None,
) -> None:
    """Render a shot list. Done jobs are skipped (resume is the default); exit 0, 1 (some failed), 2, 130."""
    from .console import make_progress
    from .run import render as run_render
    from .run import terminate_as_interrupt
    from .shotlist import load_shotlist

    def body() -> None:
        size = _parse_batch_size(batch_size)
        loaded = load_shotlist(file)
        folder = _default_out(loaded, out)
        progress = make_progress(quiet or dry_run)
        options: dict[str, Any] = dict(
            preset=preset, device=device, batch_size=size, force=force, only=only, dry_run=dry_run, wait=wait,
            face_models=face_models, save_masks=save_masks, compile=compile_unet, sign=sign, progress=progress,
            qa=not no_qa, qa_thresholds=_qa_thresholds(qa_low_identity, qa_leakage),
            executor=executor, ray_address=ray_address, workers=workers)
        with terminate_as_interrupt():  # no handler of ours outlives the run
            if retake_flagged:
                from .review.retake import render_with_retakes

                report = render_with_retakes(loaded, folder, max_takes=max_takes, **options)
            else:
                report = run_render(loaded, folder, **options)
        summary = report.as_dict()
        counts = summary["counts"]
        if as_json:
            _emit_json(summary)
        elif not quiet:
            tail = f" in {report.seconds:.1f}s" if report.rendered else ""
            if dry_run:
                _emit(f"dry run: {counts['pending']} to render, {counts['skipped']} done → {folder}")
            else:
                _emit(f"{report.rendered} rendered, {counts['skipped']} skipped, {counts['recovered']} recovered, "
                      f"{report.failed} failed{tail} → {folder}")
            if report.model.get("random_weights"):
                print("note: preset with RANDOM weights — images are noise, for trying idcli out, not for review",
                      file=sys.stderr)
            kept = [o for o in report.jobs if o.status == "kept"]
            for line in folder_notes({**summary, "problems": [], "jobs": [
                    {"shot_id": o.shot_id, "take": o.take, "state": o.state} for o in kept]}, folder):
                print(line, file=sys.stderr)
        if not as_json:  # errors, even with --quiet
            blocked = [{"shot_id": o.shot_id, "take": o.take, "state": o.state} for o in report.jobs
                       if o.state == "blocked"]
            for line in folder_notes({"problems": summary["problems"], "jobs": blocked}, folder):
                print(f"idcli: {line}", file=sys.stderr)
        if report.error:
            print(f"idcli: error: {report.error}", file=sys.stderr)
        if report.exit_code != EXIT_OK:
            raise typer.Exit(report.exit_code)

    _guarded(body, as_json)


@app.command()
def bench(
    arch: Annotated[str, typer.Option("--arch", help="sd15 or sdxl (the published architectures with random "
                                      "weights), tiny-sd or tiny-sdxl [default: sd15 on a GPU, tiny-sd on a CPU].",
                                      show_default=False)] = "auto",
    jobs: Annotated[int, typer.Option("--jobs", "-n", help="Jobs (images) in the timed run.")] = 64,
    steps: Annotated[int | None, typer.Option("--steps", help="Denoising steps [default: the preset's: sd15 25, "
                                              "sdxl 30, tiny 12].", show_default=False)] = None,
    size: Annotated[str | None, typer.Option("--size", help="WIDTHxHEIGHT [default: the preset's: sd15 512x512, "
                                             "sdxl 1024x1024, tiny 256x256].", show_default=False)] = None,
    method: Annotated[str, typer.Option("--method", help="Identity method: single or dual-line.")] = "single",
    batch_size: Annotated[str, typer.Option("--batch-size", "-b", help="Images per batch, or 'auto'.")] = "auto",
    device: DeviceOpt = "auto",
    baseline: Annotated[bool, typer.Option("--baseline/--no-baseline", help="Also time the naive baseline: one stock "
                                           "diffusers pipeline call per job at batch 1.")] = True,
    compile_unet: Annotated[bool, typer.Option("--compile", help="torch.compile idcli's UNet, as render --compile "
                                               "(the baseline stays uncompiled).")] = False,
    no_qa: NoQaOpt = False,
    keep: Annotated[Path | None, typer.Option("--keep", help="Keep the shot list and images in this new folder "
                                              "[default: a temporary folder, removed].", show_default=False)] = None,
    repeats: Annotated[int, typer.Option("--repeats", help="Time idcli and the baseline this many times, "
                                         "alternately (A B A B ...); report medians and the ratio's spread.",
                                         min=1)] = 1,
    as_json: JsonOpt = False,
) -> None:
    """Measure throughput through the render path on real-size random-weight models, against a naive baseline."""
    from .bench import format_report, parse_size, run_bench

    def body() -> None:
        shape = parse_size(size) if size is not None else None
        size_batch = _parse_batch_size(batch_size)
        chosen = arch
        if chosen == "auto":
            from .runtime import resolve_runtime

            chosen = "sd15" if resolve_runtime(device).device.startswith("cuda") else "tiny-sd"
        # The command as an equivalent, explicit line (recorded with the figures).
        line = ["idcli", "bench", "--arch", chosen, "--jobs", str(jobs), *(["--steps", str(steps)] if steps else []),
                *(["--size", size] if size else []), "--method", method, "--batch-size", batch_size,
                "--device", device, *([] if baseline else ["--no-baseline"]), *(["--compile"] if compile_unet else []),
                *(["--keep", str(keep)] if keep else []), *(["--no-qa"] if no_qa else []),
                *(["--repeats", str(repeats)] if repeats > 1 else []), *(["--json"] if as_json else [])]
        result = run_bench(chosen, jobs=jobs, steps=steps, size=shape, method=method, batch_size=size_batch,
                           device=device, baseline=baseline, compile=compile_unet, keep=keep, repeats=repeats,
                           command=shlex.join(line),
                           on_note=lambda text: print(f"idcli bench: {text}", file=sys.stderr), qa=not no_qa)
        if as_json:
            _emit_json(_ok(**result.as_dict()))
        else:
            _emit(format_report(result))

    _guarded(body, as_json)


@app.command()
def restore(
    out_dir: Annotated[Path, typer.Argument(help="Output folder.", show_default=False)],
    take: Annotated[str, typer.Argument(help="The take to restore, as SHOT_tN (its file name without .png).",
                                        show_default=False)],
    key: Annotated[str | None, typer.Option("--key", help="Which kept version: a prefix of its job key (idcli "
                                            "plan lists them) [default: the most recently replaced].")] = None,
    list_only: Annotated[bool, typer.Option("--list", help="List the kept versions of the take; change "
                                            "nothing.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for a run on the same folder to end.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Put back an earlier render of a take that a newer render replaced (kept in OUT/.idcli/superseded).

    The take now at OUT/SHOT/SHOT_tN.png moves aside in its place, so a restore is undone by restoring again.
    """
    from .superseded import list_superseded
    from .superseded import restore as restore_take

    def body() -> None:
        if list_only:
            versions = [v.as_dict(out_dir) for v in list_superseded(out_dir, take)]
            if as_json:
                _emit_json(_ok(out_dir=str(out_dir.absolute()), versions=versions))
                return
            for v in versions:
                _emit(f"{v['name']}  superseded {v['superseded_at']}  key {v['job_key'] or '?'}")
            if not versions:
                _emit(f"no earlier render of {take} is kept in {out_dir}")
            return
        result = restore_take(out_dir, take, key, wait=wait)
        if as_json:
            _emit_json(_ok(out_dir=str(out_dir.absolute()), **result))
            return
        aside = f"; the take it replaced is kept as {result['moved_aside']}" if result["moved_aside"] else ""
        _emit(f"restored {result['image']['path']} from {result['name']}{aside}")

    _guarded(body, as_json)


# -- provenance: reproduce and verify (docs/provenance.md) ---------------------------------------------------

@app.command()
def reproduce(
    target: Annotated[Path, typer.Argument(help="A committed image (PNG) or its sidecar (JSON).",
                                           show_default=False)],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the re-rendered image into this folder.")]
    = None,
    device: DeviceOpt = "auto",
    face_models: FaceModelsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-render one image from its record alone; exit 0 when identical, 6 when not, 2 when an input is
    missing or changed (named) or the engine version is no longer supported."""
    from .reproduce import reproduce as run_reproduce

    def body() -> None:
        report = run_reproduce(target, out_dir=out, device=device, face_models=face_models)
        if as_json:
            _emit_json(report.as_dict())
        else:
            lines = [f"{report.image}: {report.status}"]
            if not report.identical:
                lines.append(f"  sha256 recorded {report.recorded_sha256}, now {report.sha256}")
                if report.max_pixel_difference is not None:
                    lines.append(f"  largest pixel difference {report.max_pixel_difference}/255 over "
                                 f"{report.differing_pixels} pixels")
                lines += [f"  {item['name']}: recorded {item['recorded']}, now {item['now']}"
                          for item in report.environment]
            lines += [f"  note: {note}" for note in report.notes]
            if report.output:
                lines.append(f"  written to {report.output}")
            _emit("\n".join(lines))
        if report.exit_code != EXIT_OK:
            raise typer.Exit(report.exit_code)

    _guarded(body, as_json)


@app.command()
def verify(
    out: Annotated[Path, typer.Argument(help="An output folder of idcli render.", show_default=False)],
    trust: Annotated[Path | None, typer.Option("--trust", help="PEM root certificate(s) to trust for C2PA "
                                               "signatures (a studio's own CA).", show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check every image against its sidecar and, for signed ones, its C2PA credentials; exit 0, or 6 when
    an image fails."""
    from .verify import verify_folder

    def body() -> None:
        report = verify_folder(out, trust)
        summary = report.as_dict()
        if as_json:
            _emit_json(summary)
        else:
            lines = []
            for check in report.images:
                state = (check.c2pa or {}).get("state")
                lines.append(f"{'ok' if check.ok else 'FAILED':6} {check.image['path']}"
                             + (f"  (C2PA {state})" if state else ""))
                lines += [f"       {problem}" for problem in check.problems]
            counts = summary["counts"]
            lines.append(f"{counts['checked']} images checked, {counts['signed']} signed, {counts['failed']} failed")
            _emit("\n".join(lines))
        if report.exit_code != EXIT_OK:
            raise typer.Exit(report.exit_code)

    _guarded(body, as_json)


identity_app = typer.Typer(help="Inspect identity packs.", no_args_is_help=True, add_completion=False,
                           rich_markup_mode=None)
app.add_typer(identity_app, name="identity")


@app.command("encode-identity")
def encode_identity(
    selfies: Annotated[list[Path], typer.Argument(help="One or more selfies of the same person.", show_default=False)],
    name: Annotated[str, typer.Option("--name", help="Character name.", show_default=False)],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Pack file [default: NAME.idpack].")] = None,
    face_models: FaceModelsOpt = None,
    face: Annotated[int | None, typer.Option("--face", help="Which face when a selfie shows several "
                                                            "(0 = largest; the output lists them).")] = None,
    # FaceID-Plus v2 (issue 17): the pack also carries the CLIP features its renders read (docs/identity.md).
    variant: Annotated[str, typer.Option(
        "--variant", help="faceid (the ArcFace embedding only) or faceid-plusv2: also store the CLIP face "
        "features of the kept crops for --preset's image encoder, so that renders of the pack need neither the "
        "selfies nor the encoder.")] = "faceid",
    plus_presets: Annotated[list[str] | None, typer.Option(
        "--preset", help="With --variant faceid-plusv2: the preset the pack will render with (its image encoder, "
        "as model.adapter resolves it). Repeatable.", show_default=False)] = None,
    image_encoder: Annotated[str | None, typer.Option(
        "--image-encoder", help="With --variant faceid-plusv2: the image encoder the shot list names in "
        "model.adapter.image_encoder (hub id or local folder) [default: the preset's].", show_default=False)]
    = None,
    image_encoder_subfolder: Annotated[str, typer.Option(
        "--image-encoder-subfolder", help="model.adapter.image_encoder_subfolder, with --image-encoder.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Encode selfies into an identity pack (detection, quality gate, alignment, ArcFace, aggregation)."""
    from .identity.build import build_identity
    from .identity.faces import resolve_face_models
    from .identity.resolve import shared_analyzer
    from .shotlist import check_safe_id

    def body() -> None:
        try:
            check_safe_id(name, "--name")
        except ValueError as exc:
            raise InputError(str(exc)) from None
        out = output or Path(f"{name}.idpack")
        clip_adapters = _pack_clip_adapters(variant, plus_presets or [], image_encoder, image_encoder_subfolder)
        models = resolve_face_models(face_models)
        analyzer = shared_analyzer(models)

        def report(item: Any) -> None:
            if as_json:
                return
            print(f"  {item.path}: face {item.quality.face_px:.0f} px, score {item.quality.det_score:.2f}, "
                  f"sharpness {item.quality.sharpness:.0f}, yaw {item.quality.yaw:+.0f}°", file=sys.stderr)
            if len(item.faces) > 1:
                for found in item.faces:
                    mark = "→" if found["index"] == item.face_index else " "
                    print(f"    {mark} face {found['index']}: box {found['bbox']} score {found['score']}",
                          file=sys.stderr)
                print("    (largest first; pick another with --face N)", file=sys.stderr)

        result = build_identity(name, list(selfies), analyzer, out, face_index=face, on_selfie=report,
                                clip_adapters=clip_adapters)
        agg = result.aggregate.record()
        if as_json:
            _emit_json(_ok(**{**result.pack.meta, "pack": str(out), "sha256": result.pack.sha256,
                              "embedding_sha256": result.pack.embedding_sha256}))
            return
        for item in agg["rejected"]:
            print(f"  rejected {item['path']}: {item['reason']}", file=sys.stderr)
        sims = f"mean cosine {agg['mean_cosine']}, min {agg['min_cosine']}" if agg["mean_cosine"] is not None else \
            "one selfie"
        _emit(f"{out}: identity '{name}' from {len(agg['kept'])} of {len(selfies)} selfies ({sims})")
        for entry in result.pack.meta.get("clip_features", []):
            print(f"  CLIP features {entry['shape']} for image encoder {json.dumps(entry['image_encoder'])}",
                  file=sys.stderr)
        if models.synthetic:
            print("note: synthetic random-weight face models — the identity is for testing only", file=sys.stderr)

    _guarded(body, as_json)


def _pack_clip_adapters(variant: str, presets: list[str], image_encoder: str | None, subfolder: str) -> list[Any]:
    """encode-identity's --variant/--preset/--image-encoder as the FaceID-Plus v2 adapters to store features for."""
    from .adapters import FACEID, PLUSV2
    from .identity.clip_features import plus_adapter_for
    from .presets import PRESETS

    if variant not in (FACEID, PLUSV2):
        raise InputError(f"--variant '{variant}': allowed are {FACEID}, {PLUSV2}")
    if variant == FACEID:
        if presets or image_encoder:
            raise InputError(f"--preset and --image-encoder choose the CLIP features of --variant {PLUSV2}; "
                             f"add --variant {PLUSV2}, or leave them out for a FaceID pack")
        return []
    if not presets:
        raise InputError(f"--variant {PLUSV2} needs --preset (the preset the pack will render with, e.g. "
                         f"--preset sd15): its image encoder is what the features are computed with")
    unknown = [p for p in presets if p not in PRESETS]
    if unknown:
        raise InputError(f"--preset {', '.join(unknown)}: allowed are {', '.join(PRESETS)}")
    return [plus_adapter_for(p, image_encoder, subfolder) for p in presets]


@identity_app.command("show")
def identity_show(
    pack: Annotated[Path, typer.Argument(help="Identity pack file.", show_default=False)],
    contact_sheet: Annotated[Path | None, typer.Option("--contact-sheet", help="Write a PNG of the aligned crops.")]
    = None,
    as_json: JsonOpt = False,
) -> None:
    """Summarise an identity pack; optionally write a contact sheet of its aligned face crops."""
    from .identity.build import contact_sheet as write_sheet
    from .identity.pack import read_pack

    def body() -> None:
        data = read_pack(pack)
        if contact_sheet is not None:
            write_sheet(data, contact_sheet)
        meta = data.meta
        if as_json:
            _emit_json(_ok(**{**meta, "pack": str(pack), "sha256": data.sha256}))
            return
        agg = meta.get("aggregation", {})
        print(f"identity '{data.name}'  (pack schema {meta.get('schema')}, {meta.get('tool', {}).get('version')}, "
              f"created {meta.get('created')})")
        print(f"  pack sha256       {data.sha256}")
        print(f"  embedding sha256  {data.embedding_sha256}")
        models = meta.get("face_models", {})
        kind = "SYNTHETIC random weights" if models.get("synthetic") else str(models.get("hash", ""))[:30]
        print(f"  face models       {models.get('folder')} ({kind})")
        print(f"  aggregation       {agg.get('method')}: mean cosine {agg.get('mean_cosine')}, "
              f"min {agg.get('min_cosine')}, threshold {agg.get('threshold')}")
        for i, selfie in enumerate(meta.get("selfies", [])):
            q = selfie.get("quality", {})
            state = "used" if selfie.get("used") else "REJECTED"
            print(f"  [{i}] {selfie.get('file')}: {state}, face {q.get('face_px', 0):.0f} px, score "
                  f"{q.get('det_score', 0):.2f}, weight {q.get('weight', 0):.3f}, "
                  f"sha256 {str(selfie.get('sha256', ''))[:12]}")
        from .identity.clip_features import pack_clip_entries

        for entry in pack_clip_entries(meta):  # FaceID-Plus v2 features (encode-identity --variant faceid-plusv2)
            encoder = json.dumps(entry.get("image_encoder"))
            print(f"  CLIP features     {entry.get('shape')} for image encoder {encoder}")
        if contact_sheet is not None:
            print(f"  contact sheet     {contact_sheet}")

    _guarded(body, as_json)


# -- models (issue 17): what real presets need, and fetching it ------------------------------------------

models_app = typer.Typer(help="List and fetch the weights real presets need (through huggingface_hub).",
                         no_args_is_help=True, add_completion=False, rich_markup_mode=None)
app.add_typer(models_app, name="models")


def _size(value: int | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1e9:.2f} GB" if value >= 1e8 else f"{value / 1e6:.1f} MB"


ModelsDirOpt = Annotated[list[Path] | None, typer.Option(
    "--models-dir", help="Also list what this folder (and two levels below it) holds: diffusers pipelines, "
    "IP-Adapter files, CLIP image encoders, insightface packs. Repeatable.", show_default=False, metavar="DIR")]
ModelsShotlistOpt = Annotated[Path | None, typer.Option(
    "--shotlist", help="Also list the model and adapter this shot list renders with (local folders or hub ids).",
    show_default=False, metavar="FILE")]
AcceptFaceLicenceOpt = Annotated[bool, typer.Option(
    "--accept-insightface-license", help="Also fetch the insightface buffalo_l face-model pack into the folder "
    "idcli reads (--face-models, else $IDCLI_FACE_MODELS, else ~/.insightface/models/buffalo_l). Its "
    "pretrained models are licensed for non-commercial research only: this flag says your use is allowed.")]
FetchFaceModelsOpt = Annotated[str | None, typer.Option(
    "--face-models", help="Where --accept-insightface-license puts the face-model pack [default: "
    "$IDCLI_FACE_MODELS, else ~/.insightface/models/buffalo_l, where real presets read it].", show_default=False,
    metavar="DIR")]
FacePackShaOpt = Annotated[str | None, typer.Option(
    "--face-pack-sha256", help="Refuse the downloaded face-model zip unless it has this sha256 (insightface "
    "publishes none; idcli records the one it got in the pack's idcli-fetch.json).", show_default=False,
    metavar="HEX")]


def _need_line(need: dict[str, Any]) -> str:
    what = need["repo_id"] + (f" / {need['filename']}" if need["filename"] else "") + (
        f" / {need['subfolder']}" if need.get("subfolder") else "")
    state = "present" if need["present"] else "missing"
    return f"  {need['role']:<22} {what}: {state}, {_size(need['size_bytes'])}; licence: {need['licence']}"


@models_app.command("list")
def models_list(models_dir: ModelsDirOpt = None, shotlist: ModelsShotlistOpt = None,
                face_models: FaceModelsOpt = None, as_json: JsonOpt = False) -> None:
    """What each real preset and adapter variant needs, whether it is in the Hugging Face cache, sizes, licences;
    the face models; and what given folders hold (--models-dir, --shotlist)."""
    from .face_pack import pack_status
    from .model_folders import given_folders
    from .model_setup import list_models

    def body() -> None:
        rows = list_models(face_models=face_models)
        faces = pack_status(face_models)
        given = given_folders(models_dir, shotlist)
        if as_json:
            _emit_json(_ok(presets=[{k: v for k, v in r.items() if k != "face_models"} for r in rows],
                           face_models=faces, given=given))
            return
        for row in rows:
            _emit(f"{row['preset']} ({row['variant']}): {'ready' if row['ready'] else 'missing files'}")
            for need in row["needs"]:
                _emit(_need_line(need))
        _emit(f"face models ({faces['pack']}, {faces['chosen_by']}): {faces['folder']}: "
              f"{'present' if faces['present'] else 'missing'}, {_size(faces['size_bytes'])}; licence: "
              f"{faces['licence']}" + ("" if faces["present"] else f"\n  to fetch: {faces['fetch']}"))
        if given or models_dir or shotlist:
            _emit("given folders:" + ("" if given else " nothing recognised"))
        for item in given:
            where = item["path"] or item["repo_id"]
            state = "present" if item["present"] else "missing"
            detail = f" ({item['detail']})" if item["detail"] else ""
            _emit(f"  {item['kind']}: {where}{detail}: {state}, {_size(item['size_bytes'])}; licence: "
                  f"{item['licence']}  [{item['source']}]")

    _guarded(body, as_json)


@models_app.command("fetch")
def models_fetch(
    preset: Annotated[str, typer.Argument(help="A real preset (sd15, sdxl).", show_default=False)],
    variant: Annotated[str, typer.Option("--variant", help="Identity adapter variant: faceid-plusv2 (what real "
                                         "presets render with; adds the CLIP ViT-H image encoder) or faceid.")
                       ] = "faceid-plusv2",
    accept_insightface_license: AcceptFaceLicenceOpt = False,
    face_models: FetchFaceModelsOpt = None,
    face_pack_sha256: FacePackShaOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Download a preset's base model and adapter into the Hugging Face cache (a pickled adapter is converted
    once to safetensors); with --accept-insightface-license also the buffalo_l face-model pack."""
    from .model_setup import fetch

    def body() -> None:
        result = fetch(preset, variant, progress=not as_json, accept_insightface_licence=accept_insightface_license,
                       face_models=face_models, face_pack_sha256=face_pack_sha256)
        if as_json:
            _emit_json(_ok(**result))
            return
        for item in result["fetched"]:
            _emit(f"{item['role']}: {item['repo_id']} -> {item['path']}")
            if "converted" in item:
                conv = item["converted"]
                _emit(f"  converted to safetensors (weights-only load): {conv['path']}\n"
                      f"  source sha256 {conv['source_sha256']}\n  file sha256   {conv['sha256']}")
        faces = result["face_models"]
        if faces["state"] == "licence not accepted":
            print(f"note: {faces['message']}", file=sys.stderr)
        else:
            _emit(f"face models ({faces['pack']}): {faces['state']} in {faces['folder']}"
                  + (f"\n  zip sha256 {faces['zip_sha256']}" if faces.get("zip_sha256") else "")
                  + (f"\n  skipped (not .onnx): {', '.join(faces['skipped'])}" if faces.get("skipped") else ""))
            print(f"note: licence: {faces['licence']}", file=sys.stderr)

    _guarded(body, as_json)


# -- review: identity QA, storyboard page, selects, OTIO animatic, evaluation (docs/review.md) ----------

OutArg = Annotated[Path, typer.Argument(help="A render's output folder.", show_default=False)]
ShotsOpt = Annotated[Path | None, typer.Option("--shots", help="Take shot order and durations from this shot list "
                                               "[default: the snapshot the last render wrote in OUT/.idcli].",
                                               show_default=False)]


def _finish_review(problems: list[str], document: dict[str, Any] | None = None) -> None:
    """End a review command: damaged sidecars and unreadable images each named on stderr, then exit 2
    (everything else was used); with ``document`` (``--json``) one contract document on stdout."""
    for problem in problems:
        print(f"idcli: skipped {problem}", file=sys.stderr)
    message = f"{len(problems)} problem(s) skipped; everything else was used" if problems else ""
    if document is not None:
        if problems:
            error = {**_error_object("InputError", message), "problems": [
                {"file": p.split(": ", 1)[0], "line": None, "column": None, "field": None,
                 "message": p.split(": ", 1)[-1], "hint": None} for p in problems]}
            _emit_json({**_failure(error, EXIT_INVALID_INPUT), **document})
        else:
            _emit_json(_ok(**document))
    if problems:
        print(f"idcli: {message}", file=sys.stderr)
        raise typer.Exit(EXIT_INVALID_INPUT)


@app.command()
def qa(
    out: OutArg,
    face_models: FaceModelsOpt = None,
    qa_low_identity: QaLowIdentityOpt = None,
    qa_leakage: QaLeakageOpt = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for a run writing the folder to end.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Recompute identity QA for every committed image in OUT; rewrites each sidecar's qa atomically."""
    from .review.recheck import recheck

    def body() -> None:
        result = recheck(out, face_models=face_models, thresholds=_qa_thresholds(qa_low_identity, qa_leakage),
                         wait=wait)
        if not as_json:
            flags = ", ".join(f"{k} {v}" for k, v in sorted(result.flags.items())) or "none"
            _emit(f"{result.checked} images checked, {result.flagged} flagged ({flags}), "
                  f"{result.without_cast} without a cast → {out}")
        _finish_review(result.problems, {
            "out_dir": str(Path(out).absolute()), "checked": result.checked, "flagged": result.flagged,
            "flags": result.flags, "without_cast": result.without_cast} if as_json else None)

    _guarded(body, as_json)


@app.command()
def review(
    out: OutArg,
    shots: ShotsOpt = None,
    open_page: Annotated[bool, typer.Option("--open", help="Open the page in the default browser.")] = False,
) -> None:
    """Write the storyboard page OUT/review/index.html (thumbnails, QA badges, selects) and contact-sheet.png."""
    from .review.page import write_review
    from .review.runs import load_run

    def body() -> None:
        result = write_review(load_run(out, shots))
        _emit(f"{result.index}: {result.shots} shots, {result.takes} takes ({result.thumbnails_made} new "
              f"thumbnails); contact sheet {result.contact_sheet}")
        if open_page:
            import webbrowser

            webbrowser.open(result.index.resolve().as_uri())
        _finish_review(result.problems)

    _guarded(body)


@app.command()
def select(
    out: OutArg,
    picks: Annotated[list[str], typer.Argument(help="SHOT=TAKE (e.g. sc01_sh010=2; SHOT=none clears).",
                                               show_default=False)],
) -> None:
    """Record the director's pick per shot in OUT/selects.json (checked against the committed takes)."""
    from .review.selects import select as record_picks

    def body() -> None:
        current = record_picks(out, picks)
        _emit(f"{Path(out) / 'selects.json'}: " + (", ".join(f"{shot}=t{pick['take']}" for shot, pick in
                                                           current.items()) or "no picks"))

    _guarded(body)


@app.command()
def export(
    out: OutArg,
    otio_file: Annotated[Path, typer.Option("--otio", help="The OpenTimelineIO file to write (.otio).",
                                            show_default=False)],
    fps: Annotated[float, typer.Option("--fps", help="Frame rate of the timeline.")] = 24.0,
    shots: ShotsOpt = None,
) -> None:
    """Write an OTIO animatic: one clip per shot in shot-list order, the selected take, the shot's duration."""
    from .review.export import export_otio
    from .review.runs import load_run

    def body() -> None:
        result = export_otio(load_run(out, shots), otio_file, fps)
        gaps = f", {len(result.gaps)} gap(s) for shots not rendered ({', '.join(result.gaps)})" if result.gaps else ""
        _emit(f"{result.path}: {result.clips} clips, {result.frames} frames at {fps:g} fps{gaps}")
        _finish_review(result.problems)

    _guarded(body)


@app.command()
def evaluate(
    outs: Annotated[list[Path], typer.Argument(help="One or more output folders, shown side by side.",
                                               show_default=False)],
    shots: ShotsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Identity figures per run from the QA in its sidecars: cosines per character, flags, face area, leakage."""
    from .review.evaluate import evaluate as summarise_runs
    from .review.evaluate import table_rows

    def body() -> None:
        summaries = summarise_runs(outs, shots)
        if not as_json:
            from rich.console import Console
            from rich.markup import escape
            from rich.table import Table

            table = Table(title="identity QA by run")
            table.add_column("")
            for s in summaries:
                table.add_column(escape(s.folder), justify="right")
            for metric, cells in table_rows(summaries):
                table.add_row(escape(metric), *cells)
            Console(width=None if sys.stdout.isatty() else 160).print(table)
        _finish_review([p for s in summaries for p in s.problems],
                       {"runs": [s.as_dict() for s in summaries]} if as_json else None)

    _guarded(body, as_json)


def _qa_thresholds(low_identity: float | None, leakage: float | None) -> Any:
    from .review.qa import LEAKAGE, LOW_IDENTITY, QAThresholds

    return QAThresholds(LOW_IDENTITY if low_identity is None else low_identity,
                        LEAKAGE if leakage is None else leakage)


def main() -> None:
    """Console-script entry point.

    Click's own errors (an unknown option, a missing argument) are handled here rather than by Click, so
    that a ``--json`` command line gets its JSON document for those too, and so that a closed stdout pipe
    never turns a finished run into exit 1 (Click maps EPIPE to 1).
    """
    wants_json = "--json" in sys.argv[1:]
    try:
        code = app(standalone_mode=False)
    except typer.TyperException as exc:  # Typer's (vendored) ClickException: usage errors
        code = getattr(exc, "exit_code", EXIT_INVALID_INPUT)
        if wants_json:
            message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
            _emit_json(_failure(_error_object("UsageError", message), code))
        if hasattr(exc, "show"):
            exc.show()
        else:
            print(f"idcli: error: {exc}", file=sys.stderr)
    except (typer.Abort, KeyboardInterrupt):
        print("idcli: interrupted", file=sys.stderr)
        code = EXIT_INTERRUPTED
    except BrokenPipeError:
        _stdout_gone()
        code = EXIT_OK
    sys.exit(code if isinstance(code, int) else EXIT_OK)


__all__ = ["EXIT_INVALID_INPUT", "app", "main"]
