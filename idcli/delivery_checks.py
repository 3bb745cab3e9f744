"""Checking a delivery folder (``idcli verify DEST``) and finding a delivered frame's take in the studio
(``idcli reproduce FRAME --from OUT``); the copies themselves are made by idcli/delivery.py.

A delivery folder is one with ``delivery.json``. Each copy passes when its bytes hash to its sidecar's sha256,
its ``idcli`` chunk is the sidecar's record (the same take), no record names an absolute path, the listing
agrees, and a signed copy's C2PA manifest validates (``Trusted`` with ``--trust``) with our delivery
assertion naming the sidecar's job key, the actions ``c2pa.opened`` then ``c2pa.edited.metadata``, and a
parent ingredient whose own manifest is idcli's render of that job (``c2pa.created``).
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import Any, TypeGuard

from .delivery import DELIVERY_ASSERTION, DELIVERY_FILE, EDITED_METADATA, MAX_DELIVERY_FILE_BYTES, OPENED
from .paths import real_path


def is_delivery_folder(root: Path) -> bool:
    return (root / DELIVERY_FILE).is_file()


def refuse_read_as_output_folder(root: Path, instead: str, given: str | Path | None = None) -> None:
    """Refuse a delivery folder where a render's output folder is read (``instead``: the rest of the sentence, what
    to give instead), before anything is read or written there: it holds copies of the picked takes, no renders."""
    if is_delivery_folder(root):
        from .errors import InputError

        named = root if given is None else given
        raise InputError(f"{named}: a delivery folder (it holds {DELIVERY_FILE}, from idcli deliver), not a render's "
                         f"output folder{instead}", file=named)


def refuse_render_into_delivery(out_dir: Path) -> None:
    """A render's --out that is a delivery folder is refused (exit 2) before anything is written: ``idcli verify``
    reads a folder with delivery.json as a delivery and would check its delivered copies only, never the takes
    rendered there. The mirror of ``idcli deliver`` refusing a DEST that is an output folder."""
    if is_delivery_folder(out_dir):
        from .errors import InputError
        from .option_words import Option

        raise InputError(f"{out_dir}: a delivery folder (it holds {DELIVERY_FILE}, from idcli deliver); takes "
                         "rendered there would be hidden from idcli verify, which checks only the delivered copies; "
                         "render into a folder of its own (", Option("out_dir", flag="--out"), ")", file=out_dir,
                         field="out_dir")


def check_delivery_folder(root: Path, trust_pem: str | None) -> tuple[list[Any], list[Any]]:
    """One ``verify.ImageCheck`` per delivered image (and per file the listing names that is missing), and the
    folder's own problems (``verify.FolderProblem``: a subfolder verify cannot read)."""
    from . import safeio
    from .verify import FolderProblem, ImageCheck, file_entry, sidecar_not_read

    checks: dict[str, Any] = {}
    hashes: dict[str, str | None] = {}  # image name -> its sha256 as read
    sidecars: dict[str, dict[str, Any]] = {}  # image name -> its sidecar
    for sidecar in sorted(root.glob("[!.]*.json")):
        if sidecar.name == DELIVERY_FILE:
            continue
        found = check_copy(root, sidecar, trust_pem)
        if found is not None:
            check, sha256, sidecars[found[0].image["path"]] = found
            hashes[check.image["path"]] = sha256
            checks[check.image["path"]] = check
    for image in sorted(root.glob("[!.]*.png")):
        if image.name not in checks:
            why = sidecar_not_read(image.with_suffix(".json"), is_copy_sidecar, "a delivered copy's sidecar")
            checks[image.name] = ImageCheck(
                file_entry(root, image.with_suffix(".json")), file_entry(root, image), ok=False,
                problems=[f"its sidecar {image.with_suffix('.json').name} is there but cannot be read ({why}): edited "
                          "after the delivery? Deliver again" if why else
                          "no sidecar beside it: not a whole delivered copy (deliver again)"])
    try:
        listing = json.loads(safeio.read_regular(root / DELIVERY_FILE, MAX_DELIVERY_FILE_BYTES, follow_links=False))
        entries = listing["images"]
        if not isinstance(entries, list):
            raise TypeError
        readable = True
    except (safeio.NotRegularFile, ValueError, RecursionError, KeyError, TypeError):
        entries, readable = [], False
        for check in checks.values():
            check.problems.append(f"{DELIVERY_FILE} is damaged: the delivery's listing cannot be checked")
    listed = set()
    for entry in entries:
        name = entry.get("image") if isinstance(entry, dict) else None
        if not isinstance(name, str) or Path(name).name != name:
            continue
        listed.add(name)
        check = checks.get(name)
        if check is None:
            checks[name] = ImageCheck(file_entry(root, root / Path(name).with_suffix(".json")),
                                      file_entry(root, root / name), ok=False,
                                      problems=[f"listed in {DELIVERY_FILE} but missing"])
        elif hashes.get(name) is None:  # its image was not hashed (its sidecar unread or naming another, said above)
            pass
        elif entry.get("sha256") != hashes[name]:
            check.problems.append(f"{DELIVERY_FILE} lists another sha256 for it")
        elif name in sidecars:
            check.problems += _listing_differs(entry, sidecars[name])
    for name in sorted(sidecars.keys() - listed) if readable else ():  # a damaged listing is said above
        checks[name].problems.append(f"not listed in {DELIVERY_FILE}: a copy added from another delivery or by hand, "
                                     "or one a delivery stopped before it listed it (deliver again)")
    # Every other image in the folder fails too (a JPEG beside the copies, a take in a folder): nothing checked it.
    from .stray_images import NOT_A_DELIVERED_COPY, stray_images, stray_problem, unreadable_problem

    seen = {real_path(root / check.image["path"]) for check in checks.values()}
    unreadable: list[tuple[Path, OSError]] = []
    for image in stray_images(root, seen, own_folders=(), masks=False, unreadable=unreadable):
        entry = file_entry(root, image)
        checks[entry["path"]] = ImageCheck(file_entry(root, image.with_suffix(".json")), entry, ok=False,
                                           problems=[stray_problem(image, NOT_A_DELIVERED_COPY)])
    problems = [FolderProblem(file_entry(root, folder), unreadable_problem(root, folder, error))
                for folder, error in unreadable]  # no image: counted apart, as an output folder's are (verify.py)
    for check in checks.values():
        check.ok = not check.problems
    return [checks[name] for name in sorted(checks)], problems


def _listing_differs(entry: dict[str, Any], sidecar: dict[str, Any]) -> list[str]:
    """What a copy's entry in ``delivery.json`` says otherwise than its sidecar (which take, of which job)."""
    delivery = sidecar.get("delivery") or {}
    source = found if isinstance(found := delivery.get("source"), dict) else {}
    listed = found if isinstance(found := entry.get("source"), dict) else {}
    facts = (("shot_id", entry.get("shot_id"), source.get("shot_id")), ("take", entry.get("take"), source.get("take")),
             ("signature", entry.get("signature"), delivery.get("signature")),
             ("job_key", listed.get("job_key"), source.get("job_key")),
             ("original sha256", listed.get("sha256"), source.get("sha256")))
    return [f"{DELIVERY_FILE} says {name} {said!r}, its sidecar {own!r}" for name, said, own in facts if said != own]


def check_copy(root: Path, sidecar_path: Path, trust_pem: str | None
                ) -> tuple[Any, str | None, dict[str, Any]] | None:
    """A delivered copy's check, its image's sha256 and its sidecar; None for a JSON file that is no copy's
    sidecar."""
    from . import safeio
    from .delivery_record import looks_absolute
    from .hashing import sha256_bytes
    from .provenance import read_png_record_checked, same_record
    from .signing import EXTRA_HINT, available, carries_manifest
    from .store import MAX_IMAGE_BYTES
    from .verify import ImageCheck, UnreadableSidecar, file_entry, json_problem, load_sidecar

    try:
        sidecar, fault = load_sidecar(sidecar_path)  # a key written twice, NaN: still a copy's sidecar, failed
    except UnreadableSidecar:
        return None
    if not is_copy_sidecar(sidecar):
        return None  # not a delivered copy's sidecar (a file someone added to the folder)
    image_path = sidecar_path.with_suffix(".png")
    check = ImageCheck(file_entry(root, sidecar_path), file_entry(root, image_path), ok=True)
    if fault is not None:
        check.problems.append(json_problem(fault, "its sidecar", sidecar_path.name))
    named = (sidecar.get("image") or {}).get("path") if isinstance(sidecar.get("image"), dict) else None
    if named == image_path.name and not real_path(image_path).is_relative_to(root.resolve()):
        # The sidecar records the copy beside it; a link leads out of the folder from there (said as verify OUT does).
        from .verify import link_out_problem

        check.problems.append(link_out_problem(image_path, check.image["path"], "delivery folder"))
        return check, None, sidecar
    if isinstance(named, str) and not real_path(sidecar_path.parent / named).is_relative_to(root.resolve()):
        # No image was moved there: the path was written (verify OUT says it in the same words, verify.check_image).
        check.problems.append(f"its sidecar {check.sidecar['path']} records image.path {named!r}, which leaves the "
                              f"delivery folder: a sidecar records the image beside it ({check.image['path']}); "
                              "edited by hand? The image is not checked against it")
        return check, None, sidecar
    if named != image_path.name:
        check.problems.append(f"its sidecar is the record of {named!r}, not of this image (moved or swapped)")
        return check, None, sidecar
    try:
        data = safeio.read_regular(image_path, MAX_IMAGE_BYTES, follow_links=False)
    except safeio.NotRegularFile as exc:
        check.problems.append(f"image {exc.kind}: {image_path.name}")
        return check, None, sidecar
    sha256 = sha256_bytes(data)
    if sha256 != sidecar["image"].get("sha256"):
        check.problems.append("the image does not match its sidecar's sha256 (changed after it was delivered)")
    record, not_json = read_png_record_checked(data)
    if not_json is not None:
        check.problems.append(json_problem(not_json, "the image's own record (its idcli chunk)"))
    expected = {k: v for k, v in sidecar.items() if k != "c2pa"}
    expected["image"] = {k: v for k, v in sidecar["image"].items() if k != "sha256"}
    # Compared field by field (walked with a stack: a record nested just under the parser's limit is no
    # RecursionError), NaN being NaN: ``record != expected`` held two NaN the same only when the parser handed
    # both sides one float object.
    if record is None or not same_record(record, expected):
        check.problems.append("its idcli record is not its sidecar's (another take's copy, or edited)")
    paths = absolute_values(sidecar, looks_absolute)
    if paths:
        check.problems.append(f"its record names a local path at {paths[0]}")
    block = found if isinstance(found := sidecar.get("c2pa"), dict) else {}
    signed = bool(block.get("signed")) or carries_manifest(data)
    if trust_pem and not signed:
        from .verify import not_signed

        check.problems.append(not_signed())
    if signed and not available():
        check.problems.append(f"signed, but its C2PA manifest cannot be checked here: {EXTRA_HINT}")
    elif signed:
        report, problems = check_copy_manifest(data, sidecar, trust_pem)
        check.c2pa = report
        check.problems += problems
    return check, sha256, sidecar


def is_copy_sidecar(sidecar: Any) -> TypeGuard[dict[str, Any]]:
    """Whether JSON read beside a delivered image is its copy's sidecar (one with a ``delivery`` block)."""
    return isinstance(sidecar, dict) and isinstance(sidecar.get("delivery"), dict)


def absolute_values(value: Any, looks_absolute: Any, where: str = "") -> list[str]:
    """The field paths of a record where ``looks_absolute`` finds a value (texts people wrote not counted), in field
    order. Walked with a stack: a sidecar nested as deep as JSON reads was a RecursionError of ``verify DEST``."""
    from .delivery_record import TEXT_KEYS

    hits: list[str] = []
    stack: list[tuple[str, Any]] = [(where, value)]
    while stack:
        at, item = stack.pop()
        if isinstance(item, dict):
            stack.extend(reversed([(f"{at}.{key}" if at else key, inner) for key, inner in item.items()
                                   if key not in TEXT_KEYS]))
        elif isinstance(item, list):
            stack.extend(reversed([(f"{at}[{i}]", inner) for i, inner in enumerate(item)]))
        elif isinstance(item, str) and looks_absolute(item):
            hits.append(at)
    return hits


def check_copy_manifest(data: bytes, sidecar: dict[str, Any], trust_pem: str | None
                        ) -> tuple[dict[str, Any], list[str]]:
    """What the C2PA reader says of a signed delivered copy, and what fails (see the module docstring)."""
    from .signing import ASSERTION_LABEL, COMPOSITE_SOURCE_TYPE, DIGITAL_SOURCE_TYPE, read_manifest

    report = read_manifest(data, trust_pem)
    shown = report.as_dict()
    problems: list[str] = []
    if not report.present:
        return shown, ["the sidecar says the copy was signed, but it carries no C2PA manifest"]
    if report.state not in ("Valid", "Trusted"):
        from .c2pa_words import invalid_manifest_problem

        return shown, [invalid_manifest_problem(report, trust_pem)]
    if trust_pem and report.state != "Trusted":
        from .verify import not_under_trust

        problems.append(not_under_trust())
    import c2pa

    with c2pa.Reader("image/png", io.BytesIO(data)) as reader:
        store = json.loads(reader.json())
    manifests = store.get("manifests") or {}
    active = manifests.get(store.get("active_manifest")) or {}
    actions, ours = _actions(active), _assertion(active, DELIVERY_ASSERTION)
    shown.update(job_key=(ours or {}).get("job_key"), actions=actions)
    job_key = sidecar.get("job_key")
    if actions[:1] != [OPENED] or EDITED_METADATA not in actions:
        problems.append(f"the manifest's actions are {actions}, not {OPENED} then {EDITED_METADATA}")
    if (ours or {}).get("job_key") != job_key:
        problems.append(f"the manifest's {DELIVERY_ASSERTION} assertion names another job key")
    if isinstance(block := sidecar.get("c2pa"), dict):  # who signed, and the copy's hash before its manifest
        from .verify import c2pa_block_problems

        problems += c2pa_block_problems(block, data, report)
    parents = [i for i in active.get("ingredients") or [] if i.get("relationship") == "parentOf"]
    parent = manifests.get(parents[0].get("active_manifest")) if len(parents) == 1 else None
    if parent is None:
        problems.append("the manifest has no parent ingredient carrying the take's own manifest")
        return shown, problems
    first: dict[str, Any] = next(iter(_actions(parent, full=True)), {})
    if first.get("action") != "c2pa.created" or first.get("digitalSourceType") not in (
            DIGITAL_SOURCE_TYPE, COMPOSITE_SOURCE_TYPE):
        problems.append("the parent ingredient's manifest does not say the take was created (trainedAlgorithmicMedia)")
    if (_assertion(parent, ASSERTION_LABEL) or {}).get("job_key") != job_key:
        problems.append(f"the parent ingredient's {ASSERTION_LABEL} assertion names another job key")
    if (ours or {}).get("source_sha256") != (sidecar.get("delivery", {}).get("source") or {}).get("sha256"):
        problems.append("the manifest names another original image (sha256) than the sidecar")
    return shown, problems


def _actions(manifest: dict[str, Any], full: bool = False) -> list[Any]:
    found = [a for item in manifest.get("assertions") or [] if str(item.get("label", "")).startswith("c2pa.actions")
             for a in (item.get("data") or {}).get("actions") or []]
    return found if full else [a.get("action") for a in found]


def _assertion(manifest: dict[str, Any], label: str) -> dict[str, Any] | None:
    """The data of the assertion ``label`` when it is an object: the signer writes it as they like (a list there was
    an internal error of ``verify DEST``)."""
    data = next((item.get("data") for item in manifest.get("assertions") or [] if item.get("label") == label), None)
    return data if isinstance(data, dict) else None


# -- reproduce: the take a delivered frame is a copy of ---------------------------------------------------


def original_take(image: Path, record: dict[str, Any], studio_out: str | Path | None) -> tuple[Path, list[str]]:
    """The studio's committed take a delivered copy was made from, and notes; ReproduceError saying how to
    find it when it cannot be found. Looked for in ``studio_out`` (``--from OUT``), else ``renders/PROJECT``
    under the current folder (render's default ``--out``): at the take's place, then among the takes a later
    render moved aside (``.idcli/superseded``), the first whose sha256 is the one recorded."""
    from .delivery_record import pixel_data
    from .reproduce import ReproduceError
    from .safeio import sha256_regular

    delivery = record.get("delivery") or {}
    source = found if isinstance(found := delivery.get("source"), dict) else {}
    shot, take, sha, key = source.get("shot_id"), source.get("take"), source.get("sha256"), source.get("job_key")
    project = record.get("project")
    if not (isinstance(shot, str) and type(take) is int and isinstance(sha, str)):
        raise ReproduceError(f"{image}: a delivery copy whose record does not name its take", file=image)
    # A delivered frame comes back from outside the studio: its record's names become paths and a glob here,
    # so each must be a name idcli could have written (no folder, no pattern), never a way out of OUT.
    if not _safe_name(shot):
        raise ReproduceError(f"{image}: a delivery copy whose record names its shot {shot!r}, which is no idcli "
                             "shot id (edited?); its take cannot be looked for", file=image)
    folders = [Path(studio_out)] if studio_out is not None else (
        [Path("renders") / project] if _safe_name(project) else [])
    for folder in folders:
        places = [folder / shot / f"{shot}_t{take}.png"]
        if isinstance(key, str) and re.fullmatch(r"[0-9a-f]{12}", key.rsplit(":", 1)[-1][:12]):
            kept = folder / ".idcli" / "superseded" / shot
            places += sorted(p for p in kept.glob(f"{shot}_t{take}.{key.rsplit(':', 1)[-1][:12]}*.png")
                             if not p.name.endswith(".mask.png"))
        for place in places:
            if os.path.isfile(place) and sha256_regular(place) == sha:
                notes = [f"{image.name} is a delivery copy of {place}: reproducing that take"]
                try:
                    if pixel_data(image.read_bytes()) == pixel_data(place.read_bytes()):
                        notes.append("the delivered copy's pixel data is the take's, unchanged")
                    else:
                        notes.append("the delivered copy's pixel data differs from the take's")
                except (OSError, ValueError):
                    pass
                return place, notes
    where = (f"; {folders[0]} holds no take {shot}_t{take} with sha256 {sha[:12]}… (re-rendered since? a "
             "superseded take is looked for too)") if folders and folders[0].is_dir() else ""
    from .option_words import EachSurface

    raise ReproduceError(f"{image}: a delivery copy (idcli deliver) of take {shot}_t{take} of project "
                         f"'{project}' (job key {key}, original sha256 {sha[:12]}…); its record names no local "
                         "file, so it is reproduced from the studio's output folder: ",
                         EachSurface(f"reproduce({str(image)!r}, delivered_from=OUT)",
                                     f"idcli reproduce {image} --from OUT"), where, file=image)


def _safe_name(value: Any) -> TypeGuard[str]:
    """Whether ``value`` is a shot id or project name as a shot list allows them (shotlist.check_safe_id)."""
    from .shotlist import check_safe_id

    try:
        return isinstance(value, str) and check_safe_id(value) == value
    except ValueError:
        return False
