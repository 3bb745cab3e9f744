"""The ``idcli`` Typer app itself and the options several commands share.

Owns ``app`` (its settings and the ``--version`` callback), the ``Annotated`` argument and option types that more
than one command declares (shot list, --out, --preset, --device, --json, the executor and QA options), and the two
option parsers those commands share (``--batch-size``, the QA thresholds). Commands register themselves on ``app``
from their own modules; idcli/cli/__init__.py imports them in the order ``idcli --help`` lists them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import InputError
from ..versions import TOOL_VERSION
from .help_text import PlainHelpTyper

app = PlainHelpTyper(
    name="idcli",
    help="Batch production of identity-consistent previs images from YAML shot lists.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def given_text_path(value: str) -> str:
    """A path typed on the command line, refused when empty: the usage error every path argument and option
    shares (``parser=`` in its declaration). ``Path("")`` is the current folder, so ``idcli deliver OUT "$DEST"``
    with DEST unset delivered there; an empty ``--face-models`` fell back to the default folder unsaid."""
    if value == "":
        raise typer.BadParameter("an empty path (an unset shell variable?); give a path, or . for the current folder")
    return value


def given_path(value: str) -> Path:
    """:func:`given_text_path` as a ``Path``; an accented name typed in the other Unicode form than the disk's (a
    folder copied off a Mac is decomposed) as the disk spells it (idcli/file_spellings.py)."""
    from ..file_spellings import spelt_on_disk

    return spelt_on_disk(Path(given_text_path(value)))


def written_folder(value: str) -> Path:
    """A folder idcli writes into (``--out``, ``DEST``), refused when empty or ``-``: many tools read ``-`` as
    standard output, and ``render --out -`` made a folder named ``-`` beside the shot list unsaid."""
    return _not_dash(given_path(value), "a folder")


def written_file(value: str) -> Path:
    """A file idcli writes (``encode-identity --output``), refused when empty or ``-`` as :func:`written_folder`."""
    return _not_dash(given_path(value), "a file")


def _not_dash(path: Path, what: str) -> Path:
    from ..file_spellings import windows_drive

    if str(path) == "-":
        raise typer.BadParameter(f"idcli writes {what} here, not standard output; give ./- to mean {what} named -")
    # A command copied from a Windows machine: 'C:\renders\x' made a folder of that name in the current folder here.
    # 'C:/renders/x' where a folder 'C:' is (a Linux share) is that folder's.
    on_disk = "/" in str(path) and os.path.isdir(str(path).split("/", 1)[0])
    if (drive := windows_drive(str(path))) is not None and not os.path.lexists(path) and not on_disk:
        raise typer.BadParameter(f"'{path}' is a Windows path (on {drive}), which this machine cannot reach; give "
                                 f"{what} of this machine, with '/' between folders")
    return path


ShotListArg = Annotated[Path, typer.Argument(parser=given_path,
                                             help="Shot list (YAML, schema version 1).", show_default=False,
                                             metavar="FILE")]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", parser=written_folder,
                                             help="Output folder [default: renders/<project> in the "
                                                                   "current folder].")]
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
    "--face-models", parser=given_text_path,
    help="Folder of insightface ONNX models [default: $IDCLI_FACE_MODELS, else the preset's: "
    "synthetic for tiny presets, ~/.insightface/models/buffalo_l otherwise]. Never downloaded.")]
NoQaOpt = Annotated[bool, typer.Option("--no-qa", help="Skip identity QA (faces matched to the cast, recorded in "
                                       "each sidecar as qa).")]
QaLowIdentityOpt = Annotated[float | None, typer.Option(
    "--qa-low-identity", help="QA flags low_identity below this cosine to the character [default: 0.35].",
    show_default=False)]
QaLeakageOpt = Annotated[float | None, typer.Option(
    "--qa-leakage", help="QA flags leakage at or above this cosine to another character [default: 0.35].",
    show_default=False)]


def _version(value: bool) -> None:
    if value:
        from .output import emit

        emit(f"idcli {TOOL_VERSION}")  # a reader gone early (``idcli --version | true``) is not a failure
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    """Batch production of identity-consistent previs images from YAML shot lists."""


def parse_batch_size(value: str) -> int | str:
    """``--batch-size``: a number 1..1024 or ``auto``."""
    if value == "auto":
        return value
    if value.isdigit() and 1 <= int(value) <= 1024:
        return int(value)
    raise InputError(f"--batch-size {value}: give a number 1..1024 or 'auto'")


def qa_thresholds(low_identity: float | None, leakage: float | None) -> Any:
    """The QA thresholds from ``--qa-low-identity`` and ``--qa-leakage`` (each a cosine; its default when not given)."""
    from ..review.qa import LEAKAGE, LOW_IDENTITY, QAThresholds

    # Named by the option typed, not by QAThresholds' field ("QA threshold leakage=2.0").
    given = (("--qa-low-identity", low_identity, LOW_IDENTITY), ("--qa-leakage", leakage, LEAKAGE))
    for option, value, default in given:
        if value is not None and not -1.0 <= value <= 1.0:
            raise InputError(f"{option} {value:g}: give a cosine between -1 and 1 (default {default:g})")
    return QAThresholds(LOW_IDENTITY if low_identity is None else low_identity,
                        LEAKAGE if leakage is None else leakage)

