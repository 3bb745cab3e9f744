"""Checking an output folder: every image against its sidecar, and signed images' C2PA credentials.

The library call behind ``idcli verify``. It reads; it never writes. An image is ``ok`` when its bytes
hash to the sidecar's sha256, the sidecar says what the image's own record (its ``idcli`` chunk) says, and, when
the sidecar says it was signed (or the file carries a
manifest), the C2PA reader finds the manifest, validates it (``Valid``, or ``Trusted`` with a root
the caller trusts), and its ``org.idcli.render`` assertion names the sidecar's job key.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import safeio
from .errors import EXIT_CHECK_FAILED, EXIT_OK, InputError
from .hashing import sha256_bytes
from .option_words import Option, words
from .paths import absolute, real_path
from .store import MAX_IMAGE_BYTES, MAX_SIDECAR_BYTES

if TYPE_CHECKING:
    from .provenance import NotJsonNumber, RepeatedKey


def not_signed() -> str:
    """With --trust every image must be signed under the root: one carrying no signature cannot be trusted (a folder
    rendered without --sign, or a signed image stripped of its manifest and its sidecar rewritten). Worded for the
    surface in use: ``trust`` to a Python caller, ``--trust`` on the command line (option_words.py)."""
    return words(("not signed, and ", Option("trust"), " asks that every image be signed by a certificate under its "
                  "root"))


def not_under_trust() -> str:
    """A valid manifest whose signer does not chain to the given root, in the surface's words."""
    return words(("C2PA manifest valid but its signer does not chain to the ", Option("trust"), " root"))


@dataclass
class ImageCheck:
    sidecar: dict[str, str]  # {path (relative to the output folder), abs_path}, as in the --json contract
    image: dict[str, str]
    ok: bool
    problems: list[str] = field(default_factory=list)
    c2pa: dict[str, Any] | None = None  # the reader's report, for signed images
    notes: list[str] = field(default_factory=list)  # what is said of an image that passes (an input: input_images.py)


@dataclass
class FolderProblem:
    """What fails the folder, not one of its images (a subfolder linked out of a folder of images: flat_images.py; a
    subfolder verify cannot read): it is no image checked, so it is counted apart from them."""

    path: dict[str, str]  # {path (relative to the folder), abs_path}, as an image's
    problem: str


@dataclass
class VerifyReport:
    out_dir: str
    images: list[ImageCheck] = field(default_factory=list)
    trust: str | None = None
    kind: str = "output"  # a render's output folder, a "delivery" folder, or a flat folder of "images"
    folder_problems: list[FolderProblem] = field(default_factory=list)
    # Takes of the folder's last shot list with no image yet, and the command that renders them (unfinished.py): the
    # morning after a stopped render, "all images pass" is not "all done". No failure: what is there passes.
    unfinished: Any = None

    @property
    def failed(self) -> int:
        return sum(1 for i in self.images if not i.ok)

    @property
    def exit_code(self) -> int:
        """0 when every image passes and the folder has no problem, EXIT_CHECK_FAILED otherwise
        (docs/file-formats.md, exit codes)."""
        return EXIT_CHECK_FAILED if self.failed or self.folder_problems else EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        """The ``idcli verify --json`` document (docs/provenance.md; the contract of file-formats.md): the folder's
        own problems are the error's ``problems`` (each ``{file, line, column, field, message, hint}``, as every
        command lists the problems of its input), and counted as ``counts.folder_problems``."""
        error: dict[str, Any] | None = None
        if self.exit_code != EXIT_OK:
            from .count_words import counted

            problems = [{"file": p.path["path"], "line": None, "column": None, "field": None, "message": p.problem,
                         "hint": None} for p in self.folder_problems]
            message = f"{self.failed} of {len(self.images)} image(s) fail" + (
                f"; {counted(len(problems), 'problem')} of the folder" if problems else "")
            error = {"type": "VerifyFailed", "message": message, "file": problems[0]["file"] if problems else None,
                     "line": None, "column": None, "field": None, "hint": None, "problems": problems}
        return {"ok": self.exit_code == EXIT_OK, "exit_code": self.exit_code, "error": error,
                "out_dir": self.out_dir,
                "counts": {"checked": len(self.images), "failed": self.failed,
                           "signed": sum(1 for i in self.images if i.c2pa and i.c2pa.get("present")),
                           "folder_problems": len(self.folder_problems)},
                "trust": self.trust, "folder": {"kind": self.kind, "not_checked": self.not_checked},
                "unfinished": self.unfinished.as_dict() if self.unfinished is not None else None,
                "images": [asdict(i) for i in self.images]}

    @property
    def not_checked(self) -> str | None:
        """What kind of folder was checked and what could not be, in one line: a flat folder of images has no render's
        or delivery's record of which images were made (flat_images.py); None for the folders that have one."""
        from .flat_images import KIND, NOT_CHECKED

        return NOT_CHECKED if self.kind == KIND else None


class NothingCheckedYet(InputError):
    """A render's output folder with no image yet whose last render left takes to render (stopped before its first
    commit, or an ``--only`` run of a blocked shot alone): an input error as before (exit 2: nothing checked is no
    pass), with the ``report`` whose ``unfinished`` says what is left, so ``verify --json`` keeps that object where
    the note is (a pipeline script reads it there, docs/file-formats.md)."""

    def __init__(self, report: VerifyReport, *args: object, **where: Any) -> None:
        super().__init__(*args, **where)
        self.report = report

    def as_json(self) -> dict[str, object]:
        return {**super().as_json(), "type": "InputError"}  # the type a script already tells apart, as before


def verify_folder(out_dir: str | Path, trust: str | Path | None = None) -> VerifyReport:
    """Check every committed image of ``out_dir`` (``trust``: a PEM file of root certificates): a render's output
    folder, a delivery folder (delivery_checks.py), or a flat folder of PNGs as an outside party receives them
    (flat_images.py)."""
    from . import arguments as args

    root = args.check_out_dir(out_dir)
    trust = args.check_path_or_none("trust", trust)
    args.check_out_dir_is_folder(root)
    trust_pem = None
    if trust is not None:
        try:
            trust_pem = safeio.read_regular(Path(trust), 1024 * 1024).decode("utf-8")
        except (safeio.NotRegularFile, UnicodeDecodeError):
            raise InputError(Option("trust", trust), ": cannot read a PEM file there", file=trust,
                             field="trust") from None
        if "BEGIN CERTIFICATE" not in trust_pem:
            raise InputError(Option("trust", trust), ": holds no PEM certificate", file=trust, field="trust")
    report = VerifyReport(str(absolute(root)), trust=str(trust) if trust else None)
    # A delivery folder (idcli deliver): its copies, their path-free records and re-signed manifests.
    from .delivery_checks import check_delivery_folder, is_delivery_folder

    if is_delivery_folder(root):
        report.kind = "delivery"
        report.images, report.folder_problems = check_delivery_folder(root, trust_pem)
        if not report.images and not report.folder_problems:
            raise InputError(f"{root}: a delivery folder holding no delivered image", file=root)
        return report
    # A folder of images as an outside party is sent them (copied out of a render's shot folders or a delivery, at its
    # top or in subfolders of its own), no render's: each PNG checked as what it is (flat_images.py).
    from .flat_images import KIND, check_flat_folder, is_flat_folder

    if is_flat_folder(root):
        report.kind, (report.images, report.folder_problems) = KIND, check_flat_folder(root, trust_pem)
        return report
    # The sha256 of each image as read here, by path: the morning note's retake check reuses them (unfinished.py),
    # where it hashed every flagged take's image a second time (retake-cost, docs/performance.md).
    hashed: dict[str, str] = {}
    for sidecar_path in sorted(root.glob("*/*.json")):
        check = check_image(root, sidecar_path, trust_pem, hashed)
        if check is not None:
            report.images.append(check)
    # A take's image left without its sidecar (deleted, or a kill between the two writes) cannot be checked
    # against it: it fails, rather than pass unseen. Only committed takes' names count (SHOT/SHOT_tN.png).
    from .stray_images import OWN_RECORD_IS, recorded_take

    checked = {real_path(root / i.image["path"]) for i in report.images}
    without_sidecar: list[ImageCheck] = []  # said below which input its bytes are, when one (input_images.py)
    for image_path in sorted(root.glob("*/*.png")):
        if (image_path.parent.name.startswith(".") or not re.fullmatch(
                rf"{re.escape(image_path.parent.name)}_t\d+\.png", image_path.name)
                or real_path(image_path) in checked):
            continue
        sidecar_path = image_path.with_suffix(".json")
        why = sidecar_not_read(sidecar_path, is_take_sidecar, "an idcli sidecar")
        c2pa, signature = signature_without_sidecar(image_path, trust_pem)
        # The hint only where it holds: render rebuilds a sidecar from an image whose own record is this take's. A
        # plate or selfie copied to a take's name has no such record (input_images.py says what it is instead).
        recovers = " (idcli render recovers the sidecar from the image's own record)" if _records_its_take(
            image_path) else ""
        # A copy of another take (its own record names that one): said in a stray's words, where to look next.
        whose = None if recovers else recorded_take(image_path)
        without_sidecar.append(ImageCheck(
            file_entry(root, sidecar_path), file_entry(root, image_path), ok=False,
            problems=[(f"its sidecar {sidecar_path.name} is there but cannot be read ({why}): edited after the "
                       "render? The image cannot be checked against it" if why else "no sidecar beside it, so it "
                       "cannot be checked") + recovers,
                      *([f"{OWN_RECORD_IS} {whose}"] if whose else []), *signature], c2pa=c2pa))
    report.images += without_sidecar
    from .unfinished import unfinished_takes

    report.unfinished = unfinished_takes(root, hashed)
    inside = "" if report.images else args.inside_output_folder(root)
    if not report.images and report.unfinished is not None:  # stopped before its first commit: how to finish
        raise NothingCheckedYet(report, f"{root}: no committed renders to check yet; {report.unfinished.note()}",
                                file=root)
    if not report.images:  # a typo, or the parent of the output folders: passing on nothing is no check
        raise InputError(f"{root}: no committed renders to check" + (
            inside or "; give a render's output folder (idcli render FILE --out DIR) or a folder of PNGs"),
            file=root)
    # Every other image in the folder (a retouched crop saved beside the takes, a take renamed) fails too: the
    # verdict is the folder's, and nothing checked where those came from (stray_images.py).
    # A plate or selfie kept in the folder is an input a take records by its sha256, not a stray, unless it sits at a
    # take's name (input_images.py).
    from .input_images import input_at_take_place, input_words, kept_inputs, recorded_inputs
    from .safeio import sha256_regular
    from .stray_images import NOT_A_TAKE, stray_images, stray_problem, unreadable_problem

    checked = {real_path(root / i.image["path"]) for i in report.images}
    unreadable: list[tuple[Path, OSError]] = []
    strays = stray_images(root, checked, unreadable=unreadable)
    # A subfolder it cannot read fails the folder, as no image (until 2026-12-02 it was passed over without a word).
    report.folder_problems += [FolderProblem(file_entry(root, folder), unreadable_problem(root, folder, error))
                               for folder, error in unreadable]
    inputs = recorded_inputs(root, [root / i.sidecar["path"] for i in report.images if i.ok]) if (
        strays or without_sidecar) else {}
    # Each such file hashed once (a plate may be 100 MB), then looked up among the inputs.
    hashes = {path: sha256_regular(path) for path in [*strays, *(root / c.image["path"] for c in without_sidecar)]}
    # A file no current take records may be the input of a take a newer render moved aside, which restore brings
    # back (a plate edited to v2, v1's file kept): looked up only for those files, in the kept versions.
    others = {sha for sha in hashes.values() if sha is not None and sha not in inputs}
    inputs |= kept_inputs(root, others, trust_pem) if others else {}
    for check in without_sidecar:
        path = root / check.image["path"]
        copied = input_at_take_place(path, hashes[path], inputs, root)
        check.problems += [copied] if copied else []
    for image_path in strays:
        said = input_words(image_path, hashes[image_path], inputs, root)
        copied = None if said else input_at_take_place(image_path, hashes[image_path], inputs, root)
        report.images.append(ImageCheck(file_entry(root, image_path.with_suffix(".json")),
                                        file_entry(root, image_path), ok=said is not None,
                                        problems=[] if said else [
                                            f"{NOT_A_TAKE}. {copied}" if copied else stray_problem(image_path)],
                                        notes=[said] if said else []))
    report.images.sort(key=lambda check: check.image["path"])
    return report


def _records_its_take(image_path: Path) -> bool:
    """Whether the PNG at a take's name (``SHOT/SHOT_tN.png``) carries its own record naming that take, the record
    ``idcli render`` rebuilds the take's sidecar from (store.py's ``recoverable``)."""
    from .provenance import read_png_record
    from .stray_images import take_of_record

    try:
        data = safeio.read_regular(image_path, MAX_IMAGE_BYTES, follow_links=False)
    except safeio.NotRegularFile:
        return False
    take = take_of_record(read_png_record(data))
    return take is not None and image_path.name == f"{take[0]}_t{take[1]}.png" and image_path.parent.name == take[0]


def signature_without_sidecar(image_path: Path, trust_pem: str | None) -> tuple[dict[str, Any] | None, list[str]]:
    """The C2PA reader's report of a take's image that has no sidecar to check it against, and what its signature
    says: PNGs sent on without their sidecars still fail (nothing records what they should be), but whether each is
    intact and signed by idcli for its job (``Trusted`` under ``trust``) is what a reviewer asks next. (None, [])
    when it carries no manifest, or c2pa-python is not installed (the missing sidecar is then all that is said)."""
    c2pa, said, _intact = signature_alone(image_path, trust_pem)
    return c2pa, said


def signature_alone(image_path: Path, trust_pem: str | None) -> tuple[dict[str, Any] | None, list[str], bool]:
    """``signature_without_sidecar``'s report and lines, and whether the signature alone shows the image intact:
    ``Valid`` (``Trusted`` under ``trust``), ``c2pa.created``, and the job key of the image's own record. A flat
    folder of signed PNGs passes on that (flat_images.py); a take in an output folder still needs its sidecar."""
    from .c2pa_words import invalid_manifest_problem
    from .provenance import PngFormatError, png_chunks, read_png_record
    from .signing import available, carries_manifest, read_manifest

    try:
        data = safeio.read_regular(image_path, MAX_IMAGE_BYTES, follow_links=False)
    except safeio.NotRegularFile:
        return None, [], False
    try:
        png_chunks(data)
    except PngFormatError as exc:  # cut short or a bad CRC: with no sha256 to compare, only this tells it
        return None, [f"the image is damaged: {exc}"], False
    if not (available() and carries_manifest(data)):
        return None, [], False
    manifest = read_manifest(data, trust_pem)
    if not manifest.present:
        return None, [], False
    if manifest.state not in ("Valid", "Trusted"):
        return manifest.as_dict(), [invalid_manifest_problem(manifest, trust_pem)], False
    if trust_pem and manifest.state != "Trusted":
        return manifest.as_dict(), [not_under_trust()], False
    record = read_png_record(data) or {}
    job = (manifest.assertion or {}).get("job_key")
    if not manifest.created or not job or job != record.get("job_key"):
        return manifest.as_dict(), [f"its C2PA manifest is {manifest.state}, but does not say idcli made this image "
                                    "for the job its own record (its idcli chunk) names"], False
    said = f"its C2PA manifest is {manifest.state}, signed by {_shown(manifest.signer)} for its job: "
    if manifest.state == "Trusted":
        said += "the image is as idcli signed it"
    else:  # any CA's certificate validates, with whatever name its holder chose: the root is what says whose it is
        said += "the image is as its signer signed it. " + untrusted_signer()
    return manifest.as_dict(), [said], True


def untrusted_signer() -> str:
    """What a ``Valid`` signature checked without a root does not say, in the surface's words: anyone holding a
    certificate some CA issued signs so, under any name (docs/provenance.md, "What verify without --trust cannot
    tell")."""
    return words(("No ", Option("trust"), " root was given, so who holds that certificate was not checked: any CA's "
                  "certificate, under any name, validates"))


def file_entry(root: Path, path: Path) -> dict[str, str]:
    """A file of the output folder as the --json contract names it: ``{path, abs_path}``."""
    try:
        relative = path.relative_to(root).as_posix()
    except ValueError:  # a sidecar naming an image outside the folder (reported as a problem)
        relative = str(path)
    return {"path": relative, "abs_path": str(absolute(path))}


class UnreadableSidecar(Exception):
    """A file at a sidecar's place that is not JSON idcli reads; ``why`` says so in a few words."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


_NOT_REGULAR = {"link": "a link, which verify does not follow", "folder": "a folder",
                "special": "a device, FIFO or socket", "too-large": f"over {MAX_SIDECAR_BYTES:,} bytes"}


def load_sidecar(path: Path) -> tuple[Any, RepeatedKey | NotJsonNumber | None]:
    """The JSON at a sidecar's place and, when it writes a key twice or holds NaN or Infinity, the
    ``provenance.RepeatedKey`` or ``NotJsonNumber`` (still the take's sidecar, failed for it: ``json_problem``);
    raises UnreadableSidecar. Read bounded, through no link, never blocking."""
    from .provenance import NotJsonNumber, RepeatedKey, loads_strict

    try:
        text = safeio.read_regular(path, MAX_SIDECAR_BYTES, follow_links=False)
    except safeio.NotRegularFile as exc:
        raise UnreadableSidecar(_NOT_REGULAR.get(exc.kind) or exc.detail or exc.kind) from None
    try:
        try:
            return loads_strict(text), None
        except (RepeatedKey, NotJsonNumber) as exc:
            return json.loads(text), exc
    except RecursionError:  # past the parser's limit (~980 levels): JSON readers refuse it, idcli too
        raise UnreadableSidecar("nested too deep to read as JSON") from None
    except UnicodeDecodeError:
        raise UnreadableSidecar("not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise UnreadableSidecar(f"not JSON: line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except ValueError:  # a number past Python's digit limit
        raise UnreadableSidecar("not JSON idcli reads (a number too long)") from None


def json_problem(fault: RepeatedKey | NotJsonNumber, whose: str, name: str | None = None) -> str:
    """What is wrong with the JSON of ``whose`` (``its sidecar``, ``the image's own record (its idcli chunk)``) that
    Python's json reads anyway, in one line: a key written twice, or NaN or Infinity, which no other JSON reader
    takes; that one names the file (``name``) and the field, for whoever opens it to see."""
    from .provenance import RepeatedKey

    if isinstance(fault, RepeatedKey):
        return f"{whose} writes the key {fault.key[:40]!r} twice (edited by hand?): readers disagree on its value"
    return (f"{whose}{f' {name}' if name else ''} holds {fault.token} at {_shown_field(fault.field)}, which is not "
            "JSON (RFC 8259 has no NaN or Infinity): other JSON readers refuse the file, and idcli never writes one "
            "(edited by hand?)")


def _shown_field(field: str) -> str:
    return field if len(field) <= 80 else field[:79] + "…"


def is_take_sidecar(sidecar: Any) -> bool:
    """Whether JSON read at a take's sidecar place is an idcli sidecar (a job key and an image block)."""
    return isinstance(sidecar, dict) and "job_key" in sidecar and isinstance(sidecar.get("image"), dict)


def sidecar_not_read(path: Path, is_sidecar: Any, kind: str) -> str | None:
    """Why the file beside an image that no check read is not its sidecar (``kind``, as ``is_sidecar`` tells it),
    or None when there is no file there: the image has a sidecar, it cannot be read, and saying it has none sends
    whoever reads the report looking for a file that is there."""
    if not os.path.lexists(path):
        return None
    try:
        sidecar, _ = load_sidecar(path)
    except UnreadableSidecar as exc:
        return exc.why
    return None if is_sidecar(sidecar) else f"not {kind}"


def link_out_problem(image_path: Path, shown: str, folder: str) -> str:
    """Why a take (a delivered copy) whose path is the folder's is not checked: a link takes it out of the folder."""
    return (f"image {shown} is outside the {folder}, reached through a link (to {real_path(image_path)}): the folder "
            "does not hold it, so it is not checked against its sidecar")


def check_image(root: Path, sidecar_path: Path, trust_pem: str | None,
                hashed: dict[str, str] | None = None) -> ImageCheck | None:
    """One sidecar and its image; None when the JSON file is not an idcli sidecar. ``hashed``: where to keep the
    image's sha256 by its path (``os.path.normpath``), when it was read."""
    try:
        sidecar, fault = load_sidecar(sidecar_path)
    except UnreadableSidecar:
        return None
    if not is_take_sidecar(sidecar):
        return None
    relpath = str(sidecar["image"].get("path", ""))
    image_path = root / relpath
    check = ImageCheck(file_entry(root, sidecar_path), file_entry(root, image_path), ok=True)
    if fault is not None:
        check.problems.append(json_problem(fault, "its sidecar", check.sidecar["path"]))
    beside = sidecar_path.with_suffix(".png")
    if (os.path.normpath(image_path) == os.path.normpath(beside)
            and not real_path(image_path).is_relative_to(root.resolve())):
        # The sidecar records the image beside it, as a render writes it; a link leads out of the folder from there.
        check.problems.append(link_out_problem(image_path, check.image["path"], "output folder"))
        check.ok = False
        return check
    if not real_path(image_path).is_relative_to(root.resolve()):
        # Reported as the check of the image beside it (its take, which the folder's PNGs are then matched against):
        # failed for the path it names, it was reported again as an image with "no sidecar beside it", a file
        # that is there.
        check.image = file_entry(root, beside)
        check.problems.append(f"its sidecar {check.sidecar['path']} records image.path {relpath!r}, which leaves the "
                              f"output folder: a sidecar records the image beside it ({check.image['path']}); edited "
                              "by hand? The image is not checked against it")
        check.ok = False
        return check
    if os.path.normpath(image_path) != os.path.normpath(beside) and image_path.name == beside.name:
        # The take's own pair in another folder (its shot folder renamed, or the pair moved together): it fails for
        # where it is, and the image beside its sidecar is still checked against it, as the reviewer needs to know
        # whether the take itself is intact and signed (it was left unread, as if swapped).
        check.image = file_entry(root, beside)
        check.problems.append(f"its sidecar {check.sidecar['path']} records the image at {relpath}: its shot folder "
                              "was renamed, or the take moved out of it (the image is checked here as that take)")
        image_path = beside
    elif os.path.normpath(image_path) != os.path.normpath(beside):
        # A sidecar is the record of the image beside it (SHOT_tN.json of SHOT_tN.png): one that names another
        # image was moved or swapped. Checked against the image it names it would pass, and the image beside it
        # would pass against some other record.
        return ImageCheck(check.sidecar, file_entry(root, beside), ok=False, problems=[
            f"its sidecar {check.sidecar['path']} is the record of {relpath}, not of this image (moved or swapped)"])
    return check_against_sidecar(check, sidecar, image_path, trust_pem, hashed)


def check_against_sidecar(check: ImageCheck, sidecar: dict[str, Any], image_path: Path,
                          trust_pem: str | None, hashed: dict[str, str] | None = None) -> ImageCheck:
    """``check`` of the image at ``image_path`` against a take's ``sidecar``: its sha256, the sidecar against the
    image's own record, and its C2PA manifest; the image found where its sidecar says (an output folder) or beside it
    (a flat folder of images, flat_images.py)."""
    try:
        data = safeio.read_regular(image_path, MAX_IMAGE_BYTES, follow_links=False)
    except safeio.NotRegularFile as exc:
        # Named as every other line of verify names a file (and --json its image.path): relative to the output
        # folder, not to wherever verify was run from.
        check.problems.append(f"image {exc.kind}: {check.image['path']}")
        check.ok = False
        return check
    digest = sha256_bytes(data)
    if hashed is not None:
        hashed[os.path.normpath(image_path)] = digest
    changed = digest != sidecar["image"].get("sha256")
    # An image that is another render than its sidecar's (takes swapped, an earlier version copied back) is said to
    # be that, once: the manifest's job key and the sidecar's c2pa block then differ only because of it.
    other = another_render(sidecar, data) if changed else None
    if other is not None:
        check.problems.append(other)
    elif changed:
        check.problems.append("the image does not match its sidecar's sha256 (changed after it was committed)")
    else:  # the image is the committed one: its sidecar must say what the image's own record says
        check.problems += sidecar_record_problems(sidecar, data)
    block = sidecar.get("c2pa")
    if block is not None and not isinstance(block, dict):  # edited: checked as unsigned, and failed
        check.problems.append(f"the sidecar's c2pa block is damaged ({type(block).__name__}, not an object)")
    signed = bool(block.get("signed")) if isinstance(block, dict) else False
    from .signing import EXTRA_HINT, ManifestReport, available, carries_manifest, read_manifest

    carried = carries_manifest(data)
    if available() and (signed or carried):
        manifest = read_manifest(data, trust_pem)
    elif signed or carried:  # a manifest the sidecar does not mention (its c2pa block removed) is checked too
        check.problems.append(f"signed, but its C2PA manifest cannot be checked here: {EXTRA_HINT}")
        manifest = ManifestReport(True, None, error="c2pa-python is not installed")
        check.c2pa = manifest.as_dict()
        check.ok = False
        return check
    else:
        manifest = ManifestReport(False)
    if trust_pem and not (signed or manifest.present or carried):
        check.problems.append(not_signed())
    if signed or manifest.present:
        check.c2pa = manifest.as_dict()
        if not manifest.present:
            check.problems.append("the sidecar says the image was signed, but it carries no C2PA manifest" + (
                ": re-saved or edited by a program that drops content credentials?" if changed else ""))
        elif manifest.state not in ("Valid", "Trusted"):
            from .c2pa_words import invalid_manifest_problem

            check.problems.append(invalid_manifest_problem(manifest, trust_pem, unchanged=not changed))
        else:
            if trust_pem and manifest.state != "Trusted":
                check.problems.append(not_under_trust())
            if not manifest.created:
                check.problems.append("the manifest's first action is not c2pa.created (trainedAlgorithmicMedia)")
            if other is None and (manifest.assertion or {}).get("job_key") != sidecar.get("job_key"):
                check.problems.append("the manifest's org.idcli.render assertion names another job key")
            if other is None and isinstance(block, dict):
                check.problems += c2pa_block_problems(block, data, manifest)
    check.ok = not check.problems
    return check


def another_render(sidecar: dict[str, Any], data: bytes) -> str | None:
    """What an image whose bytes are not its sidecar's is, when its own record (its ``idcli`` chunk, of the image's
    size) says it is another render: another take's (swapped, or copied over this one), or another render of this
    take (an earlier version copied back, a take of another output folder). None when it says nothing of the kind:
    the image was then changed (re-saved, retouched), or carries no record to tell."""
    from .provenance import read_png_record
    from .stray_images import take_of_record, take_path, take_words

    record = read_png_record(data)
    own, its = take_of_record(sidecar), take_of_record(record)
    if own is None or its is None or record is None:
        return None
    if its != own:
        return (f"this image is {take_words(*its)}'s ({take_path(*its)}), as its own record (its idcli chunk) says, "
                f"not {take_words(*own)}'s that its sidecar records: swapped with another take, or copied over "
                "this one?")
    job, recorded = record.get("job_key"), sidecar.get("job_key")
    if isinstance(job, str) and isinstance(recorded, str) and job != recorded:
        return (f"this image is another render of {take_words(*own)} than its sidecar records (its own record, its "
                f"idcli chunk, names job {_short_key(job)}, its sidecar {_short_key(recorded)}): an earlier version "
                "copied back, or the take of another output folder?")
    return None


def _short_key(key: str) -> str:
    """A job key as the ``parameters`` chunk's ``idcli job`` writes it: its first 16 hex digits."""
    return _shown(key.rsplit(":", 1)[-1][:16])


def sidecar_record_problems(sidecar: dict[str, Any], data: bytes) -> list[str]:
    """What a sidecar says that the image's own record (its ``idcli`` chunk) does not: a field edited or added by
    hand keeps the image's sha256 and its signature good (the sidecar is signed by nothing), so only this tells
    that the record a reviewer reads is not the image's. Run facts (batch, timing, qa, c2pa) are the sidecar's own
    (provenance.record_of_sidecar); a field only the image's record holds is no difference (an older sidecar)."""
    from .provenance import MISSING, read_png_record_checked, record_differences, record_of_sidecar

    record, fault = read_png_record_checked(data)
    if record is None:
        return ["the image carries no idcli record (its idcli chunk) to check its sidecar against"]
    problems = [json_problem(fault, "the image's own record (its idcli chunk)")] if fault is not None else []
    try:
        differences = record_differences(record_of_sidecar(sidecar), record)
    except RecursionError:  # copied (record_of_sidecar) a few calls deeper than it was read, just under the limit
        return [*problems, "its sidecar is nested too deep to compare with the image's own record (its idcli "
                "chunk): edited after the render?"]
    if not differences:
        return problems
    where, own, its = differences[0]
    said = f"its sidecar says {where} {_shown(own)}, " + (
        "which the image's own record (its idcli chunk) does not hold" if its is MISSING
        else f"the image's own record (its idcli chunk) {_shown(its)}")
    more = f" ({len(differences) - 1} more field(s) differ)" if len(differences) > 1 else ""
    return [*problems, f"{said}: edited after the render?{more}"]


def _shown(value: Any) -> str:
    try:
        text = repr(value)
    except RecursionError:  # a hostile value nested deeper than repr goes
        text = f"<a {type(value).__name__} nested too deep to show>"
    return text if len(text) <= 80 else text[:79] + "…"


def c2pa_block_problems(block: dict[str, Any], data: bytes, manifest: Any) -> list[str]:
    """What a signed image's sidecar says of its signature (its ``c2pa`` block) that the image does not: the hash
    before the manifest (what ``idcli reproduce`` compares a re-render with) and who signed. Without ``--trust`` a
    valid manifest from anyone passes, so an image re-signed by another certificate is told only by the signer
    its sidecar names. ``manifest``: the reader's ``signing.ManifestReport`` of ``data``."""
    from .signing import without_manifest

    problems = []
    unsigned, original = block.get("unsigned_sha256"), without_manifest(data)
    if isinstance(unsigned, str) and original is not None and sha256_bytes(original) != unsigned:
        problems.append("its sidecar's c2pa.unsigned_sha256 is not the image's without its manifest (edited after "
                        "the render?)")
    subject = block.get("subject")
    if isinstance(subject, str) and subject and _name_parts(subject) != (manifest.signer, manifest.signer_org):
        problems.append(f"the manifest is signed by {manifest.signer!r} ({manifest.signer_org}), its sidecar says "
                        f"{subject!r}")
    # The signer certificate's serial and issuer (sidecars from 2026-11-30 on; an older one has neither): a
    # certificate with the same names but another serial, or from another CA, is another signer. Each is compared
    # only when the reader gives it (the issuer comes from crJSON, which another c2pa-python may not have): a fact
    # the manifest side does not give is unknown, not different, and fails no take (--json shows it null).
    serial = block.get("serial_number")
    if serial is not None and (_serial_value(serial) is None or (
            manifest.serial_number is not None and _serial_value(serial) != _serial_value(manifest.serial_number))):
        problems.append(f"the manifest is signed by the certificate with serial {manifest.serial_number!r}, its "
                        f"sidecar says {_shown(serial)}")
    name = block.get("subject_common_name")
    if name is not None and name != manifest.signer:
        problems.append(f"the manifest is signed by {manifest.signer!r}, its sidecar's subject_common_name says "
                        f"{_shown(name)}")
    issuer = block.get("issuer_common_name")
    if issuer is not None and manifest.issuer_common_name is not None and issuer != manifest.issuer_common_name:
        problems.append(f"the manifest's signer certificate is issued by {manifest.issuer_common_name!r}, its sidecar "
                        f"says {_shown(issuer)}")
    return problems


def _serial_value(serial: Any) -> int | None:
    """A certificate serial written in hex (any case, as openssl or a studio's list may write it) as a number."""
    try:
        return int(serial, 16) if isinstance(serial, str) else None
    except ValueError:
        return None


def _name_parts(subject: str) -> tuple[str | None, str | None] | None:
    """(common name, organisation) of a certificate name as the sidecar writes it (RFC 4514), as the C2PA reader
    gives them (``signature_info``); None when it is no such name."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        name = x509.Name.from_rfc4514_string(subject)
    except ValueError:
        return None
    first = [next((str(a.value) for a in name.get_attributes_for_oid(oid)), None)
             for oid in (NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME)]
    return first[0], first[1]
