"""Delivery: frames a studio can send out without its disk layout (``idcli deliver OUT DEST``).

A render's PNGs carry local paths in their record; that is right inside the studio (recovery, ``idcli
reproduce``) and wrong in a frame sent to a client, a vendor or a festival. ``deliver`` writes copies into
DEST, leaving OUT as it is:

1. which takes: per shot of the shot list (in its order) the director's select (``selects.json``), else the
   shot's take that stands for it (the first take QA did not flag, else the first, as on the review page
   and in the animatic); every take with ``all_takes``; only ``shots`` when given;
2. each take checked against its sidecar (a retouched or damaged image is not delivered) and, when signed,
   its C2PA manifest validated and read for local paths;
3. each copy made (idcli/delivery_record.py): the same pixel chunks, the ``parameters`` chunk without paths,
   the ``idcli`` chunk replaced by the path-free delivery record; a signed take's copy signed anew (C2PA
   ``c2pa.opened`` of the take as its parent ingredient, then ``c2pa.edited.metadata``) with the
   ``IDCLI_C2PA_*`` credentials ``render --sign`` uses, or delivered unsigned only with ``unsigned=True``;
4. every copy, sidecar and ``delivery.json`` checked to name no local path, then written atomically (image,
   then sidecar, then ``delivery.json``); an existing different file is replaced only with ``force``.

Nothing is written until every take has passed 1-3. ``check_delivery_folder`` is ``idcli verify DEST``;
``original_take`` finds a delivered frame's take in the studio (``idcli reproduce FRAME --from OUT``).
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .arguments import ShotIds, check_out_dir_is_folder
from .errors import InputError, OutputError, ProjectMismatchError
from .option_words import Option, words
from .paths import absolute
from .shared_files import make_folders

if TYPE_CHECKING:
    from .signing import Credentials

DELIVERY_FILE = "delivery.json"
DELIVERY_ASSERTION = "org.idcli.delivery"
OPENED, EDITED_METADATA = "c2pa.opened", "c2pa.edited.metadata"
MAX_DELIVERY_FILE_BYTES = 16 * 1024 * 1024
SIGNATURE_NOTES = {"carried": "signed: carried (new manifest, the take as parent)",
                   "not-carried": "signed take delivered UNSIGNED: its signature was not carried (--unsigned)",
                   "none": "unsigned"}


class DeliveryError(InputError):
    """A delivery that cannot be made as asked (exit 2); nothing was written."""


@dataclass
class Delivered:
    """One delivered copy: which take it is, where it went, what happened to the file there."""

    shot_id: str
    take: int
    selected: bool
    image: str  # the copy's file name in DEST
    sidecar: str
    sha256: str
    signature: str  # carried, not-carried or none
    source: dict[str, Any]  # job_key, image {path, abs_path} in OUT, sha256
    random_weights: bool
    status: str = "written"  # written, replaced, unchanged
    selection_stale: bool = False  # the select's take was re-rendered after it was picked

    def listing(self, project: str) -> dict[str, Any]:
        """Its entry in ``delivery.json`` (no local path: the take by its file name)."""
        return {"project": project, "shot_id": self.shot_id, "take": self.take, "selected": self.selected,
                "image": self.image, "sidecar": self.sidecar, "sha256": self.sha256, "signature": self.signature,
                "random_weights": self.random_weights,
                "source": {"job_key": self.source["job_key"], "image": Path(self.source["image"]["path"]).name,
                           "sha256": self.source["sha256"]}}


@dataclass
class DeliveryReport:
    """What ``deliver`` did: the copies (``images``, one ``Delivered`` each, in shot-list order), the notes the
    command prints, and its exit code; ``as_dict()`` is the ``idcli deliver --json`` document."""

    out_dir: str
    dest: str
    project: str
    images: list[Delivered] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    exit_code: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The ``idcli deliver --json`` document (docs/delivery.md)."""
        dest = Path(self.dest)
        counts = {"written": 0, "replaced": 0, "unchanged": 0}  # every status, so a script can read any
        for item in self.images:
            counts[item.status] = counts.get(item.status, 0) + 1
        return {"ok": True, "exit_code": self.exit_code, "error": None, "out_dir": self.out_dir, "dest": self.dest,
                "project": self.project, "counts": counts,
                "delivery": {"path": DELIVERY_FILE, "abs_path": str(dest / DELIVERY_FILE)},
                "images": [{"shot_id": i.shot_id, "take": i.take, "selected": i.selected, "status": i.status,
                            "image": {"path": i.image, "abs_path": str(dest / i.image)},
                            "sidecar": {"path": i.sidecar, "abs_path": str(dest / i.sidecar)}, "sha256": i.sha256,
                            "signature": i.signature, "random_weights": i.random_weights,
                            "selection_stale": i.selection_stale, "source": i.source} for i in self.images],
                "notes": self.notes}


@dataclass
class _Copy:
    """A copy made in memory, not yet written."""

    item: Delivered
    png: bytes
    sidecar: bytes


def delivered_name(shot_id: str, take: int) -> str:
    """``SHOT_takeN``: a shot id is already a safe file name on every system (shotlist.check_safe_id)."""
    return f"{shot_id}_take{take}"


# -- 1. which takes ------------------------------------------------------------------------------------


def _check_folders(root: Path, dest: Path) -> None:
    check_out_dir_is_folder(root, DeliveryError)
    out, target = root.resolve(), dest.resolve()
    if target == out or target.is_relative_to(out):
        raise DeliveryError(f"{dest}: inside the output folder {root}; deliver into a folder of its own "
                            "(a delivery copy in OUT would be read as a take)", file=dest, field="dest")
    if out.is_relative_to(target):
        raise DeliveryError(f"{dest}: holds the output folder {root}, whose local records would go out with the "
                            "delivery; deliver into a folder of its own", file=dest, field="dest")
    if dest.exists() and not dest.is_dir():
        raise OutputError(f"{dest}: not a folder")
    from .store import STATE

    if (dest / STATE).is_dir():  # verify reads a folder with delivery.json as a delivery: its renders unchecked
        raise DeliveryError(f"{dest}: an idcli output folder (it holds {STATE}/); a delivery there would hide its "
                            "renders from idcli verify; deliver into a folder of its own", file=dest, field="dest")


def parse_shots(shots: ShotIds | None) -> list[str] | None:
    """The shot ids ``deliver``'s ``shots`` names (ids separated by commas, or a list of them), each once; None: all."""
    if shots is None:
        return None
    if not isinstance(shots, str) and not (isinstance(shots, (list, tuple, set, frozenset))
                                           and all(isinstance(s, str) for s in shots)):
        raise InputError(f"shots={shots!r:.60}: give a shot id, ids separated by commas, or a list of them",
                         field="shots")
    names = [s.strip() for part in ([shots] if isinstance(shots, str) else shots) for s in str(part).split(",")]
    names = [n for n in names if n]
    if not names:
        raise DeliveryError(Option("shots"), ": give shot ids separated by commas (e.g. ",
                            Option("shots", "sc01_sh010,sc01_sh020"), ")", field="shots")
    return list(dict.fromkeys(names))


def _choose(run: Any, live: set[tuple[str, int]] | None, wanted: list[str] | None, all_takes: bool,
            notes: list[str]) -> list[tuple[Any, Any, bool, bool]]:
    """(shot, take, selected, selection_stale) per take to deliver, in shot-list order."""
    from .review.runs import default_take
    from .suggest import did_you_mean

    in_list = {s.id: s for s in run.shots if s.entry is not None or live is None}
    # Indexed once: a scan of the run per shot asked for was quadratic in a film's shots.
    by_id: dict[str, Any] = {}
    for s in run.shots:
        by_id.setdefault(s.id, s)
    asked = set(wanted) if wanted is not None else None
    if wanted is not None:
        problems: list[object] = []  # the message's parts: each shot asked for named as the surface names it
        for name in wanted:
            shot = by_id.get(name)
            if shot is None:
                hint = did_you_mean(name, [s.id for s in run.shots])
                problems += [Option("shots", name), f": no such shot in {run.root}" + (f" ({hint})" if hint else ""),
                             "; "]
            elif name not in in_list:
                problems += [Option("shots", name), f": an orphan, no longer in the shot list {run.root} was last "
                             "rendered from; put it back in the shot list to deliver it", "; "]
            elif not shot.takes:
                problems += [Option("shots", name), ": not rendered yet", "; "]
        if problems:
            raise DeliveryError(*problems, "nothing was delivered", field="shots")
    chosen, orphan_picks = [], []
    unpassed: list[Any] = []  # the take delivered of each shot nobody picked whose every take QA flagged
    gone: list[Any] = []  # shots no longer in the shot list (renamed or removed) with a pick: said, as review says them
    unrendered: list[str] = []  # shots of the shot list with no take yet: left out, said in one note
    unpicked: list[tuple[Any, list[Any]]] = []  # (shot, its takes) of the shots asked for, delivered with no select
    for shot in run.shots:
        if shot.id not in in_list and shot.picked_take is not None:  # its take's image deleted too, as review says
            gone.append(shot)
        if shot.id not in in_list or (asked is not None and shot.id not in asked):
            continue
        takes = [t for t in shot.takes if live is None or (shot.id, t.take) in live]
        _follow_the_picked_image(shot, takes, notes)
        if shot.selected is not None and shot.selected not in takes:  # the shot list cut the picked take since
            orphan = (f"{shot.id}: the director's select, take {shot.selected.take}, is no longer in the shot list "
                      f"{run.root} was last rendered from")
            if not all_takes:  # another take delivered as the shot would silently change the pick
                orphan_picks.append(orphan)
                continue
            notes.append(f"{orphan}: not delivered")
        if not takes:
            unrendered.append(shot.id)
            continue
        if asked is not None and shot.selected is None:
            unpicked.append((shot, takes))
        if all_takes:
            chosen += [(shot, t, shot.selected is t, shot.selection_stale and shot.selected is t) for t in takes]
        elif shot.selected is not None:
            chosen.append((shot, shot.selected, True, shot.selection_stale))
        else:
            chosen.append((shot, default_take(takes), False, False))  # as the page and the animatic
            if all(t.flags for t in takes):  # no take passed QA: the first goes out, said (it leaves the studio)
                unpassed.append(chosen[-1][1])
    if orphan_picks:
        raise DeliveryError("; ".join(orphan_picks) + f"; pick a take it has (idcli select {run.root} SHOT=N) or "
                            "give the shot its takes back, or deliver ", Option("all_takes", True),
                            "; nothing was delivered")
    if unrendered:
        notes.append(f"{len(unrendered)} shot(s) of the shot list not rendered yet, not delivered: "
                     f"{', '.join(unrendered[:10])}{' ...' if len(unrendered) > 10 else ''} ({run.render_command} "
                     "renders them)")
    if gone and asked is None:
        notes.append(_gone_note(gone, run.root))
    elif gone:
        notes += _renamed_picks(gone, unpicked, run.root)
    if unpassed:  # in export's words (one helper): the animatic shows the same takes
        from .review.qa_findings import unpassed_note

        notes.append(unpassed_note(unpassed, run.root, "delivered", "deliver", run.render_command))
    if not chosen:
        raise DeliveryError(f"{run.root}: no rendered take to deliver",
                            *((" among ", Option("shots")) if wanted else ()))
    names: dict[str, str] = {}
    for shot, take, _sel, _stale in chosen:  # SHOT_take1 and shot_take1 are one file on macOS and Windows
        name = delivered_name(shot.id, take.take)
        other = names.setdefault(name.lower(), name)
        if other != name:
            raise DeliveryError(f"shots {other.rsplit('_take', 1)[0]} and {shot.id} differ only in case: delivered, "
                                "they would be one file on macOS and Windows; deliver them with ", Option("shots"),
                                " separately into two folders, or rename one")
    return chosen


def _gone_note(gone: list[Any], root: Path, unpicked: list[Any] | None = None) -> str:
    """The note naming the picks of shots no longer in the shot list (``gone``), as review's and export's notes name
    them; ``unpicked``: shots asked for with ``shots`` and delivered without a select, which may be renamed ones."""
    from .errors import printable

    names = [f"{printable(shot.id)}=t{shot.picked_take}" for shot in gone]
    maybe = (f"; {', '.join(printable(shot.id) for shot in unpicked)}, delivered without a select, may be "
             f"{'one' if len(unpicked) == 1 else 'ones'} renamed") if unpicked else ""
    return (f"{len(names)} select(s) of shots no longer in the shot list (renamed or removed) are not delivered: "
            f"{', '.join(names[:10])}{' ...' if len(names) > 10 else ''} (renamed: pick again under the new id, "
            f"idcli select {root} SHOT=N; removed: SHOT=none clears the pick){maybe}")


def _renamed_picks(gone: list[Any], unpicked: list[tuple[Any, list[Any]]], root: Path) -> list[str]:
    """What a delivery of the shots named (``shots``) says of the picks of shots no longer in the shot list
    (``gone``): a pick can only have been lost by a rename of a shot asked for with no select of its own
    (``unpicked``: each with its shot list's takes). Where one of its takes holds the picked image (job keys leave
    the shot id out, so a rename keeping the seeds reuses it), the note names both ids and that take; else, while a
    shot asked for has no select, the picks are named as for a whole delivery (``_gone_note``), with those shots.
    Nothing is said to a delivery whose shots all have their select."""
    from .errors import printable

    notes, linked, left = [], set(), list(gone)
    for shot, takes in unpicked:
        for old in left:
            # picked without a key: the take's as rendered (an unrendered pick has its key: Shot.unrendered_pick)
            recorded = old.picked_key if old.picked_key is not None or old.selected is None else old.selected.job_key
            holding = next((t for t in takes if isinstance(recorded, str) and t.job_key == recorded), None)
            if holding is not None:
                new = printable(shot.id)
                notes.append(f"{new}: no select under its new id; the director picked {printable(old.id)} take "
                             f"{old.picked_take} before the shot was renamed, whose image is {new} take "
                             f"{holding.take} now: pick it there (idcli select {root} {new}={holding.take}), then "
                             "deliver again")
                linked.add(shot.id)
                left.remove(old)
                break
    others = [shot for shot, _takes in unpicked if shot.id not in linked]
    if left and others:
        notes.append(_gone_note(left, root, others))
    return notes


# -- 2./3. each copy, in memory --------------------------------------------------------------------------


def _random_weights(record: dict[str, Any]) -> bool:
    from .random_mark import made_by_random_weights

    return made_by_random_weights(record)


def _follow_the_picked_image(shot: Any, takes: list[Any], notes: list[str]) -> None:
    """A select whose picked image another take holds now is that take's (as ``idcli select`` moves it): a seed
    inserted into ``seeds:`` shifts the takes and render reuses the picked pixels at the next one, while the picked
    take holds a render the director never saw. Delivering it would send other pixels than were picked, said only as
    "re-rendered after it was picked"; the take holding them (the first, when several alike do) goes out instead,
    said. The shot's ``selected`` and ``selection_stale`` are set to it, so the listing marks it as the select.
    Likewise a select beyond the shot's takes now (``takes``: the shot list's) whose image one of them holds: the pick
    moved with a seed inserted, then the seed taken out again, puts the picked pixels back at the earlier take; and a
    select of a take not rendered now (its image file deleted: ``unrendered_pick``) whose image one of them holds."""
    from .review.pick_standing import held_words, select_shown

    shown, holding = select_shown(shot, takes)  # the review page, the animatic and the contact sheet show it alike
    if shot.picked_take is None or shown is None or not holding:
        return
    notes.append(f"{shot.id}: the director's select: {held_words(shot.picked_take, holding)}; delivered take "
                 f"{shown.take} (idcli select records the pick there)")
    shot.selected, shot.unrendered_pick = shown, None  # a pick of a take not rendered now, too (its image deleted)
    shot.selection_stale = False


def _make_copy(root: Path, shot: Any, take: Any, selected: bool, stale: bool, signing: _Credentials,
               render_command: str) -> _Copy:
    """``render_command``: ``Run.render_command``, the render of this folder the refusals advise."""
    from . import safeio
    from .delivery_record import (
        PngFormatError,
        delivered_png,
        delivery_record,
        leaks,
        local_strings,
        parameters_without_paths,
        text_chunk,
        text_payloads,
    )
    from .hashing import sha256_bytes
    from .provenance import (
        NotJsonNumber,
        RepeatedKey,
        read_png_record,
        read_png_record_checked,
        record_differences,
        record_of_sidecar,
    )
    from .signing import carries_manifest
    from .store import MAX_IMAGE_BYTES

    sidecar = take.record
    image_path = root / take.image
    try:
        data = safeio.read_regular(image_path, MAX_IMAGE_BYTES, follow_links=False)
    except safeio.NotRegularFile as exc:
        raise DeliveryError(f"{image_path}: cannot read it ({exc.kind}); nothing was delivered",
                            file=image_path) from None
    if sha256_bytes(data) != take.image_sha256:
        raise DeliveryError(f"{image_path}: changed since it was committed (its sha256 is not its sidecar's): a "
                            "retouched or damaged take is not delivered with the render's record; idcli verify "
                            f"{root} shows it (re-render it, or restore it); nothing was delivered", file=image_path)
    # The delivered record is made from the sidecar: it must still say what the image's own record says (a sidecar
    # edited by hand keeps the image's sha256, so the check above cannot see it).
    own = {k: v for k, v in sidecar.items() if k not in ("sidecar", "orphan")}  # paths the scan added
    # A record holding NaN on both sides is no difference (provenance.record_differences), but it is no JSON either:
    # the delivery's readers are not Python's json. Said for what it is, before anything is written.
    fault = read_png_record_checked(data)[1]
    if isinstance(fault, NotJsonNumber):
        raise DeliveryError(f"{image_path}: its own record (its idcli chunk) holds {fault.token} at "
                            f"{fault.field[:80]}, which is not JSON (RFC 8259 has no NaN or Infinity) and other "
                            "readers refuse it: edited after the render? Re-render the take; nothing was delivered",
                            file=image_path)
    if isinstance(fault, RepeatedKey):  # compared as Python reads it (the last value), it would go out as it is
        raise DeliveryError(f"{image_path}: its own record (its idcli chunk) writes the key {fault.key[:40]!r} twice, "
                            "which readers read two ways: edited after the render? Re-render the take; nothing was "
                            "delivered", file=image_path)
    if record_differences(record_of_sidecar(own), read_png_record(data)):
        raise DeliveryError(f"{root / take.sidecar}: this sidecar no longer says what its image holds as its own "
                            "record (its idcli chunk): edited after the render? A delivery carries the render's record "
                            "as it was rendered; put the sidecar back or re-render the take; nothing was delivered",
                            file=root / take.sidecar)
    try:  # the same on both sides, 1e999 (JSON, read as infinity) would be written out as `Infinity`, which is not
        json.dumps(own, allow_nan=False)
    except ValueError:
        raise DeliveryError(f"{root / take.sidecar}: its record holds a number past JSON's range (1e999 reads as "
                            "infinity), which a delivered record cannot carry: edited after the render? Re-render the "
                            "take; nothing was delivered", file=root / take.sidecar) from None
    block = sidecar.get("c2pa") if isinstance(sidecar.get("c2pa"), dict) else {}
    signed = bool(block.get("signed")) or carries_manifest(data)
    credentials = signing.get(image_path) if signed else None
    signature = "none" if not signed else ("carried" if credentials is not None else "not-carried")
    forbidden = local_strings(sidecar, str(absolute(root)))
    if signature == "carried":
        _check_parent(image_path, data, forbidden, f"{render_command} --only {shot.id} --force --sign")
    name = delivered_name(shot.id, take.take)
    record = delivery_record(sidecar, delivered_name=f"{name}.png", source_name=image_path.name,
                             source_sha256=take.image_sha256, signature=signature,
                             source_unsigned_sha256=block.get("unsigned_sha256") if signed else None)
    try:
        parameters = text_chunk(data, "parameters")
        png = delivered_png(data, record, parameters_without_paths(parameters, sidecar) if parameters else None)
    except PngFormatError as exc:
        raise DeliveryError(f"{image_path}: not a whole PNG ({exc}); nothing was delivered", file=image_path) from None
    written = dict(record, image=dict(record["image"]))
    if credentials is not None:  # signature "carried"
        unsigned_png = png
        png = sign_copy(unsigned_png, data, record, credentials)
        written["c2pa"] = {"signed": True, "assertion": DELIVERY_ASSERTION,
                           "unsigned_sha256": sha256_bytes(unsigned_png), **credentials.record()}
    written["image"]["sha256"] = sha256_bytes(png)
    sidecar_bytes = (json.dumps(written, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
    hits = leaks(text_payloads(png), forbidden) + leaks(sidecar_bytes, forbidden)
    if signature == "carried":
        hits += leaks(_store_json(png).encode("utf-8"), forbidden)
    if hits:
        raise DeliveryError(f"{image_path}: its delivered copy would still name {sorted(set(hits))[0]!r} (in its "
                            "prompt, or a field idcli does not know how to reduce); nothing was delivered",
                            file=image_path)
    item = Delivered(shot.id, take.take, selected, f"{name}.png", f"{name}.json", written["image"]["sha256"],
                     signature, {"job_key": take.job_key, "image": {"path": take.image, "abs_path": str(
                         absolute(image_path))}, "sha256": take.image_sha256},
                     _random_weights(sidecar), selection_stale=stale)
    return _Copy(item, png, sidecar_bytes)


def _store_json(png: bytes) -> str:
    """The C2PA manifest store of PNG bytes as c2pa-python's Reader gives it (JSON text)."""
    import c2pa

    with c2pa.Reader("image/png", io.BytesIO(png)) as reader:
        return reader.json()


def _check_parent(image_path: Path, data: bytes, forbidden: set[str], render_again: str) -> None:
    """A signed take becomes the copy's parent ingredient, its manifest store embedded whole: it must be valid,
    and name no local path (our ``org.idcli.render`` assertion named a plate's path and a local model's folder
    before idcli wrote names only). ``render_again``: the command that renders the take signed again, into this
    folder (without its ``--out`` it rendered into ``renders/<project>``)."""
    from .delivery_record import leaks
    from .signing import read_manifest

    report = read_manifest(data)
    if report.state not in ("Valid", "Trusted"):
        detail = "; ".join(report.failures or []) or report.error or "no detail"
        raise DeliveryError(f"{image_path}: its C2PA manifest does not validate ({report.state}: {detail}); a "
                            "broken signature cannot be carried; nothing was delivered", file=image_path)
    hits = leaks(_store_json(data).encode("utf-8"), forbidden)
    if hits:
        raise DeliveryError(
            f"{image_path}: its C2PA manifest, signed when it was rendered, names {hits[0]!r}; carried as the copy's "
            f"parent ingredient it would go out with the delivery. Render the take again signed ({render_again}: "
            "this idcli signs file names only), or deliver with ", Option("unsigned", True),
            " (its signature is then not carried); nothing was delivered", file=image_path)


def sign_copy(png: bytes, original: bytes, record: dict[str, Any], credentials: Any) -> bytes:
    """Sign a delivered copy: a new manifest whose actions are ``c2pa.opened`` (the signed take, its parent
    ingredient, its own manifest embedded) and ``c2pa.edited.metadata`` (only the metadata changed), and the
    ``org.idcli.delivery`` assertion (which take, by job key and sha256)."""
    from .signing import digital_source_type, sign_with_manifest
    from .versions import TOOL_NAME, TOOL_VERSION

    source = record["delivery"]["source"]
    manifest = {
        "claim_generator_info": [{"name": TOOL_NAME, "version": TOOL_VERSION}],
        "title": record["image"]["path"], "format": "image/png",
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [
                # The take's AI marking repeated where a reader of the active manifest alone looks for it (c2pa-js's
                # createL2ManifestStore, behind the Content Credentials pop-up): in the ingredient only, it went unseen.
                {"action": OPENED, "digitalSourceType": digital_source_type(record),
                 "parameters": {"ingredientIds": ["parent"]}},
                {"action": EDITED_METADATA, "softwareAgent": {"name": TOOL_NAME, "version": TOOL_VERSION},
                 "description": "delivery copy: the rendered pixels unchanged; local paths removed from the "
                                "metadata (idcli deliver)"}]}},
            {"label": DELIVERY_ASSERTION, "data": {
                "job_key": source["job_key"], "shot_id": source["shot_id"], "take": source["take"],
                "source_image": source["image"], "source_sha256": source["sha256"],
                "random_weights": _random_weights(record)}},
        ],
    }
    parent = ({"title": source["image"], "relationship": "parentOf", "label": "parent"}, original)
    return sign_with_manifest(credentials, png, manifest, parent=parent,
                              what=f"the delivered {record['image']['path']}")


# -- 4. writing ------------------------------------------------------------------------------------------


def _existing(dest: Path, copy: _Copy) -> str:
    """What is at a copy's place in DEST: ``free``, ``same`` (this delivery of this take, whole), ``ours`` (an
    interrupted delivery of this take: an image without its sidecar) or ``other``."""
    from . import safeio
    from .hashing import sha256_bytes
    from .provenance import read_png_record
    from .store import MAX_IMAGE_BYTES, MAX_SIDECAR_BYTES

    image, sidecar = dest / copy.item.image, dest / copy.item.sidecar
    for path in (image, sidecar):
        if path.is_symlink() or path.is_dir():
            raise OutputError(f"{path}: a {'link' if path.is_symlink() else 'folder'} where a delivered file goes; "
                              "idcli writes no file through a link or over a folder")
    if not image.exists() and not sidecar.exists():
        return "free"
    try:
        data = safeio.read_regular(image, MAX_IMAGE_BYTES, follow_links=False)
    except safeio.NotRegularFile:
        return "other"
    want = copy.item.source["sha256"], copy.item.signature
    if sidecar.exists():
        try:
            old = json.loads(safeio.read_regular(sidecar, MAX_SIDECAR_BYTES, follow_links=False))
            delivery, recorded = old["delivery"], old["image"]["sha256"]
            same = (delivery["source"]["sha256"], delivery["signature"]) == want and recorded == sha256_bytes(data)
        except (safeio.NotRegularFile, ValueError, RecursionError, KeyError, TypeError):
            return "other"
        return "same" if same else "other"
    record = read_png_record(data) or {}
    delivery = found if isinstance(found := record.get("delivery"), dict) else {}
    source = found if isinstance(found := delivery.get("source"), dict) else {}
    return "ours" if source.get("sha256") == want[0] else "other"


def _what_is_there(dest: Path, copy: _Copy) -> str:
    """Why a file at a copy's place is not this delivery's, as its sidecar there tells (for the refusal)."""
    from . import safeio
    from .store import MAX_SIDECAR_BYTES

    try:
        old = json.loads(safeio.read_regular(dest / copy.item.sidecar, MAX_SIDECAR_BYTES, follow_links=False))
        delivery = old["delivery"]
        source, signature = delivery["source"], delivery["signature"]
        shot, take, sha256 = source["shot_id"], source["take"], source["sha256"]
    except (safeio.NotRegularFile, ValueError, RecursionError, KeyError, TypeError):
        return "not a delivered copy of this take"
    if (shot, take) != (copy.item.shot_id, copy.item.take):
        return f"a copy of {shot} take {take}"
    if sha256 != copy.item.source["sha256"]:
        return f"another render of {shot} take {take}: re-rendered (or restored) since it was delivered"
    if signature != copy.item.signature:
        return f"this take delivered with signature {signature}, this delivery's is {copy.item.signature}"
    return "changed after it was delivered"


def read_listing(dest: Path, project: str, force: bool) -> list[dict[str, Any]]:
    """The entries of DEST's delivery.json (an earlier delivery), or [] when there is none."""
    from . import safeio

    path = dest / DELIVERY_FILE
    try:
        old = json.loads(safeio.read_regular(path, MAX_DELIVERY_FILE_BYTES, follow_links=False))
        entries = old["images"]
        if old.get("kind") != "idcli-delivery" or not isinstance(entries, list):
            raise ValueError
    except safeio.NotRegularFile as exc:
        if exc.kind == "missing":
            return []
        raise OutputError(f"{path}: not a regular file ({exc.kind})") from None
    except (ValueError, RecursionError, KeyError, TypeError, UnicodeDecodeError):
        if force:
            return []
        raise DeliveryError(f"{path}: not an idcli delivery listing; ", Option("force", True), " replaces it, or "
                            "deliver into another folder", file=path) from None
    other = old.get("project")
    if other not in (None, project) and not force:
        raise ProjectMismatchError(f"{dest}: holds a delivery of project '{other}', not '{project}'; deliver into "
                                   "another folder (or ", Option("force", True), " to add to it)", file=path)
    return [e for e in entries if isinstance(e, dict) and isinstance(e.get("image"), str)]


def _listing(dest: Path, run: Any, copies: list[_Copy], earlier: list[dict[str, Any]]) -> bytes:
    from .provenance import now
    from .versions import TOOL_NAME, TOOL_VERSION

    order: dict[str, int] = {}
    picks: dict[str, int | None] = {}  # each shot's pick now (one pass over a film's shots for both)
    for i, s in enumerate(run.shots):
        order[s.id], picks[s.id] = i, (s.selected.take if s.selected is not None else None)
    ours = {c.item.image: c.item.listing(run.project) for c in copies}
    kept = [e for e in earlier if e["image"] not in ours and "/" not in e["image"] and "\\" not in e["image"]
            and (dest / e["image"]).is_file()]
    # A kept entry of this project says whether its take is its shot's pick now: after a changed pick (or one
    # cleared) the take picked before must not stay listed as the director's select beside the new one. An entry
    # edited to name no take (None, like a shot without a pick) is no shot's pick.
    kept = [dict(e, selected=type(e.get("take")) is int and e["take"] == picks[e["shot_id"]])
            if e.get("project") == run.project and isinstance(e.get("shot_id"), str) and e["shot_id"] in picks
            else e for e in kept]

    def place(entry: dict[str, Any]) -> tuple[int, str, int]:
        # Kept entries are an earlier file's, perhaps hand-edited: a shot id or take of another type sorts last.
        shot, take = entry.get("shot_id"), entry.get("take")
        return (order.get(shot, len(order)) if isinstance(shot, str) else len(order), str(shot),
                take if type(take) is int else 0)

    entries = sorted([*kept, *ours.values()], key=place)
    listing = {"schema": 1, "kind": "idcli-delivery", "tool": {"name": TOOL_NAME, "version": TOOL_VERSION},
               "project": run.project, "delivered": now().isoformat(), "images": entries}
    return (json.dumps(listing, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def deliver(out_dir: str | Path, dest: str | Path, *, shots: ShotIds | None = None, all_takes: bool = False,
            force: bool = False, unsigned: bool = False,
            credentials: Credentials | Literal["environment"] | None = "environment") -> DeliveryReport:
    """Deliver the takes of ``out_dir`` into ``dest`` (see the module docstring).

    ``credentials``: C2PA signing credentials (``idcli.signing.load_credentials``) for signed takes' copies;
    by default those of ``IDCLI_C2PA_CERT`` and ``IDCLI_C2PA_KEY``, as ``render --sign`` reads them; None: none.
    """
    from . import arguments as args
    from .results import live_takes
    from .review.runs import load_run

    root = args.check_out_dir(out_dir)
    target = args.check_out_dir(dest, "dest")
    for name, flag in (("all_takes", all_takes), ("force", force), ("unsigned", unsigned)):
        args.check_bool(name, flag)
    _check_credentials(credentials)
    wanted = parse_shots(shots)
    _check_folders(root, target)
    # 1. Which takes (damaged sidecars or selects stop the delivery: a pick must not silently become another take).
    run = load_run(root)
    if run.problems:
        raise DeliveryError(f"{root}: " + "; ".join(run.problems) + "; nothing was delivered (idcli verify "
                            f"{root} shows the folder's state)", file=root)
    report = DeliveryReport(str(absolute(root)), str(absolute(target)), run.project)
    chosen = _choose(run, live_takes(root, None), wanted, all_takes, report.notes)
    signing = _Credentials(credentials, unsigned)
    # 2./3. Every copy made and checked in memory before anything is written.
    copies = [_make_copy(root, shot, take, sel, stale, signing, run.render_command)
              for shot, take, sel, stale in chosen]
    # 4. Written, one delivery at a time into DEST.
    try:
        make_folders(target)  # group-writable in a folder a team shares (shared_files.py)
    except OSError as exc:
        raise OutputError(f"{target}: cannot make the folder ({exc.strerror or exc})") from None
    with _one_delivery_at_a_time(target):
        _write(target, run, copies, chosen, report, force)
    report.images = [c.item for c in copies]
    # A select whose record in selects.json is damaged reads as re-rendered too (pick_standing.py), said as the notes
    # of review and export say it: nothing says its shot changed.
    damaged = {i.image for (shot, *_rest), i in zip(chosen, report.images, strict=True)
               if i.selection_stale and shot.selection_damaged}
    stale = [i.image for i in report.images if i.selection_stale and i.image not in damaged]
    if stale:
        report.notes.append(f"{', '.join(stale)}: the director's select was re-rendered after it was picked "
                            "(idcli review shows it); delivered as it is now")
    if damaged:
        from .review.pick_standing import DAMAGED_RECORD

        report.notes.append(f"{', '.join(i.image for i in report.images if i.image in damaged)}: the director's "
                            f"select: {DAMAGED_RECORD} (idcli review shows it); delivered as it is now")
    carried_not = [i.image for i in report.images if i.signature == "not-carried"]
    if carried_not:
        report.notes.append(words((f"{len(carried_not)} signed take(s) delivered WITHOUT their C2PA signature (",
                                   Option("unsigned", True), f"): {', '.join(carried_not)}; each record says "
                                   "signature: not-carried")))
    random = sum(1 for i in report.images if i.random_weights)
    if random:
        report.notes.append(f"{random} image(s) rendered by a random-weight test model (noise, not for review); each "
                            "delivered record says so")
    return report


@contextlib.contextmanager
def _one_delivery_at_a_time(dest: Path) -> Iterator[None]:
    """Two deliveries into one DEST each read its listing, then write theirs: the later one's would drop the
    other's copies. A lock on the folder itself (no lock file goes out with the delivery) makes one wait (and
    say so after a moment)."""
    from .lock_wait import lock_waiting

    try:
        fd = os.open(dest, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as exc:
        raise OutputError(f"{dest}: cannot open the folder ({exc.strerror or exc})") from None
    try:
        try:
            lock_waiting(fd, f"another idcli deliver into {dest} to finish")
        except OSError as exc:  # a network share without locks: deliver as before, one at a time by hand
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL):
                raise
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _write(target: Path, run: Any, copies: list[_Copy], chosen: list[Any], report: DeliveryReport,
           force: bool) -> None:
    """Step 4, one delivery at a time in DEST: what is there checked, then each image, then its sidecar (the
    sidecar says the copy is whole), then the listing."""
    from .delivery_record import leaks, local_strings
    from .safeio import remove_dead_temporaries
    from .store import atomic_write

    states = {c.item.image: _existing(target, c) for c in copies}
    taken = [name for name, state in states.items() if state == "other"]
    if taken and not force:
        named = {c.item.image: c for c in copies}
        shown = "; ".join(f"{name} ({_what_is_there(target, named[name])})" for name in taken[:3])
        raise DeliveryError(f"{target}: {len(taken)} file(s) there differ from what this delivery writes: {shown}"
                            f"{'; …' if len(taken) > 3 else ''}; ", Option("force", True), " replaces them; nothing "
                            "was delivered",
                            file=target)
    earlier = read_listing(target, run.project, force)
    remove_dead_temporaries(target)  # a delivery killed mid-write left .NAME.PID-START.HEX.idcli-tmp here
    listing = _listing(target, run, copies, earlier)
    forbidden = set().union(*(local_strings(t.record, report.out_dir) for _s, t, _a, _b in chosen))
    if leaks(listing, forbidden):  # the listing names files and hashes only; checked like every copy
        raise DeliveryError(f"{DELIVERY_FILE} would name a local path; nothing was delivered")
    for copy in copies:
        state = states[copy.item.image]
        if state == "same":
            copy.item.status = "unchanged"
            continue
        copy.item.status = "replaced" if state == "other" else "written"
        atomic_write(target / copy.item.image, copy.png)
        atomic_write(target / copy.item.sidecar, copy.sidecar)
    atomic_write(target / DELIVERY_FILE, listing)


def _check_credentials(credentials: Any) -> None:
    from .signing import Credentials

    if not (credentials is None or credentials == "environment" or isinstance(credentials, Credentials)):
        raise InputError(f"credentials={credentials!r:.60}: give idcli.signing.load_credentials(...), "
                         "'environment' (IDCLI_C2PA_CERT and IDCLI_C2PA_KEY) or None", field="credentials")


class _Credentials:
    """The signing credentials of a delivery, read once, when the first signed take needs them: given, or
    ``IDCLI_C2PA_CERT`` and ``IDCLI_C2PA_KEY`` checked as for a render (one of the two alone is an error)."""

    def __init__(self, given: Any, unsigned: bool) -> None:
        self.given, self.unsigned, self.read = given, unsigned, given != "environment"

    def get(self, image_path: Path) -> Any:
        """The credentials for a signed take's copy; None with ``unsigned``; without credentials, DeliveryError."""
        if self.unsigned:
            return None
        if not self.read:
            from .signing import CERT_ENV, KEY_ENV, SigningError, resolve_credentials

            cert, key = os.environ.get(CERT_ENV), os.environ.get(KEY_ENV)
            if bool(cert) != bool(key):  # said here: render's message offers --no-sign, which deliver has not
                given, missing = (CERT_ENV, KEY_ENV) if cert else (KEY_ENV, CERT_ENV)
                raise SigningError(f"{given} is set but {missing} is not: set both to sign the delivered copies of "
                                   "signed takes, or pass ", Option("unsigned", True), " to deliver them without their "
                                   "signature (docs/delivery.md); nothing was delivered", field=missing)
            self.given, self.read = resolve_credentials(None, None, Path), True
        if self.given is None:
            from .signing import CERT_ENV, KEY_ENV

            raise DeliveryError(f"{image_path}: a signed take, whose C2PA signature a delivery must not silently lose: "
                                f"set {CERT_ENV} and {KEY_ENV} to sign the delivered copies (the take as their parent "
                                "ingredient), or pass ", Option("unsigned", True), " to deliver signed takes without "
                                "it; nothing was delivered", file=image_path)
        return self.given
