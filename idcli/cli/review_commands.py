"""The review commands over output folders: qa, review, select, export and evaluate (docs/review.md).

Owns recomputing identity QA, the storyboard page, the director's selects, the OTIO animatic and the identity
figures per run: their options and printing, and how each ends (``_finish_review``: damaged sidecars and unreadable
images named, exit 2, everything else used); the work is idcli/review/.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ..count_words import counted
from ..errors import EXIT_INVALID_INPUT, OutputError, terminal_safe
from ..paths import absolute
from ..shell_words import quote_word, shell_path
from .options import FaceModelsOpt, JsonOpt, QaLeakageOpt, QaLowIdentityOpt, app, given_path, qa_thresholds
from .output import emit, emit_json, error_object, failure, guarded, ok, print_note, stdout_console

OutArg = Annotated[Path, typer.Argument(parser=given_path,
                                        help="A render's output folder.", show_default=False, metavar="OUT")]
ShotsOpt = Annotated[Path | None, typer.Option("--shots", parser=given_path,
                                               help="Take shot order and durations from this shot list "
                                               "[default: the snapshot the last render wrote in OUT/.idcli].",
                                               show_default=False)]
# evaluate orders its runs' takes by a shot list but reads no durations (review and export do: the animatic's).
EvaluateShotsOpt = Annotated[Path | None, typer.Option("--shots", parser=given_path,
                                                       help="Take shot order from this shot list [default: the "
                                                       "snapshot the last render wrote in each OUT/.idcli].",
                                                       show_default=False)]


def _finish_review(problems: list[str], document: dict[str, Any] | None = None) -> None:
    """End a review command: damaged sidecars and unreadable images each named on stderr, then exit 2
    (everything else was used); with ``document`` (``--json``) one contract document on stdout."""
    for problem in problems:
        print(f"idcli: skipped {terminal_safe(problem)}", file=sys.stderr)
    message = f"{len(problems)} problem(s) skipped; everything else was used" if problems else ""
    if document is not None:
        if problems:
            error = {**error_object("InputError", message), "problems": [
                {"file": p.split(": ", 1)[0], "line": None, "column": None, "field": None,
                 "message": p.split(": ", 1)[-1], "hint": None} for p in problems]}
            emit_json({**failure(error, EXIT_INVALID_INPUT), **document})
        else:
            emit_json(ok(**document))
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
    from ..review.qa_findings import flagged_lines
    from ..review.recheck import recheck

    def body() -> None:
        result = recheck(out, face_models=face_models, thresholds=qa_thresholds(qa_low_identity, qa_leakage),
                         wait=wait)
        if not as_json:
            flags = ", ".join(f"{k} {v}" for k, v in sorted(result.flags.items())) or "none"
            emit(f"{counted(result.checked, 'image')} checked, {result.flagged} flagged ({flags}), "
                 f"{result.without_cast} without a cast → {out}")
            for line in flagged_lines(result.flagged_images, out):
                emit(line)
        _finish_review(result.problems, {
            "out_dir": str(absolute(out)), "checked": result.checked, "flagged": result.flagged,
            "flags": result.flags, "without_cast": result.without_cast,
            "flagged_images": [{**image, "image": _folder_file(Path(out), Path(out) / image["image"])}
                               for image in result.flagged_images]} if as_json else None)

    guarded(body, as_json)


def _folder_file(root: Path, path: Path) -> dict[str, str]:
    """A file of the output folder as the --json contract names it: ``{path, abs_path}``."""
    found = absolute(path)
    return {"path": found.relative_to(absolute(root)).as_posix(), "abs_path": str(found)}


@app.command()
def review(
    out: OutArg,
    shots: ShotsOpt = None,
    to: Annotated[Path | None, typer.Option(
        "--to", parser=given_path, metavar="DIR", show_default=False,
        help="Write the page, its thumbnails and contact sheets into DIR (new, empty, or an earlier --to's) and "
             "nothing into OUT: for a folder you can only read.")] = None,
    open_page: Annotated[bool, typer.Option("--open", help="Open the page in the default browser.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write the storyboard page OUT/review/index.html (thumbnails, QA badges, selects) and contact-sheet.png
    (contact-sheet-2.png, … past 100 shots); with --to DIR, into DIR instead."""
    from ..review.export import shown_select, standing_takes
    from ..review.page import write_review
    from ..review.pick_notes import pick_notes
    from ..review.runs import load_run
    from ..unfinished import unfinished_takes

    def body() -> None:
        run = load_run(out, shots)
        try:
            result = write_review(run, to)
        except OutputError as exc:
            raise _way_out(exc, run.root, to) from None
        notes = pick_notes(run)  # picks the shot list's edits since left behind (the page marks them too)
        # the page shows what was rendered; the takes a stopped night left out, and how to finish, are said here
        if (unfinished := unfinished_takes(run.root)) is not None:
            notes.append(unfinished.note())
        count = len(result.contact_sheets)
        sheets = (f"contact sheet {result.contact_sheet}" if count <= 1 else
                  f"{count} contact sheets {result.contact_sheet} … {result.contact_sheets[-1].name}")
        if not as_json:
            emit(f"{result.index}: {counted(result.shots, 'shot')}, {counted(result.takes, 'take')} "
                 f"({counted(result.thumbnails_made, 'new thumbnail')}); {sheets}")
        for note in notes:  # on stderr with --json too, as export and select say theirs (the --json contract)
            print_note(note)
        if open_page:
            import webbrowser

            url = result.index.resolve().as_uri()
            if not webbrowser.open(url):  # a render box over ssh has none: say where the page is
                print_note(f"no browser could be opened here; open {url}")
        document = None
        if as_json:
            live = standing_takes(run)
            counts = {"shots": result.shots, "takes": result.takes, "thumbnails_made": result.thumbnails_made,
                      "flagged": sum(1 for take in run.takes if take.flags),
                      # as the page's header counts them: shots of the shot list whose select is one of its takes
                      "selected": sum(1 for shot in run.shots if shown_select(shot, live) is not None
                                      and (shot.entry is not None or run.order is None))}
            # page and contact_sheets: {path, abs_path}, path relative to OUT as ever; with --to, path is the
            # file as given (DIR/index.html) and review_dir names DIR (additive: docs/file-formats.md)
            where = (lambda p: _folder_file(run.root, p)) if to is None else _given_file
            document = {"out_dir": str(absolute(run.root)), "page": where(result.index),
                        "contact_sheets": [where(sheet) for sheet in result.contact_sheets],
                        "counts": counts, "notes": notes}
            if to is not None:
                document["review_dir"] = {"path": str(to), "abs_path": str(absolute(to))}
        _finish_review(result.problems, document)

    guarded(body, as_json, problems_mean="no review page was written")


def _given_file(path: Path) -> dict[str, str]:
    """A file ``review --to`` wrote, as the --json contract names it: ``{path (as given), abs_path}``."""
    return {"path": str(path), "abs_path": str(absolute(path))}


def _way_out(exc: OutputError, root: Path, to: Path | None) -> OutputError:
    """``review``'s exit 5 where OUT may not be written, its words adding the way out: the page written elsewhere.
    A read-only share refused the first folder made (``OUT/review: Read-only file system``): said as every writing
    command says it, "output folder OUT is not writable"."""
    said = exc.args[0] if exc.args else str(exc)
    if to is not None or not any(words in said for words in _REFUSED):
        return exc
    if "Read-only file system" in said and "is not writable" not in said:
        said = f"output folder {root} is not writable (Read-only file system)"
    # ~ stays outside the quotes, so the shell still reads it as her home
    folder = "~/" + quote_word(f"review-{absolute(root).name or 'out'}")
    return OutputError(f"{said}; or write the page elsewhere: idcli review {shell_path(root)} --to {folder}",
                       file=exc.file)


# What a refusal to write in OUT says (store.not_writable, shared_files' folder left shut, the file system's words).
_REFUSED = ("is not writable", "Read-only file system", "Permission denied", "permission denied")


@app.command()
def select(
    out: OutArg,
    picks: Annotated[list[str] | None, typer.Argument(help="SHOT=TAKE (e.g. sc01_sh010=2; SHOT=none clears).",
                                                      show_default=False, metavar="SHOT=TAKE")] = None,
    from_file: Annotated[Path | None, typer.Option(
        "--from", help="The picks file the storyboard page exported (its \"export picks\"; - reads standard "
                "input), checked like SHOT=TAKE.",
        show_default=False, metavar="PICKS.json", parser=given_path)] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Record --from picks of takes re-rendered since the page was exported (as rendered now), "
                        "and picks of another project's page.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Record the director's pick per shot in OUT/selects.json: SHOT=TAKE, or --from the picks file the storyboard
    page exported (checked against the committed takes). With neither, list the picks in shot-list order and
    whether each still stands (nothing is written)."""
    from ..review.selects import SELECTS
    from ..review.selects import select as record_picks

    def body() -> None:
        if force and from_file is None:  # --force acts on --from picks only: without them it would change nothing
            from ..errors import InputError

            what = ("idcli select OUT SHOT=TAKE records the take as rendered now, with or without --force" if picks
                    else "idcli select OUT with no SHOT=TAKE and no --from lists the picks and records nothing")
            raise InputError(f"--force: {what}; --force records --from picks of takes re-rendered since the page "
                             "was exported, or of another project's page: give --from picks.json, or drop --force",
                             field="force")
        if not picks and from_file is None:
            _list_selects(out, as_json)
            return
        notes: list[str] = []
        current = record_picks(out, picks, notes, from_file=from_file, force=force)
        for note in notes:  # what became of picks already in the file: no committed take, re-rendered, orphans
            print_note(note)
        root = Path(out)
        if as_json:  # the picks as selects.json holds them now, what this select changed, and the notes above
            emit_json(ok(out_dir=str(absolute(root)), selects_file=_folder_file(root, root / SELECTS),
                         selects=dict(sorted(current.items())), changed=current.changed, notes=current.notes))
            return
        emit("changed: " + (", ".join(current.changed) or "nothing; every pick given was recorded already"))
        from ..review.select_list import in_shot_list_order

        # In shot-list order, as `select OUT` lists them: the file's order put a shot picked now after the rest.
        emit(f"{root / SELECTS}: " + (", ".join(f"{shot}=t{current[shot]['take']}" for shot in
                                                in_shot_list_order(root, current)) or "no picks"))
        if (root / "review" / "index.html").is_file():  # the page is static: say how it catches up

            emit(f"the storyboard page shows them once rewritten: idcli review {shell_path(out)}")

    guarded(body, as_json)


def _list_selects(out: Path, as_json: bool) -> None:
    """``select OUT`` alone: every pick in shot-list order and how it stands (idcli/review/select_list.py)."""

    from ..errors import printable
    from ..review.pick_standing import PickStanding, followed_take
    from ..review.select_list import list_selects
    from ..review.selects import SELECTS, read_selects

    listed = list_selects(out)
    root = Path(out)
    if as_json:  # select --json's document, nothing changed, with how each pick stands and the shots unpicked
        emit_json(ok(out_dir=str(absolute(root)), selects_file=_folder_file(root, root / SELECTS),
                     selects=dict(sorted(read_selects(root).items())), changed=[], notes=[],
                     standing=[s.as_dict() for s in listed.selects], unpicked=listed.unpicked))
        return
    folder = shell_path(root)
    if not listed.selects:
        emit(f"{root / SELECTS}: no picks (idcli select {folder} SHOT=TAKE records one)")
    else:
        standing = sum(1 for s in listed.selects if s.standing is PickStanding.AS_PICKED)
        changed = sum(1 for s in listed.selects if _refused_image(s))
        emit(f"{root / SELECTS}: {len(listed.selects)} pick(s), in shot-list order; {standing} as rendered when "
             "picked" + (f"; the images of {changed} changed since their render: deliver refuses them" if changed
                         else ""))
    shots = shell_path(listed.shotlist) if listed.shotlist is not None else "SHOTS.yaml"
    for s in listed.selects:
        named = printable(s.shot_id)
        how = {PickStanding.RE_RENDERED: f" (look again: idcli select {folder} {named}=N)",
               PickStanding.SHOT_GONE: " (left out of review, export and deliver)",
               PickStanding.BEYOND_TAKES: f" (pick one of its takes: idcli select {folder} {named}=N)"}.get(
            s.standing, "")
        if s.holding:  # the shot's takes shifted: the picked image is at another take (the first of several alike)
            how = f"; idcli select {folder} {named}={followed_take(list(s.holding))} picks it there"
        # The take as rendered may stand as picked, yet its image is no longer the render's: deliver refuses it.
        change = s.image_changed if _refused_image(s) else None
        again = {"edited": f"idcli render {shots} --out {folder} --only {named} --force renders it again, keeping the "
                           "edited image in .idcli/superseded",
                 "damaged": f"idcli render {shots} --out {folder} renders it again"}.get(change or "")
        if again and how:
            # Re-rendered (or beyond its takes) and changed since: both said short, the render on a line of its own;
            # joined, the two remedies made one line of some 330 characters naming `idcli select` twice.
            since = {"edited": "edited by hand", "damaged": "damaged"}[change or ""]
            emit(f"{named}=t{s.take}: {s.words}, then {since}: deliver refuses it{how}")
            emit(f"  {again}")
            continue
        image = {"edited": f", but its image was edited after the render: deliver refuses it (idcli render {shots} "
                           f"--out {folder} --only {named} --force renders the shot again, keeping the edited image in "
                           f".idcli/superseded; or pick another take: idcli select {folder} {named}=N)",
                 "damaged": f", but its image is damaged since the render: deliver refuses it ({again})"}.get(
            change or "", "")
        emit(f"{named}=t{s.take}: {s.words}{image}{how}")
    if listed.unpicked:
        shown = ", ".join(printable(shot) for shot in listed.unpicked[:10])
        more = f" ... and {len(listed.unpicked) - 10} more" if len(listed.unpicked) > 10 else ""
        emit(f"not picked yet: {shown}{more}")


def _refused_image(standing: Any) -> bool:
    """Whether a listed pick's image changed since its render (select_list.image_change) where deliver would take
    it, and so refuse it: not of a shot no longer in the shot list, which deliver leaves out."""
    from ..review.pick_standing import PickStanding

    return standing.image_changed is not None and standing.standing is not PickStanding.SHOT_GONE


_RATIO = re.compile(r"([0-9]+)/([0-9]+)")


def frame_rate(value: str | float) -> float:
    """``--fps``: a number (``23.976``), or a ratio of whole numbers, as ffprobe, FFmpeg and QuickTime's metadata give
    an NTSC rate (``r_frame_rate=24000/1001``). The range is ``export``'s to check (1 to 240)."""
    if not isinstance(value, str):  # the default, 24.0, passes through the parser too
        return float(value)
    ratio = _RATIO.fullmatch(value)
    if ratio is not None and int(ratio[1]) and int(ratio[2]):
        return int(ratio[1]) / int(ratio[2])
    if "/" not in value:
        try:
            return float(value)
        except ValueError:
            pass
    raise typer.BadParameter("give a number or a ratio of whole numbers")  # the option's help follows, in brackets


@app.command()
def export(
    out: OutArg,
    otio_file: Annotated[Path | None, typer.Option("--otio", help="An OpenTimelineIO timeline to write (.otio; "
                                                   "DaVinci Resolve, otiotool).", show_default=False,
                                                   parser=given_path)] = None,
    edl_file: Annotated[Path | None, typer.Option("--edl", help="A CMX 3600 EDL to write (.edl; Avid, Resolve, "
                                                  "Premiere). Needs the editorial extra.", show_default=False,
                                                  parser=given_path)] = None,
    fcp_xml_file: Annotated[Path | None, typer.Option("--fcp-xml", help="A Final Cut Pro 7 XML to write (.xml; "
                                                      "Premiere, Resolve). Needs the editorial extra.",
                                                      show_default=False, parser=given_path)] = None,
    movie_file: Annotated[Path | None, typer.Option("--movie", help="A playable H.264 movie to write (.mp4 or "
                                                    ".mov). Needs the movie extra.", show_default=False,
                                                    parser=given_path)] = None,
    fps: Annotated[float, typer.Option("--fps", parser=frame_rate, metavar="<rate>",
                                       help="Frame rate of the timeline, 1 to 240: 23.976, or as ffprobe gives it, "
                                       "24000/1001.")] = 24.0,
    drop_frame: Annotated[bool | None, typer.Option("--drop-frame/--non-drop-frame", help="Timecode at 29.97 or "
                                                    "59.94 fps of every format (the .otio's start is counted in "
                                                    "it) [default: drop frame there].",
                                                    show_default=False)] = None,
    burn_in: Annotated[bool, typer.Option("--burn-in", help="Show shot id, take and timecode in the movie.")] = False,
    start: Annotated[str | None, typer.Option("--start", metavar="TC", help="Record timecode of the first frame "
                                              "in every format, e.g. 01:00:00:00 (01:00:00;00 where the timecode "
                                              "drops frames) [default: 01:00:00:00].", show_default=False)] = None,
    shots: ShotsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the animatic: one clip per shot in shot-list order, the selected take, the shot's duration.

    Give one or more of --otio, --edl, --fcp-xml and --movie: all come from the same timeline.
    """
    from ..review.export import check_targets, export_animatic, rate_ratio, timeline_rate, unpassed_notes
    from ..review.pick_notes import pick_notes
    from ..review.runs import load_run
    from ..review.start_timecode import rate_words

    def body() -> None:
        check_targets(otio=otio_file, edl=edl_file, fcp_xml=fcp_xml_file, movie=movie_file, fps=fps)
        run = load_run(out, shots)
        results = export_animatic(run, otio=otio_file, edl=edl_file, fcp_xml=fcp_xml_file,
                                  movie=movie_file, fps=fps, drop_frame=drop_frame, burn_in=burn_in, start=start)
        first = results[0]
        gaps = f", {len(first.gaps)} gap(s) for shots not rendered ({', '.join(first.gaps)})" if first.gaps else ""
        # once for every format: they all show the same takes; a take QA flagged standing for its shot said as
        # deliver says it
        picks = [*pick_notes(run), *unpassed_notes(run)]
        for note in picks:
            print_note(note)
        for result in results:
            if not as_json:
                starts = f" from {result.start}" if result.start else ""
                emit(f"{result.path}: {counted(result.clips, 'clip')}, {counted(result.frames, 'frame')} at "
                     f"{rate_words(timeline_rate(fps))} fps{starts}{gaps}")  # the rate the files hold
            for note in result.notes:
                print_note(note)
        document = None
        if as_json:
            rate = timeline_rate(fps)  # the rate the files hold: --fps 23.98 is written at 24000/1001
            ratio = rate_ratio(rate)
            document = {"out_dir": str(absolute(out)), "fps": rate,
                        "fps_ratio": f"{ratio.numerator}/{ratio.denominator}", "start": first.start,
                        "clips": first.clips,
                        "frames": first.frames, "gaps": first.gaps,
                        "files": [{"format": r.format, "path": str(r.path)} for r in results],
                        "notes": [*picks, *(note for r in results for note in r.notes)]}
        _finish_review(first.problems, document)

    guarded(body, as_json, problems_mean="nothing was exported")


@app.command()
def evaluate(
    outs: Annotated[list[Path], typer.Argument(parser=given_path,
                                               help="One or more output folders, shown side by side.",
                                               show_default=False, metavar="OUT")],
    shots: EvaluateShotsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Identity figures per run from the QA in its sidecars: cosines per character, flags, face area, leakage."""
    from ..review.evaluate import evaluate as summarise_runs
    from ..review.evaluate import table_rows

    def body() -> None:
        summaries = summarise_runs(outs, shots)
        if not as_json:
            from rich.markup import escape
            from rich.table import Table

            table = Table(title="identity QA by run")
            table.add_column("")
            for s in summaries:
                table.add_column(escape(s.folder), justify="right")
            for metric, cells in table_rows(summaries):
                table.add_row(escape(metric), *cells)
            stdout_console().print(table)
        # several runs side by side: each problem names its run's folder (its path is relative to it)
        _finish_review([f"{s.folder}/{p}" if len(summaries) > 1 else p for s in summaries for p in s.problems],
                       {"runs": [s.as_dict() for s in summaries]} if as_json else None)

    guarded(body, as_json, problems_mean="nothing was evaluated")

