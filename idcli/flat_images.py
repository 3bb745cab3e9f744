"""A flat folder of images (``idcli verify FOLDER``): what an outside party is sent.

A studio's legal team or a festival usually gets PNGs copied out of a render's shot folders or out of a delivery,
each with its sidecar beside it or alone and signed, in one folder: no shot folders, no ``.idcli`` journal, no
``delivery.json``. verify refused such a folder ("no committed renders"), so the party could not check the frames at
all. Each PNG of the folder, at its top or in subfolders of its own (a delivery kept by scene, ``delivery/sc01/``),
is checked as what it is: against its sidecar beside it (a take's, or a delivered copy's) and its C2PA signature, or,
alone, on its signature only (``Valid``, ``Trusted`` under ``--trust``, made by idcli for the job its own record
names); an output or delivery folder kept inside it is left to its own check, and its images fail saying so. What
only a render's or a delivery's folder tells (which images were made, one missing or left out) is not checked, and the
report says so (``NOT_CHECKED``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import safeio
from .paths import real_path
from .store import MAX_IMAGE_BYTES

if TYPE_CHECKING:
    from .verify import FolderProblem, ImageCheck

KIND = "images"  # verify --json's folder.kind for such a folder ("output" and "delivery" for the others)
NOT_CHECKED = ("a flat folder of images (no render's output folder, no delivery.json): each PNG was checked against "
               "its sidecar beside it and its C2PA signature; not checked: which images the render or delivery made "
               "(one missing or left out is not seen)")
# Said of a PNG that passes with no sidecar beside it: what was checked is its signature, and no more.
ALONE = "no sidecar beside it, so checked on its signature alone"
NOT_A_FLAT_IMAGE = ("not a PNG of this folder of images (each PNG is checked against its sidecar beside it, or its "
                    "signature)")


def is_flat_folder(root: Path) -> bool:
    """Whether ``root`` is a folder of images, not a render's output folder (nor one inside it): no record of a render
    (``.idcli``'s journal or manifest), no take at its place (``SHOT/SHOT_tN.png``, or a take's sidecar beside the
    image it records), and PNGs in it. A delivery folder (``delivery.json``) is told before."""
    from .arguments import inside_output_folder

    return not (is_record_folder(root) or inside_output_folder(root) or _holds_a_take(root)) and any(
        kind == "png" for kind, _ in _flat_walk(root))  # stops at the first: check_flat_folder walks it all


def is_record_folder(path: Path) -> bool:
    """Whether ``path`` is a render's output folder (a render wrote its journal or manifest in its ``.idcli``: a lock
    alone says nothing, as arguments.inside_output_folder reads it) or a delivery folder: a folder with records of its
    own, which ``idcli verify`` given it checks more than a folder of images does."""
    from .delivery_checks import is_delivery_folder

    return is_delivery_folder(path) or any((path / ".idcli" / name).is_file()
                                           for name in ("journal.jsonl", "shotlist.jsonl"))


def _holds_a_take(root: Path) -> bool:
    """Whether ``root`` holds a take where a render leaves it: a PNG named as its shot folder's take, or a take's
    sidecar whose recorded ``image.path`` is the PNG beside it. A delivery kept as ``delivery/sc01/street_t1.png``
    holds pairs whose sidecars record ``street/street_t1.png``: they are at no take's place, and are a folder of
    images (read as an output folder, each failed as a take whose shot folder was renamed)."""
    from .verify import UnreadableSidecar, is_take_sidecar, load_sidecar

    for path in root.glob("*/*.png"):
        if not path.parent.name.startswith(".") and re.fullmatch(rf"{re.escape(path.parent.name)}_t\d+\.png",
                                                                  path.name):
            return True
    for path in root.glob("*/*.json"):
        try:
            sidecar, _ = load_sidecar(path)
        except UnreadableSidecar:
            continue
        if is_take_sidecar(sidecar) and sidecar["image"].get("path") == path.relative_to(root).with_suffix(
                ".png").as_posix():
            return True
    return False


def flat_pngs(root: Path) -> tuple[list[Path], list[Path], list[Path]]:
    """The PNGs of a folder of images, at its top and in its subfolders (``delivery/sc01/…``; by name, case aside;
    hidden files and folders aside, links not followed into folders), in path order; the subfolders left out as
    folders with records of their own (an output folder, a delivery folder), which ``idcli verify`` checks given; and
    the links to folders outside it, whose images nothing here checks (a link to a folder inside holds the images the
    walk finds where they are)."""
    found: dict[str, list[Path]] = {"png": [], "nested": [], "linked": []}
    for kind, path in _flat_walk(root):
        found[kind].append(path)
    return sorted(found["png"]), sorted(found["nested"]), sorted(found["linked"])


def _flat_walk(root: Path) -> Iterator[tuple[str, Path]]:
    """``flat_pngs``' findings as the walk comes on them: ``("png", path)``, ``("nested", folder)``, ``("linked",
    link)``."""
    inside = real_path(root)
    from .stray_images import walk

    for folder, folders, files in walk(root):
        here = Path(folder)
        kept = []
        for name in sorted(folders):
            if name.startswith("."):
                continue
            if os.path.islink(here / name):  # the walk lists it but does not enter it
                if not real_path(here / name).is_relative_to(inside):
                    yield "linked", here / name
            elif is_record_folder(here / name):
                yield "nested", here / name
            else:
                kept.append(name)
        folders[:] = kept
        for name in files:
            if not name.startswith(".") and Path(name).suffix.lower() == ".png":
                yield "png", here / name


def check_flat_folder(root: Path, trust_pem: str | None) -> tuple[list[ImageCheck], list[FolderProblem]]:
    """One ``verify.ImageCheck`` per PNG at the folder's top, and one failed per other image in it (a JPEG beside
    them, an image in a folder of it: nothing checks those), in path order; and the folder's own problems (a
    subfolder linked out of it, one it cannot read), which are no image."""
    from .stray_images import stray_images, stray_problem, unreadable_problem
    from .verify import FolderProblem, ImageCheck, file_entry

    images, nested, linked = flat_pngs(root)
    listed = set(images)
    # A take's --save-masks strip copied out with it (SHOT_tN.mask.png beside SHOT_tN.png) is idcli's own, as in an
    # output folder: it is left alone (stray_images' masks), not failed as a PNG with no sidecar.
    checks = [check_flat_image(root, image, trust_pem) for image in images
              if not (image.name.endswith(".mask.png") and image.with_name(image.name[:-9] + ".png") in listed)]
    seen = {real_path(root / check.image["path"]) for check in checks}
    # Each image's folders looked up in a set (the walk never enters a nested folder, so at most one holds it): a
    # scan of every nested folder per image took 35 s for 10,000 images in 1,000 output folders (docs/performance.md).
    kept_apart = set(nested)
    unreadable: list[tuple[Path, OSError]] = []
    for image in stray_images(root, seen, own_folders=(), unreadable=unreadable):
        inside = next((folder for folder in image.parents if folder in kept_apart), None)
        checks.append(ImageCheck(file_entry(root, image.with_suffix(".json")), file_entry(root, image), ok=False,
                                 problems=[nested_problem(root, inside) if inside
                                           else stray_problem(image, NOT_A_FLAT_IMAGE)]))
    # A link to a folder elsewhere is not followed (it may lead anywhere, the whole disk included): it fails the
    # folder, so that a folder whose scene is a link never passes with images nothing checked (until 2026-12-02 it
    # did, unnamed). It is no image: it was listed as one, the link as its image and its sidecar, and counted checked.
    # A subfolder the walk cannot read fails the folder the same way: its images are not checked (until 2026-12-02 it
    # was passed over without a word, as os.walk passes it over).
    problems = [FolderProblem(file_entry(root, link), linked_problem(root, link)) for link in linked]
    problems += [FolderProblem(file_entry(root, folder), unreadable_problem(root, folder, error))
                 for folder, error in unreadable]
    problems.sort(key=lambda problem: problem.path["path"])
    return sorted(checks, key=lambda check: check.image["path"]), problems


def linked_problem(root: Path, link: Path) -> str:
    """Why a link to a folder outside a folder of images fails: the images behind it are not the folder's, and are
    not checked."""
    shown = link.relative_to(root).as_posix()
    return (f"{shown} is a link to a folder outside this folder of images (to {real_path(link)}), which verify does "
            "not follow: the images there are not checked. Give that folder to idcli verify, or copy it in")


def nested_problem(root: Path, folder: Path) -> str:
    """Why an image of an output or delivery folder kept inside a folder of images is not checked with it: that
    folder's own check is stronger (which images were made, the journal), and is one command away."""
    from .delivery_checks import is_delivery_folder

    kind = "a delivery folder" if is_delivery_folder(folder) else "a render's output folder"
    shown = folder.relative_to(root).as_posix()
    return (f"in {shown}/, {kind} inside this folder of images, which is not checked as one of its images: "
            f"idcli verify {folder} checks it")


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
    from .verify import signature_alone, untrusted_signer

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
        unchecked = "" if state == "Trusted" else f". {untrusted_signer()}"
        check.notes = [] if check.problems else [f"{ALONE}: its C2PA manifest is {state}, a delivered copy of its "
                                                 f"take as idcli signed it{unchecked}"]
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
