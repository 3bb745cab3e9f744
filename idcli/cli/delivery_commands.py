"""``idcli deliver``: copies of a render's frames a studio can send out, without its local paths
(docs/delivery.md). The work is idcli/delivery.py; this module owns the options, printing and exit codes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .options import JsonOpt, app, given_path, written_folder
from .output import emit, emit_json, guarded, print_note


@app.command()
def deliver(
    out: Annotated[Path, typer.Argument(parser=given_path,
                                        help="A render's output folder.", show_default=False, metavar="OUT")],
    dest: Annotated[Path, typer.Argument(parser=written_folder,
                                         help="The delivery folder (outside OUT; made when missing).", metavar="DEST",
                                         show_default=False)],
    shots: Annotated[str | None, typer.Option("--shots", help="Only these shots, by id, separated by commas "
                                              "[default: every shot of the shot list].", show_default=False)] = None,
    all_takes: Annotated[bool, typer.Option("--all-takes", help="Every take of each shot [default: the director's "
                                            "select, else the first take QA did not flag, else the first].")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace files in DEST that differ from what this delivery "
                                        "writes.")] = False,
    unsigned: Annotated[bool, typer.Option("--unsigned", help="Deliver signed takes without carrying their C2PA "
                                           "signature (said so in each record).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Copy the chosen takes into DEST without local paths: SHOT_takeN.png with a path-free record and sidecar,
    and DEST/delivery.json; signed takes re-signed with IDCLI_C2PA_CERT/KEY (the take as parent ingredient)."""
    from ..delivery import deliver as deliver_takes

    def body() -> None:
        report = deliver_takes(out, dest, shots=shots, all_takes=all_takes, force=force, unsigned=unsigned)
        if as_json:
            emit_json(report.as_dict())
        else:
            from ..delivery import SIGNATURE_NOTES

            lines = [f"{item.status:9} {item.image}  ({item.shot_id} take {item.take}"
                     f"{', selected' if item.selected else ''}; {SIGNATURE_NOTES[item.signature]})"
                     for item in report.images]
            counts = report.as_dict()["counts"]
            lines.append(f"{len(report.images)} image(s) delivered to {report.dest} ("
                         + ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
                         + "); the list is delivery.json")
            emit("\n".join(lines))
        for note in report.notes:
            print_note(note)

    guarded(body, as_json)
