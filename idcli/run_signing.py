"""A render run's C2PA signing (docs/provenance.md): the signer made from the credentials before any work, a
credential's error placed at its shot-list field, and the note on done images that stay unsigned.

Split from run.py; the signing itself is idcli/signing.py's, applied by the commit path.
"""

from __future__ import annotations

from typing import Any

from .option_words import Option, joined, words
from .plan import Job
from .run_report import Progress, RenderReport
from .shotlist import LoadedShotList
from .store import MAX_IMAGE_BYTES, OutputStore


def note_unsigned(store: OutputStore, jobs: list[Job], report: RenderReport, progress: Progress) -> None:
    """A signing run skips done images as any run does, so those rendered before signing was on stay
    unsigned (docs/provenance.md): say which, rather than leave the folder to look signed throughout."""
    from . import safeio
    from .signing import carries_manifest

    def signed(job: Job) -> bool:
        sidecar = store.read_sidecar(job) or {}
        if (sidecar.get("c2pa") or {}).get("signed"):
            return True
        if not sidecar.get("recovered"):
            # The commit path records c2pa in every sidecar it signs for, and a done job's image is the bytes
            # its sidecar names: no block, no signature. Reading each image cost 2,000 of them 1.6–3.8 s.
            return False
        try:  # a sidecar rebuilt from its PNG after a kill by an idcli before 2026-12-01 has no c2pa block
            return carries_manifest(safeio.read_regular(store.path(job.image_relpath), MAX_IMAGE_BYTES))
        except safeio.NotRegularFile:
            return False

    skipped = {o.job_key for o in report.jobs if o.status == "skipped"}
    unsigned = [job.stem for job in jobs if job.key in skipped and not signed(job)]
    if unsigned:
        shown = ", ".join(unsigned[:5]) + (f", … ({len(unsigned) - 5} more)" if len(unsigned) > 5 else "")
        again = joined(Option("force", True), Option("only", "SHOT"))
        progress.note(words((f"note: {len(unsigned)} image(s) already done were rendered without signing and stay "
                             f"unsigned ({shown}); ", again, " renders them again, signed")))


def signer_for(loaded: LoadedShotList, sign: bool | None) -> Any:
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
