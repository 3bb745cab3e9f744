"""The commands over a shot list: validate, schema, expressions, plan and render.

Owns those commands, what they print about the output folder beyond the jobs (``folder_notes``: unusable
characters, hand-edited images kept, orphans, superseded renders, another project's renders), and the cells and
lines of ``plan``'s table.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ..count_words import counted
from ..diagnostics import diagnostic, styled
from ..errors import EXIT_OK, ExecutorUnavailableError, Interrupted
from ..option_words import Option, words
from ..shell_words import shell_path
from .options import (
    DeviceOpt,
    ExecutorOpt,
    FaceModelsOpt,
    JsonOpt,
    NoQaOpt,
    OutOpt,
    PresetOpt,
    QaLeakageOpt,
    QaLowIdentityOpt,
    RayAddressOpt,
    ShotListArg,
    WorkersOpt,
    app,
    parse_batch_size,
    qa_thresholds,
)
from .output import emit, emit_json, fail, guarded, ok, print_note, print_warning, stdout_console
from .table_fit import columns_that_fit, left_out_note


def folder_notes(document: dict[str, Any], folder: Path) -> list[str]:
    """What a person should know about the output folder beyond the jobs: characters that cannot be used,
    edited images kept, orphans, superseded renders, another project's renders (plan and render)."""
    notes = []
    for problem in document.get("problems") or []:
        # A blocked take's reason is its character's problem, so each problem lists only the takes it fails.
        blocked = [f"{j['shot_id']}_t{j['take']}" for j in document.get("jobs", [])
                   if j.get("state") == "blocked" and problem["message"] in (j.get("reason") or "")]
        where = ":".join(str(x) for x in (problem["file"], problem["line"], problem["column"]) if x is not None)
        if not blocked:  # only other shots name the character (render --only): worth knowing, fails nothing
            notes.append(f"note: {where}: {problem['message']} (no take of this run names it)")
            continue
        notes.append(f"error: {where}: {problem['message']} — these takes fail, the rest render: "
                     f"{', '.join(blocked[:10])}{' ...' if len(blocked) > 10 else ''}")
    # A stale take plan's render puts back (restores) or makes of an image already there (reuses) renders nothing:
    # said apart, as render says them, so "render again" counts what the render will render.
    stale = {f"{j['shot_id']}_t{j['take']}": j.get("reason") or "" for j in document.get("jobs", [])
             if j.get("state") == "stale" and not j.get("restores") and not j.get("reuses")}
    restoring = [f"{j['shot_id']}_t{j['take']}" for j in document.get("jobs", []) if j.get("restores")]
    if restoring:
        notes.append(f"note: {len(restoring)} take(s) put back from .idcli/superseded (their shot edited back), not "
                     f"rendered again: {', '.join(restoring[:10])}{' ...' if len(restoring) > 10 else ''}")
    causes = {f"{j['shot_id']}_t{j['take']}": j["cause"] for j in document.get("jobs", []) if j.get("cause")}
    notes += [f"note: {line}" for line in rerender_notes(stale, "render again", causes,
                                                         _takes_per_shot(document.get("jobs", [])), folder)]
    modified = [f"{j['shot_id']}_t{j['take']}" for j in document.get("jobs", []) if j.get("state") == "modified"]
    if modified:
        notes.append(words((f"note: {len(modified)} image(s) edited by hand since they were rendered are kept, not "
                            f"rendered again: {', '.join(modified[:10])}{' ...' if len(modified) > 10 else ''} (",
                            Option("force", True), " renders them, moving the edited ones to .idcli/superseded)")))
    orphans = document.get("orphans") or []
    if orphans:
        names = [f"{o['shot_id']}_t{o['take']}" for o in orphans]
        notes.append(f"note: {len(orphans)} image(s) of shots or takes no longer in the shot list are kept in "
                     f"{folder}: {', '.join(names[:10])}{' ...' if len(names) > 10 else ''} (shots renamed or "
                     "removed, or takes beyond a shot's takes: put them back to use them; one shot list per output "
                     "folder: another shot list's renders here are counted as orphans; give each its own --out)")
    superseded = document.get("superseded") or []
    kept_there = folder / ".idcli" / "superseded"
    # plan's `superseded` is every render the folder keeps; render's, those this run moved there (its
    # `superseded_total` counts the folder's): said apart, for `restore --list` lists the folder's.
    if superseded and "superseded_total" in document:
        notes.append(f"note: {len(superseded)} earlier render(s) moved to {kept_there} by this run, "
                     f"{document['superseded_total']} kept there in all (idcli restore "
                     f"{restore_folder(folder)} --list lists them, idcli restore {restore_folder(folder)} SHOT_tN "
                     "puts one back)")
    elif superseded:
        notes.append(f"note: {len(superseded)} earlier render(s) kept in {kept_there} "
                     f"(idcli restore {restore_folder(folder)} --list lists them, idcli restore "
                     f"{restore_folder(folder)} SHOT_tN puts one back)")
    if document.get("other_project"):
        from ..folder_projects import other_project_note

        # plan's document has no `dry_run`: it warns before the render; a render's says so only when forced
        went = None if "dry_run" not in document else ("the render goes into it anyway" if document["dry_run"]
                                                       else "rendered into it anyway")
        notes.append(other_project_note(folder, document["other_project"], document.get("project") or "", went))
    return notes


def _takes_per_shot(jobs: list[Any]) -> dict[str, int]:
    """shot id -> how many of ``jobs`` (dicts or JobOutcomes) are its takes."""
    counts: dict[str, int] = {}
    for job in jobs:
        shot = job["shot_id"] if isinstance(job, dict) else job.shot_id
        counts[shot] = counts.get(shot, 0) + 1
    return counts


def restore_folder(folder: Path | None) -> str:
    """The output folder as a `restore` command line the notes suggest needs it: quoted for the shell, so the
    artist can paste it (``OUT`` where no folder is known)."""
    return "OUT" if folder is None else shell_path(folder)


def rerender_notes(stale: dict[str, str], done: str, causes: dict[str, str] | None = None,
                   shot_takes: dict[str, int] | None = None, folder: Path | None = None) -> list[str]:
    """Why takes already rendered are rendered again (``stale``: SHOT_tN -> the state's reason), naming them, one
    line per reason: the artist who edited the shot list sees which edits cost renders and that nothing rendered
    before is lost; a take whose image went missing or was damaged is not blamed on an edit.

    ``causes`` (SHOT_tN -> what changed, idcli/stale_causes.py) names, for the edited takes whose sidecars can say,
    the cause per shot under one line; ``shot_takes`` (shot -> its takes in the plan) lets a shot whose every take
    shares a cause be named once; ``folder``, the output folder the `restore` suggested names."""
    from ..store import EDITED_REASON

    causes = causes or {}
    restore = f"idcli restore {restore_folder(folder)} --list"
    by_reason: dict[str, list[str]] = {}
    for stem, reason in stale.items():
        by_reason.setdefault(reason, []).append(stem)
    lines = []
    for reason, stems in by_reason.items():
        listed = ", ".join(stems[:10]) + (" ..." if len(stems) > 10 else "")
        if reason == EDITED_REASON:
            named = [stem for stem in stems if stem in causes]
            if named:
                lines.append(f"{len(named)} take(s) {done} because what makes them changed; the earlier renders "
                             f"are kept: {restore}")
                lines += _cause_lines(named, causes, shot_takes or {})
            stems = [stem for stem in stems if stem not in causes]  # older sidecars: the general words
            if not stems:
                continue
            listed = ", ".join(stems[:10]) + (" ..." if len(stems) > 10 else "")
            lines.append(f"{len(stems)} take(s) {done} because what makes them changed (the shot's prompt or "
                         f"settings, or a character's selfies or pack): {listed}; the earlier renders are kept: "
                         f"{restore}")
        else:
            lines.append(f"{len(stems)} take(s) {done}: {reason or 'their earlier render was not this job'}: "
                         f"{listed}")
    return lines


# Causes named one line each before the rest are counted (a film edited overnight has thousands of shots).
MAX_CAUSE_LINES = 10


def _cause_lines(stems: list[str], causes: dict[str, str], shot_takes: dict[str, int]) -> list[str]:
    """One indented line per cause, ``sh010, sh020: prompt changed``, in the order the takes came: a shot whose
    every take has the cause is named by its id, else each take (SHOT_tN); ten names a line, then a count."""
    by_shot: dict[tuple[str, str], list[str]] = {}
    for stem in stems:
        by_shot.setdefault((stem.rsplit("_t", 1)[0], causes[stem]), []).append(stem)
    by_cause: dict[str, list[str]] = {}
    for (shot, cause), takes in by_shot.items():
        by_cause.setdefault(cause, []).extend([shot] if len(takes) == shot_takes.get(shot) else takes)
    lines = []
    for cause, names in list(by_cause.items())[:MAX_CAUSE_LINES]:
        more = f" ... and {len(names) - 10} more" if len(names) > 10 else ""
        lines.append(f"  {', '.join(names[:10])}{more}: {cause}")
    rest = list(by_cause)[MAX_CAUSE_LINES:]
    if rest:
        counted = sum(1 for stem in stems if causes[stem] in rest)
        lines.append(f"  ... {counted} more take(s) with {len(rest)} other cause(s): plan --json gives each job's "
                     "cause")
    return lines


def _load_every_problem(file: Path, face_models: str | None) -> Any:
    """The shot list at ``file``; when it has problems, every one of them, the plates of the shots that parsed
    included (``validate``, ``plan`` and ``render`` list the same problems in one run)."""
    from ..errors import ShotListError
    from ..plates import with_plate_problems
    from ..shotlist import load_shotlist

    try:
        return load_shotlist(file)
    except ShotListError as exc:
        raise with_plate_problems(exc, face_models) from None


def _default_out(loaded: Any, out: Path | None) -> Path:
    return out if out is not None else Path("renders") / loaded.shotlist.project


@app.command()
def validate(file: ShotListArg, face_models: FaceModelsOpt = None,
             selfies: Annotated[bool, typer.Option("--selfies", help="Also encode the selfies of every character "
                                                   "the shots name (cached by content) and report one without a "
                                                   "usable face at its line; plan and render always do.")] = False,
             as_json: JsonOpt = False) -> None:
    """Check a shot list; exit 0 when valid, 2 with every problem listed when not.

    Without --selfies no selfie is read (fast, for editors and CI): selfie files must exist. Plates are read and
    their faces found (docs/plates.md). The models are found as plan finds them, reading no weight: a local model
    folder must have the pipeline layout, a hub model must be in the Hugging Face cache under HF_HUB_OFFLINE=1; face
    models a character needs and plan does not find are noted.
    """
    def body() -> None:
        loaded = _load_every_problem(file, face_models)
        doc = loaded.shotlist
        # The models as plan resolves them, reading no weight: a missing folder or an uncached hub model offline.
        from ..errors import ShotListError, in_file_order
        from ..model_checks import model_problems
        from ..plan import take_count

        model_failures, model_notes = model_problems(loaded)
        if model_failures:
            raise ShotListError(loaded.source, model_failures)
        notes_said = [*loaded.notes, *model_notes]
        if not selfies:  # --selfies encodes them, saying that the selfies were not checked when it cannot
            from ..model_checks import face_models_note

            notes_said += [note for note in [face_models_note(loaded, face_models)] if note is not None]
        from ..identity.twins import twin_warnings

        # Characters sharing one face (docs/identity.md): by file here, by bytes and embedding with --selfies.
        if selfies:
            warnings, unchecked = _check_characters(loaded, face_models)
            notes_said += unchecked
        else:
            warnings = twin_warnings(loaded)
        # Plates (issue 12): read, bounded and their faces found at validation; see idcli/plates.py.
        from ..plates import overlap_notes, plate_shots
        from ..small_plate_faces import small_face_notes

        # Boxes too small for QA's face detector, and faces whose masks overlap (at the later face): noted, as plan
        # and render warn of them.
        plates = plate_shots(loaded, face_models, need_faces=False)
        notes_said += small_face_notes(loaded, plates) + overlap_notes(loaded, plates)

        takes = sum(take_count(shot, doc.defaults) for shot in doc.shots)
        # In file order, as an invalid file's problems are: each module checks the whole file in a pass of its own.
        notes_said = in_file_order(notes_said)
        if as_json:
            notes = [{"line": n.line, "column": n.column, "path": n.path, "message": n.message, "hint": n.hint}
                     for n in notes_said]  # several characters under method 'single', ...
            emit_json(ok(file=str(file), project=doc.project, shot_count=len(doc.shots), job_count=takes,
                         characters=sorted(doc.characters), **({"notes": notes} if notes else {}),
                         **({"warnings": warnings} if warnings else {})))
        else:
            emit(f"{file}: valid — project {doc.project}, {counted(len(doc.shots), 'shot')}, {counted(takes, 'job')}, "
                 f"{counted(len(doc.characters), 'character')}")
            for note in notes_said:  # several characters under method 'single', what the render downloads, ...
                emit(diagnostic("note", note.format(loaded.source)))
            for warning in warnings:  # characters sharing one face; --selfies: a group photo's largest face is used
                emit(diagnostic("warning", warning))

    guarded(body, as_json, problems_mean=f"{file} is not valid")  # "nothing was rendered" is news to nobody here


def _check_characters(loaded: Any, face_models: str | None) -> tuple[list[str], list[Any]]:
    """Encode the characters the shots name (cached by content); one problem per unusable character.

    Returns the warnings about usable ones (a group photo as a selfie) and the note at ``characters`` when the
    selfies could not be checked (no face models here); when one is unusable, says the warnings on stderr before
    raising."""
    from ..errors import ModelUnavailableError, Problem, ShotListError
    from ..identity.group_selfies import group_selfie_warnings
    from ..identity.resolve import resolve_identities
    from ..shot_prompts import shot_characters

    names = {name for shot in loaded.shotlist.shots for name in shot_characters(shot)}
    failures: dict[str, Any] = {}
    try:
        identities = resolve_identities(loaded, names, loaded.shotlist.model.preset, face_models, None, failures)
    except ModelUnavailableError as exc:
        # No face models here (a real preset on a machine without insightface's): the document itself
        # is valid; a note says what was not checked, where the note without --selfies stands (and in --json's).
        from ..identity.twins import twin_warnings

        line, column = loaded.position(("characters",))
        return twin_warnings(loaded), [Problem(f"the selfies were not checked: {exc}", "characters", line, column)]
    from ..identity.twins import twin_warnings

    warnings = group_selfie_warnings(loaded, identities) + twin_warnings(loaded, identities)
    if failures:
        # The characters that could be encoded get their warnings now too, before the error: else a group
        # photo is only said in the next run, after the failing selfie was fixed.
        for warning in warnings:
            print_warning(warning)
        raise ShotListError(loaded.source, [failures[name] for name in sorted(failures)])
    return warnings, []


@app.command()
def schema() -> None:
    """Print the shot list's JSON Schema (for editors' YAML completion)."""
    from ..shotlist import json_schema

    guarded(lambda: emit(json.dumps(json_schema(), indent=2)))


@app.command()
def expressions(
    category: Annotated[str | None, typer.Option("--category", "-c", help="Only this category: love, joy, surprise, "
                                                 "anger, sadness or fear.", show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """List the expression vocabulary: 135 terms by category and subgroup, with default intensity and look."""
    from ..expressions import terms_in, vocabulary

    def body() -> None:
        vocab = vocabulary()
        # Validate --category before printing anything, so that a typo is an error and not an empty list.
        terms = list(terms_in(category)) if category is not None else [*vocab.values(), vocab.neutral]
        if as_json:
            emit_json(ok(terms=[t.as_dict() for t in terms]))
            return
        from rich.markup import escape
        from rich.table import Table

        console = stdout_console()
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

    guarded(body, as_json)


@app.command()
def plan(file: ShotListArg, out: OutOpt = None, preset: PresetOpt = None, device: DeviceOpt = "auto",
         face_models: FaceModelsOpt = None, as_json: JsonOpt = False) -> None:
    """Show the jobs a render would run: shot, take, seed, size, state (new / done / recoverable / stale /
    modified / blocked), batch group."""
    from ..plan_document import planned_in_folder
    from ..unfinished import render_request

    def body() -> None:
        loaded = _load_every_problem(file, face_models)
        folder = _default_out(loaded, out)
        # Takes --retake-flagged added in the folder are part of its plan (idcli/added_takes.py).
        the_plan, runtime, document = planned_in_folder(loaded, folder, preset=preset, device=device,
                                                        face_models=face_models)
        if as_json:
            emit_json(ok(**document))
            return
        for warning in the_plan.warnings:
            print_warning(warning)
        from rich.markup import escape
        from rich.table import Table

        rows = document["jobs"]
        table = Table(title=escape(f"{the_plan.project}: {counted(len(rows), 'job')} → {folder}  "
                                   f"({the_plan.model.label}, {runtime.device}/{runtime.dtype})"))
        console = stdout_console()
        # Made text here as the table makes a string cell (markup, emoji; a column does not highlight), once:
        # the table did it when measuring its columns and again when drawing them (film scale, 9,553 rows).
        # Blocked takes have no key, no size: listed below with the character's problem.
        cells = [[console.render_str(cell, highlight=False) for cell in plan_table_cells(row)]
                 for row in rows if row["state"] != "blocked"]
        # On a terminal too narrow for every column, the least needed are left out whole (cli/table_fit.py).
        shown = columns_that_fit(PLAN_COLUMNS, cells, console.width if console.is_terminal else None,
                                 PLAN_COLUMNS_LEFT_OUT_FIRST)
        for column in shown:
            table.add_column(column)
        kept = [PLAN_COLUMNS.index(column) for column in shown]
        for row_cells in cells:
            table.add_row(*(row_cells[i] for i in kept))
        console.print(table)
        if left_out := [column for column in PLAN_COLUMNS if column not in shown]:
            print_note(left_out_note(left_out, console.width, "idcli plan"))
        for line in _plate_lines(rows):  # issue 12: which plate each plate shot uses, and its faces
            emit(line)
        if reused := _reuse_line(rows):
            emit(styled(reused))
        for line in folder_notes(document, folder):
            emit(styled(line))
        emit(plan_summary(document, file, folder, render_request(
            preset=preset, device=device, dtype=None, face_models=face_models, executor="local", ray_address=None,
            workers=None, sign=None)))

    guarded(body, as_json, problems_mean=f"{file} was not planned")


def plan_summary(document: dict[str, Any], file: Path, folder: Path, request: dict[str, Any] | None = None) -> str:
    """The plan's last line: its jobs by state, and the command that renders those not done. A 103-row table ended
    with the last plate's line: how many were done was counted by scrolling (the night-run trial, 2026-12-02).
    ``request``: the plan's own options (--preset, --device, --face-models), which the command repeats."""
    from ..unfinished import finish_command

    counts = document.get("counts") or {}
    states = ", ".join(f"{count} {state}" for state, count in counts.items() if count)
    total = sum(counts.values())
    blocked = counts.get("blocked", 0)  # a render blocks them again until the character's file is fixed
    left = total - counts.get("done", 0) - counts.get("modified", 0) - blocked
    tail = (f"; to finish: {finish_command(file, folder, request)}" if left else
            f"; the {blocked} blocked render once the file named above is fixed, then: "
            f"{finish_command(file, folder, request)}" if blocked else "; all done")
    return f"{counted(total, 'job')}: {states or 'none'}{tail}"


PLAN_COLUMNS = ("shot", "take", "seed", "identity", "size", "steps", "sampler", "tokens", "state", "group", "key")
# What a narrow terminal leaves out first (cli/table_fit.py): never the shot, its take, seed or state.
PLAN_COLUMNS_LEFT_OUT_FIRST = ("key", "group", "tokens", "sampler", "steps", "size", "identity")
_STATE_STYLE = {"new": "yellow", "done": "green", "recoverable": "green", "stale": "magenta", "modified": "red"}


def plan_table_cells(row: dict[str, Any]) -> tuple[str, ...]:
    """A ``plan --json`` job's cells in ``idcli plan``'s table (PLAN_COLUMNS), as Rich markup."""
    from rich.markup import escape

    return (escape(row["shot_id"]), str(row["take"]), str(row["seed"]), escape(", ".join(row["conditioning"])),
            _size_cell(row), str(row["sampler"]["steps"]), row["sampler"]["name"],
            _tokens_cell(row["prompt_tokens"], row["text_windows"]),
            f"[{_STATE_STYLE.get(row['state'], 'white')}]{row['state']}[/]", row["group"],
            row["job_key"].split(":")[1][:12])


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


def _reuse_line(rows: list[dict[str, Any]]) -> str | None:
    """``plan``'s line for the takes a render makes of an image of the same job already in the folder (reused)."""
    reusing = [f"{row['shot_id']}_t{row['take']} from {row['reuses']['path']}" for row in rows if row.get("reuses")]
    if not reusing:
        return None
    shown = ", ".join(reusing[:5]) + (f", … ({len(reusing) - 5} more)" if len(reusing) > 5 else "")
    return (f"note: {len(reusing)} take(s) reuse an image of the same job already in the folder, not rendered again "
            f"(with --save-masks a dual-line one renders): {shown}")


def _tokens_cell(tokens: int | None, windows: int | None) -> str:
    """The plan table's token count: '?' when unknown, and the windows of a prompt longer than one."""
    if tokens is None:
        return "?"
    return f"{tokens} ({windows}×77)" if windows is not None and windows > 1 else str(tokens)


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
    only: Annotated[list[str] | None, typer.Option("--only", metavar="SHOT",
                                                   help="Render only this shot id, or the shots a pattern "
                                                   "such as 'sc01_*' matches (repeatable).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would render; write nothing.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for another run on the same folder to end.")] = False,
    face_models: FaceModelsOpt = None,
    save_masks: Annotated[bool, typer.Option("--save-masks", help="Write each dual-line image's fusion mask over "
                                             "time (a plate image's face masks) as SHOT_tN.mask.png beside it, for "
                                             "review; only for images rendered in this run (done ones are "
                                             "skipped).")] = False,
    compile_unet: Annotated[bool, typer.Option("--compile", help="torch.compile the UNet: slower start, maybe "
                                               "faster batches (docs/performance.md).")] = False,
    sign: Annotated[bool | None, typer.Option("--sign/--no-sign", help="Sign every image with C2PA content "
                                              "credentials (certificate and key from the shot list's "
                                              "provenance.c2pa or IDCLI_C2PA_CERT / IDCLI_C2PA_KEY; "
                                              "docs/provenance.md) [default: sign when either names them].",
                                              show_default=False)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output and no notes; warnings (the "
                                        "images may be wrong) and errors are still printed.")] = False,
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
    """Render a shot list. Done jobs are skipped (resume is the default); exit 0, 1 (some failed), 2 (invalid input),
    3 (folder busy), 4 (model or Ray unavailable), 5 (output unusable), 70 (a bug in idcli: please report it),
    130 / 143 / 129 (interrupted / terminated / the terminal closed)."""
    from ..blocked_takes import blocked_words
    from ..console import make_progress
    from ..run import render as run_render
    from ..run_report import not_rendered_words

    def body() -> None:
        size = parse_batch_size(batch_size)
        loaded = _load_every_problem(file, face_models)
        folder = _default_out(loaded, out)
        progress = make_progress(quiet or dry_run)
        options: dict[str, Any] = dict(
            preset=preset, device=device, batch_size=size, force=force, only=only, dry_run=dry_run, wait=wait,
            face_models=face_models, save_masks=save_masks, compile=compile_unet, sign=sign, progress=progress,
            qa=not no_qa, qa_thresholds=qa_thresholds(qa_low_identity, qa_leakage),
            executor=executor, ray_address=ray_address, workers=workers)
        try:
            # stdout holds only the summary or the one --json document: what libraries print during the run
            # goes to stderr (Ray's driver prints its workers' failures, "(raylet) Task ... failed", on stdout).
            with contextlib.redirect_stdout(sys.stderr):  # SIGTERM stops it like Ctrl-C: guarded
                if retake_flagged:
                    from ..review.retake import render_with_retakes

                    report = render_with_retakes(loaded, folder, max_takes=max_takes, **options)
                else:
                    report = run_render(loaded, folder, **options)
        except (Interrupted, ExecutorUnavailableError) as stopped:
            if as_json and stopped.report is not None:  # the one document: the report so far, and why it stopped
                emit_json({**stopped.report.as_dict(), "ok": False, "exit_code": stopped.exit_code,
                           "error": stopped.as_json()})
                fail(stopped.render(), stopped.exit_code)
            if isinstance(stopped, Interrupted) and stopped.report is not None and not quiet:
                # what is done and the command that finishes, while she is still at the terminal (unfinished.py)
                from ..unfinished import unfinished_takes

                if (left := unfinished_takes(folder)) is not None:
                    print_note(left.note())
            raise
        summary = report.as_dict()
        counts = summary["counts"]
        if as_json:
            # stdout holds the one document; stderr says what it says without --json (warnings, notes, errors), so
            # a script's log says why a run exited 1 and what it moved aside (the --json contract, file-formats.md).
            emit_json(summary)
        if quiet or dry_run:
            # The silent progress said none of the plan's warnings (a group photo as a selfie, ...): they are
            # about the images' correctness, not progress, so -q and --dry-run print them too, as plan does.
            for warning in report.warnings:
                print_warning(warning)
        if not quiet:
            if not as_json:  # with --json the document's counts say it
                tail = f" in {report.seconds:.1f}s" if report.rendered else ""
                if dry_run:
                    # Every job in one count, as the render's own line adds up (--json's counts).
                    settled = "".join(f", {counts[status]} {words}" for status, words in (
                        ("reused", "to reuse"), ("restored", "to restore"), ("recovered", "to recover"),
                        ("kept", "kept (edited by hand)")) if counts[status])
                    # takes a character's unusable file blocks: the render would fail them (the error below says so)
                    blocked_too = f", {counts['blocked']} blocked" if counts["blocked"] else ""
                    emit(f"dry run: {counts['pending']} to render, {counts['skipped']} done{settled}{blocked_too} "
                         f"→ {folder}")
                else:
                    # Takes put back from .idcli/superseded (an edit undone), made of an image of the same job
                    # (reused) and images edited by hand, kept (not rendered over), are neither rendered nor skipped:
                    # the line must add up to the jobs.
                    restored = f"{counts['restored']} restored, " if counts["restored"] else ""
                    reused = f"{counts['reused']} reused, " if counts["reused"] else ""
                    kept = f"{counts['kept']} kept (edited by hand), " if counts["kept"] else ""
                    # takes a full disk stopped the run before are not failed ones: said apart, with why
                    unreached = (f"; {not_rendered_words(report.not_rendered, report.error)}"
                                 if report.not_rendered else "")
                    # takes blocked by a character's unusable selfie are said apart, in the morning note's words
                    # (verify, review): counted failed, "2 failed" read as two broken renders to try again
                    blocked_too = f", {report.blocked} blocked" if report.blocked else ""
                    emit(f"{report.rendered} rendered, {counts['skipped']} skipped, {restored}{reused}{kept}"
                         f"{counts['recovered']} recovered, {report.failed - report.blocked} failed{blocked_too}{tail}"
                         f" → {folder}{unreached}{blocked_words(report.blocked_takes())}")
            if report.model.get("random_weights"):
                print_note("preset with RANDOM weights — images are noise, for trying idcli out, not for review")
            # Masks are made while rendering: a done job is skipped, not rendered again for its mask. One that has
            # its mask beside it (an earlier run's --save-masks: an image rendered again takes its mask along to
            # .idcli/superseded) lacks nothing, and is not counted.
            maskless = sum(1 for o in report.jobs if o.status == "skipped" and not Path(
                o.image.abs_path).with_suffix(".mask.png").is_file()) if save_masks and not dry_run else 0
            if maskless:
                print_note(f"--save-masks writes the masks of the images rendered in this run; {maskless} "
                           "done image(s) were skipped and got none (idcli render --force --only SHOT --save-masks "
                           "renders one again)")
            rendered_again = {f"{o.shot_id}_t{o.take}": o.reason or "" for o in report.jobs
                              if o.status == "rendered" and o.state == "stale"}
            causes = {f"{o.shot_id}_t{o.take}": o.cause for o in report.jobs if o.cause is not None}
            for line in rerender_notes(rendered_again, "rendered again", causes,
                                       _takes_per_shot(report.jobs), folder) if not dry_run else []:
                print_note(line)
            kept_jobs = [o for o in report.jobs if o.status == "kept"]
            # A render (not its dry run, whose progress is silent) said another project's folder as it took it on.
            said = {} if dry_run else {"other_project": None}
            for line in folder_notes({**summary, "problems": [], **said, "jobs": [
                    {"shot_id": o.shot_id, "take": o.take, "state": o.state} for o in kept_jobs]}, folder):
                print(styled(line), file=sys.stderr)
        # Errors, even with --quiet or --json: the characters that cannot be used, and the takes they fail.
        blocked = [{"shot_id": o.shot_id, "take": o.take, "state": o.state, "reason": o.error} for o in report.jobs
                   if o.state == "blocked"]
        for line in folder_notes({"problems": summary["problems"], "jobs": blocked}, folder):
            print(styled(line), file=sys.stderr)
        if report.error:
            print(diagnostic("error", report.error), file=sys.stderr)
        if report.exit_code != EXIT_OK:
            raise typer.Exit(report.exit_code)

    guarded(body, as_json)

