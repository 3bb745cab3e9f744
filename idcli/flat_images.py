"""A flat folder of images (``idcli verify FOLDER``): what an outside party is sent.

A studio's legal team or a festival usually gets PNGs copied out of a render's shot folders or out of a delivery,
each with its sidecar beside it or alone and signed, in one folder: no shot folders, no ``.idcli`` journal, no
``delivery.json``. verify refused such a folder ("no committed renders"), so the party could not check the frames at
all. Each PNG at the folder's top is checked as what it is: against its sidecar beside it (a take's, or a delivered
copy's) and its C2PA signature, or, alone, on its signature only (``Valid``, ``Trusted`` under ``--trust``, made by
idcli for the job its own record names). What only a render's or a delivery's folder tells (which images were made,
one missing or left out) is not checked, and the report says so (``NOT_CHECKED``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import safeio
from .paths import real_path
from .store import MAX_IMAGE_BYTES

if TYPE_CHECKING:
    from .verify import ImageCheck

KIND = "images"  # verify --json's folder.kind for such a folder ("output" and "delivery" for the others)
NOT_CHECKED = ("a flat folder of images (no render's output folder, no delivery.json): each PNG was checked against "
               "its sidecar beside it and its C2PA signature; not checked: which images the render or delivery made "
               "(one missing or left out is not seen)")
# Said of a PNG that passes with no sidecar beside it: what was checked is its signature, and no more.
ALONE = "no sidecar beside it, so checked on its signature alone"
NOT_A_FLAT_IMAGE = ("not a PNG of this folder of images (each PNG is checked against its sidecar beside it, or its "
                    "signature)")


def top_pngs(root: Path) -> list[Path]:
    """The PNGs at the top of ``root`` (by name, case aside; hidden ones and folders aside), in name order."""
    return sorted(path for path in root.iterdir()
                  if not path.name.startswith(".") and path.suffix.lower() == ".png" and not path.is_dir())


def check_flat_folder(root: Path, trust_pem: str | None) -> list[ImageCheck]:
    """One ``verify.ImageCheck`` per PNG at the folder's top, and one failed per other image in it (a JPEG beside
    them, an image in a folder of it: nothing checks those), in path order."""
    from .stray_images import stray_images, stray_problem
    from .verify import ImageCheck, file_entry

    images = top_pngs(root)
    # A take's --save-masks strip copied out with it (SHOT_tN.mask.png beside SHOT_tN.png) is idcli's own, as in an
    # output folder: it is left alone (stray_images' masks), not failed as a PNG with no sidecar.
    checks = [check_flat_image(root, image, trust_pem) for image in images
              if not (image.name.endswith(".mask.png") and image.with_name(image.name[:-9] + ".png") in images)]
    seen = {real_path(root / check.image["path"]) for check in checks}
    for image in stray_images(root, seen, own_folders=()):
        checks.append(ImageCheck(file_entry(root, image.with_suffix(".json")), file_entry(root, image), ok=False,
                                 problems=[stray_problem(image, NOT_A_FLAT_IMAGE)]))
    return sorted(checks, key=lambda check: check.image["path"])


def check_flat_image(root: Path, image: Path, trust_pem: str | None) -> ImageCheck:
    """A PNG of a flat folder: against the sidecar beside it (a take's or a delivered copy's) when there is one, else
    on its signature alone."""
    from . import verify
    from .delivery_checks import check_copy, is_copy_sidecar

    sidecar_path = image.with_suffix(".json")
    check = verify.ImageCheck(verify.file_entry(root, sidecar_path), verify.file_entry(root, image), ok=False)
    if not os.path.lexists(sidecar_path):
        return _alone(check, image, trust_pem)
    try:
        sidecar, fault = verify.load_sidecar(sidecar_path)
    except verify.UnreadableSidecar as exc:
        check.c2pa, signature = verify.signature_without_sidecar(image, trust_pem)
        check.problems = [f"its sidecar {sidecar_path.name} is there but cannot be read ({exc.why}): edited after "
                          "it was sent? The image cannot be checked against it", *signature]
        return check
    if is_copy_sidecar(sidecar):  # a delivered copy's: checked as verify DEST checks it, its listing aside
        found = check_copy(root, sidecar_path, trust_pem)
        if found is not None:
            copy = found[0]
            copy.ok = not copy.problems
            return copy
    if not verify.is_take_sidecar(sidecar):
        check.c2pa, signature = verify.signature_without_sidecar(image, trust_pem)
        check.problems = [f"{sidecar_path.name} beside it is not an idcli sidecar, so the image cannot be checked "
                          "against it", *signature]
        return check
    check.ok = True
    if fault is not None:
        check.problems.append(verify.json_problem(fault, "its sidecar", sidecar_path.name))
    # The take's sidecar names the image at its place in the output folder (SHOT/SHOT_tN.png); here it is the one
    # beside it, bound to it by its sha256 (a sidecar swapped or moved fails that).
    return verify.check_against_sidecar(check, sidecar, image, trust_pem)


def _alone(check: ImageCheck, image: Path, trust_pem: str | None) -> ImageCheck:
    """A PNG with no sidecar beside it: it passes on its C2PA signature alone (a delivered copy's as ``verify DEST``
    checks one: ``c2pa.opened`` of its take, then ``c2pa.edited.metadata``), and fails unsigned: nothing here says
    what it should be."""
    from .provenance import read_png_record
    from .signing import EXTRA_HINT, available, carries_manifest
    from .verify import signature_alone

    try:
        data = safeio.read_regular(image, MAX_IMAGE_BYTES, follow_links=False)
    except safeio.NotRegularFile as exc:
        check.problems = [f"image {exc.kind}: {check.image['path']}"]
        return check
    unsigned = (f"not signed, and no sidecar beside it ({image.with_suffix('.json').name}): nothing here says what "
                "the image should be")
    record = read_png_record(data)
    if carries_manifest(data) and not available():
        check.problems = [f"signed, but its C2PA manifest cannot be checked here: {EXTRA_HINT}"]
    elif isinstance(record, dict) and isinstance(record.get("delivery"), dict):
        check.problems = _copy_alone(check, data, record, trust_pem) if carries_manifest(data) else [unsigned]
        state = (check.c2pa or {}).get("state")
        check.notes = [] if check.problems else [f"{ALONE}: its C2PA manifest is {state}, a delivered copy of its "
                                                 "take as idcli signed it"]
    else:
        check.c2pa, said, intact = signature_alone(image, trust_pem)
        check.problems = [] if intact else (said or [unsigned])
        check.notes = [f"{ALONE}: {said[0]}"] if intact else []
    check.ok = not check.problems
    return check


def _copy_alone(check: ImageCheck, data: bytes, record: dict[str, Any], trust_pem: str | None) -> list[str]:
    """What fails a signed delivered copy with no sidecar: its own record (its ``idcli`` chunk, the delivery record)
    stands for the sidecar, which holds that record and the hashes its manifest already covers."""
    from .delivery_checks import absolute_values, check_copy_manifest
    from .delivery_record import looks_absolute

    check.c2pa, problems = check_copy_manifest(data, record, trust_pem)
    paths = absolute_values(record, looks_absolute)
    return problems + ([f"its record names a local path at {paths[0]}"] if paths else [])
