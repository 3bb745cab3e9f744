"""The commands over a render's record: restore, reproduce and verify (docs/provenance.md).

Owns putting back a superseded take (``restore``), re-rendering one image from its record alone (``reproduce``)
and checking a folder's images against their sidecars and C2PA credentials (``verify``): their options, printing
and exit codes; the work is idcli/superseded.py, idcli/reproduce.py and idcli/verify.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..count_words import counted
from ..errors import EXIT_OK, InputError
from ..paths import absolute
from .options import DeviceOpt, FaceModelsOpt, JsonOpt, app, given_path, written_folder
from .output import debug_traceback, emit, emit_json, fail, guarded, ok, print_note


@app.command()
def restore(
    out_dir: Annotated[Path, typer.Argument(parser=given_path,
                                            help="Output folder.", show_default=False, metavar="OUT")],
    take: Annotated[str | None, typer.Argument(help="The take to restore, as SHOT_tN (its file name without .png); "
                                               "with --list, leave it out to list every kept render.",
                                               show_default=False, metavar="SHOT_tN")] = None,
    key: Annotated[str | None, typer.Option("--key", help="Which kept version: a prefix of its job key (idcli "
                                            "plan lists them) [default: the most recently replaced whose image "
                                            "differs from the current take's].")] = None,
    list_only: Annotated[bool, typer.Option("--list", help="List the kept versions of the take (of every take "
                                            "when SHOT_tN is left out); change nothing.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for a run on the same folder to end.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Put back an earlier render of a take that a newer render replaced (kept in OUT/.idcli/superseded).

    The take now at OUT/SHOT/SHOT_tN.png moves aside in its place, so a restore is undone by restoring again.
    """
    from ..restore import kept_renders
    from ..restore import restore as restore_take

    def body() -> None:
        if list_only:
            # Without a take: every kept render of the folder (what a re-render after shot-list edits moved aside).
            versions = [v.as_dict(out_dir) for v in kept_renders(out_dir, take)]
            if as_json:
                emit_json(ok(out_dir=str(absolute(out_dir)), versions=versions))
                return
            for v in versions:
                emit(f"{v['name']}  superseded {v['superseded_at']}  key {v['job_key'] or '?'}")
            if not versions:
                emit(f"no earlier render of {take or 'any take'} is kept in {out_dir}")
            return
        if take is None:
            raise InputError("SHOT_tN: missing: the take to restore, as SHOT_tN (its file name without .png) (usage: "
                             "idcli restore [OPTIONS] OUT SHOT_tN); idcli restore OUT --list lists every kept render",
                             field="take")
        result = restore_take(out_dir, take, key, wait=wait)
        note = _restore_note(out_dir, take, result)
        if as_json:
            emit_json(ok(out_dir=str(absolute(out_dir)), **result, **({"note": note} if note else {})))
            return
        aside = f"; the take it replaced is kept as {result['moved_aside']}" if result["moved_aside"] else ""
        lines = [f"restored {result['image']['path']} from {result['name']}{aside}"]
        if result["passed_over"]:  # kept copies of the current take (render --force of an unchanged shot)
            lines.append(f"passed over {', '.join(result['passed_over'])}: the same image as the take it replaced")
        if result["same_image"]:
            lines.append("the image put back is the same as the take it replaced")
        emit("\n".join(lines))
        if note:
            print_note(note)

    guarded(body, as_json)


def _restore_note(out_dir: Path, take: str, result: dict[str, Any]) -> str | None:
    """What a restore of an earlier version means for the next render (docs/file-formats.md, restore).

    A kept version was made by other inputs than the take it replaced (else it would not have been replaced,
    bar a hand-edited image): when the shot list still says what made the replaced one, the next render finds
    the restored take stale and moves it aside again. None when the replaced take had the same job key, or when
    the take is back as the last render made it (a restore undone by restoring again)."""
    from ..kept_versions import each_alone, list_superseded
    from ..restore import last_rendered_key

    if result["job_key"] and result["job_key"] == last_rendered_key(out_dir, result["shot_id"], result["take"]):
        return None  # restoring again undid a restore: the take is the one the last render committed
    if result["moved_aside"]:
        replaced = next((v for v in list_superseded(out_dir, take, order_among=each_alone)
                         if v.name == result["moved_aside"]), None)
        if replaced is not None and replaced.job_key and replaced.job_key == result["job_key"]:
            return None  # the same job (an edited image put back by its original): the next render keeps it
    # An upgrade re-keys some unchanged shots (CHANGELOG, "render again once"): no shot-list edit brings
    # their key back, so the note names that cause too rather than only the edit.
    return (f"{take} is back as it was rendered from an earlier version of the shot list, or by an earlier idcli "
            "that keyed the same shot differently; if the shot list still differs (idcli plan shows the take as "
            "'stale'), the next idcli render renders it again and moves it aside again. To keep it, edit the "
            "shot list back to what made it (its sidecar holds the prompt, seed and settings); a take an earlier "
            "idcli keyed differently is moved aside by every render of its shot, and stays restorable.")


# -- provenance: reproduce and verify (docs/provenance.md) ---------------------------------------------------

@app.command()
def reproduce(
    target: Annotated[Path, typer.Argument(parser=given_path, help="A committed image (PNG) or its sidecar (JSON).",
                                           show_default=False, metavar="IMAGE_OR_SIDECAR")],
    out: Annotated[Path | None, typer.Option("--out", "-o", parser=written_folder,
                                             help="Write the re-rendered image into this folder.")]
    = None,
    device: DeviceOpt = "auto",
    face_models: FaceModelsOpt = None,
    delivered_from: Annotated[Path | None, typer.Option(
        "--from", parser=given_path,
        help="For a delivered frame (idcli deliver): the studio's output folder it was delivered from "
        "[default: renders/PROJECT].", show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-render one image from its record alone; exit 0 when identical, 6 when not, 2 when an input is
    missing or changed (named) or the engine version is no longer supported."""
    from ..reproduce import reproduce as run_reproduce

    def body() -> None:
        report = run_reproduce(target, out_dir=out, device=device, face_models=face_models,
                               delivered_from=delivered_from)
        if as_json:
            emit_json(report.as_dict())
        else:
            lines = [f"{report.image}: {report.status}"]
            if report.decode_chunk is not None:  # how the VAE decoded: it can move a pixel by one level
                how = ("as recorded" if report.decode_chunk == report.recorded_decode_chunk else
                       "as this device allows: the record names none" if report.recorded_decode_chunk is None else
                       f"the record's {report.recorded_decode_chunk} in a smaller batch")
                lines.append(f"  VAE decode: {report.decode_chunk} image{'s' if report.decode_chunk != 1 else ''} "
                             f"per call ({how})")
            if not report.identical:
                now = (f", the image now {report.image_sha256}"  # changed since its commit: compared as it is now
                       if report.image_sha256 not in (None, report.recorded_sha256) else "")
                if report.recorded_sha256_from == "image":  # no record of it: the image's own, as it is now
                    lost = ": its sidecar is gone" if report.sidecar is None else ""
                    lines.append(f"  sha256 of the image as it is now {report.recorded_sha256} (no recorded one to "
                                 f"compare with{lost}), re-rendered {report.sha256}")
                else:
                    lines.append(f"  sha256 recorded {report.recorded_sha256}, re-rendered {report.sha256}{now}")
                if report.max_pixel_difference is not None:
                    lines.append(f"  largest pixel difference {report.max_pixel_difference}/255 over "
                                 f"{report.differing_pixels} pixels")
                lines += [f"  {item['name']}: recorded {item['recorded']}, now {item['now']}"
                          for item in report.environment]
            lines += [f"  note: {note}" for note in report.notes]
            if report.output:
                lines.append(f"  written to {report.output}")
            emit("\n".join(lines))
        if report.exit_code != EXIT_OK:
            raise typer.Exit(report.exit_code)

    guarded(body, as_json)


@app.command()
def verify(
    out: Annotated[Path, typer.Argument(parser=given_path,
                                        help="An output folder of idcli render (or a delivery folder of idcli "
                                        "deliver, or a folder of PNGs copied out of either).", show_default=False,
                                        metavar="OUT")],
    trust: Annotated[Path | None, typer.Option("--trust", parser=given_path,
                                               help="PEM root certificate(s) to trust for C2PA "
                                               "signatures (a studio's own CA); every image must then be signed "
                                               "under one of them.", show_default=False)] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v",
                                          help="Also print who signed each signed image: the signer certificate's "
                                          "common name, serial number and issuer.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Check every image against its sidecar (and the sidecar against the image's own idcli record) and, for signed
    ones, its C2PA credentials; exit 0, or 6 when an image fails."""
    from ..verify import NothingCheckedYet, verify_folder

    def body() -> None:
        try:
            report = verify_folder(out, trust)
        except NothingCheckedYet as nothing:
            if as_json:  # the one document keeps `unfinished`, where the message carries the note
                debug_traceback()
                emit_json({**nothing.report.as_dict(), "ok": False, "exit_code": nothing.exit_code,
                           "error": nothing.as_json()})
                fail(nothing.render(), nothing.exit_code)  # said on stderr as guarded says any other error
            raise
        summary = report.as_dict()
        if as_json:
            emit_json(summary)
        else:
            lines = []
            for check in report.images:
                state = (check.c2pa or {}).get("state")
                lines.append(f"{'ok' if check.ok else 'FAILED':6} {check.image['path']}"
                             + (f"  (C2PA {state})" if state else ""))
                if verbose and ((check.c2pa or {}).get("signer") or (check.c2pa or {}).get("serial_number")):
                    lines.append(f"       {signer_line(check.c2pa or {})}")
                lines += [f"       {line}" for line in (*check.problems, *check.notes)]
            for problem in report.folder_problems:  # the folder's, no image: after its images, counted apart
                lines += [f"{'FOLDER':6} {problem.path['path']}", f"       {problem.problem}"]
            counts = summary["counts"]
            if report.not_checked:  # a flat folder of images: what kind it is, and what no check here could see
                lines.append(report.not_checked)
            lines.append(f"{counted(counts['checked'], 'image')} checked, {counts['signed']} signed, "
                         f"{counts['failed']} failed" + (
                             f"; {counted(counts['folder_problems'], 'problem')} of the folder"
                             if counts["folder_problems"] else ""))
            emit("\n".join(lines))
            if report.unfinished is not None:  # after the count: the images pass, yet the night's work is not done
                print_note(report.unfinished.note())
        if report.exit_code != EXIT_OK:
            raise typer.Exit(report.exit_code)

    guarded(body, as_json)


def signer_line(c2pa: dict[str, Any]) -> str:
    """Who signed an image, as ``verify --verbose`` prints it under the image: ``signed by 'NAME' (certificate serial
    HEX), issued by 'ISSUER'``. A fact the C2PA reader did not give (the issuer comes from crJSON, which another
    c2pa-python may lack) is said to be not given, not printed as ``None``; verify does not compare it."""
    unknown = "not given by this c2pa-python"
    signer, serial, issuer = c2pa.get("signer"), c2pa.get("serial_number"), c2pa.get("issuer_common_name")
    who = f"signed by {signer!r}" if signer else f"signer {unknown}"
    by = f"issued by {issuer!r}" if issuer else f"issuer {unknown}"
    return f"{who} (certificate serial {serial or unknown}), {by}"
