"""Images already in the output folder reused for a job of the same key, instead of rendered again (``reused``).

Job keys leave out the shot id and the take, so inserting a seed into a shot's ``seeds:`` (its takes shift) or
renaming a shot gives jobs whose exact keys, same pixels, are already in the folder: at another take's path, or
kept in ``.idcli/superseded``. Such a job's image is written at its own path as a render of it would have written
it: the same pixels, its own record (shot, take, path) in the PNG, so its bytes are a fresh render's; the sidecar
keeps the batch, timing and executor of the render that made the pixels and says where they came from
(``reused``). QA and signing run on it as on a rendered image; what was at the path moves to superseded as
before. A source whose image no longer matches its sidecar is never used.

What that sidecar says and the PNG does not is journalled before the image is committed (``reuse-begin``): a kill
between the image and its sidecar leaves a PNG whose sidecar the next run rebuilds (``recovered``), and rebuilt
from the PNG alone it lost ``reused``, the source's batch, timing and executor, QA's verdict and the fusion facts,
saying no more than a render's would (``begun_reuses``).

Not reused, rendered instead: plate jobs (the plate's alpha and the engine's plate facts are the render's), and
with ``--save-masks`` the dual-line jobs, whose mask strip only a render makes.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import safeio
from .hashing import sha256_bytes
from .kept_files import read_sidecar_file
from .kept_versions import SupersededVersion
from .plan import Job
from .provenance import RUN_FIELDS, add_fusion_facts
from .store import MAX_IMAGE_BYTES


@dataclass(frozen=True)
class Source:
    """An image of the folder and its sidecar (paths relative to the output folder) that recorded ``job_key``."""

    job_key: str
    image: str
    sidecar: str


@dataclass(frozen=True)
class Found:
    """A source checked for one job: its sidecar and image bytes as read (the image matching the sidecar)."""

    source: Source
    sidecar: dict[str, Any]
    png: bytes


def renders_by_key(root: Path, kept: Iterable[SupersededVersion], known: dict[str, str | None],
                   orphans: Iterable[str] = ()) -> dict[str, list[Source]]:
    """The committed images of the folder by the job key their sidecars record: the plan's takes (``known``: image
    path -> the key the run's state of it read, ``recorded_key``), then the ``orphans`` (image paths, their
    sidecars read here), then the kept versions ``kept`` lists, the newest first: the order a source is chosen in
    (``reusable_source``: the first that passes), as docs/file-formats.md "Reused images" states it.

    Nothing is listed again: the run read each take's state and listed the orphans already (listing a 2,000-shot
    folder again and reading its sidecars cost 0.88 s, this 0.007 s: docs/performance.md "Reused images"). The
    takes of shots left out by ``--only`` are neither, and are not looked at."""
    found: dict[str, list[Source]] = {}
    images = [*known.items(), *((image, None) for image in orphans if image not in known)]
    for image, recorded in images:
        sidecar = image[: -len(".png")] + ".json"
        key = recorded if image in known else (read_sidecar_file(Path(root) / sidecar) or {}).get("job_key")
        if isinstance(key, str):
            found.setdefault(key, []).append(Source(key, image, sidecar))
    for version in sorted(kept, key=lambda v: (v.superseded_at, v.name), reverse=True):
        if version.job_key and version.image and version.sidecar:
            found.setdefault(version.job_key, []).append(Source(version.job_key, version.image, version.sidecar))
    return found


def recorded_key(job: Job, state: Any) -> str | None:
    """The job key the sidecar at ``job``'s path records, as the store's ``state`` of the job read it: the job's own
    when done, the recorded one when stale for an edit, else None (no image there that could be a source)."""
    if state.status == "done":
        return job.key
    key = (state.sidecar or {}).get("job_key")
    return key if isinstance(key, str) else None


def reusable_source(root: Path, job: Job, sources: dict[str, list[Source]], adapter: Any,
                    save_masks: bool = False) -> Found | None:
    """The first source of ``job``'s key whose image still matches its sidecar and whose sidecar says what a render
    of the job records from the engine (the device, the identity adapter, what fusion did); else None (rendered).

    Checked when used, not when listed: a run that reused or rendered a take since may have moved a source aside."""
    if job.plate is not None or job.request.plate is not None:
        return None
    for source in sources.get(job.key, []):
        if source.image == job.image_relpath:
            continue  # its own path: the store's state said what it is
        sidecar = read_sidecar_file(root / source.sidecar)
        if sidecar is None or sidecar.get("job_key") != job.key or not _engine_facts(sidecar, job, adapter):
            continue
        if save_masks and sidecar.get("fusion") is not None:
            continue  # a dual-line image's mask strip is made while rendering
        image = sidecar.get("image")
        expected = image.get("sha256") if isinstance(image, dict) else None
        try:
            png = safeio.read_regular(root / source.image, MAX_IMAGE_BYTES, follow_links=False)
        except safeio.NotRegularFile:
            continue
        if expected and sha256_bytes(png) == expected:
            return Found(source, sidecar, png)
    return None


def _engine_facts(sidecar: dict[str, Any], job: Job, adapter: Any) -> bool:
    """Whether ``sidecar`` records what encoding the job's image takes from its render: the device and the library
    versions (``software``), the adapter of a conditioned job (as the plan's adapter names it), and for a dual-line
    job what fusion did, in the forms idcli writes them. A sidecar matching its image may still have been edited (a
    received folder): what is copied from it must be JSON a sidecar can hold (no NaN), and the fusion facts what the
    encoding reads."""
    model, software = sidecar.get("model"), sidecar.get("software")
    if not isinstance(model, dict) or not isinstance(model.get("device"), str):
        return False
    if not isinstance(software, dict) or not all(isinstance(v, str) for v in software.values()):
        return False  # the library versions that made the pixels (idcli writes names to version strings)
    copied = {name: sidecar.get(name) for name in ("batch", "timing", "executor", "fusion")}
    if not _plain_json([copied, _adapter_record(sidecar, job)]) or not _fusion_facts(sidecar.get("fusion")):
        return False
    if job.conditioning:
        if adapter is None or not isinstance(_adapter_record(sidecar, job), dict):
            return False
        wanted = json.loads(json.dumps(adapter.record()))
        recorded = _adapter_record(sidecar, job) or {}
        if any(recorded.get(name) != value for name, value in wanted.items()):
            return False
    if job.request.method == "dual-line" and job.conditioning:
        return isinstance(sidecar.get("fusion"), dict)
    return True


def _plain_json(value: Any) -> bool:
    """Whether ``value`` writes as strict JSON (idcli writes no NaN or Infinity, and refuses to)."""
    try:
        json.dumps(value, allow_nan=False)
    except (ValueError, TypeError, RecursionError):
        return False
    return True


def _fusion_facts(fusion: Any) -> bool:
    """Whether a sidecar's ``fusion`` is absent or holds what the engine's facts hold for the encoding and the
    identity entries (provenance.add_fusion_facts): each character's name, subject tokens and mask coverage."""
    if fusion is None:
        return True
    characters = fusion.get("characters", []) if isinstance(fusion, dict) else None
    if not isinstance(characters, list) or not isinstance(fusion.get("subject_tokens", 1), int):
        return False
    return all(isinstance(c, dict) and isinstance(c.get("name"), str) and isinstance(c.get("subject_tokens"), int)
               and isinstance(c.get("mask_coverage"), int | float) for c in characters)


def _adapter_record(sidecar: dict[str, Any], job: Job) -> dict[str, Any] | None:
    """The adapter record the engine gave the job's first conditioning character, as the sidecar holds it."""
    entries = sidecar.get("identity")
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and entry.get("name") in job.conditioning and isinstance(entry.get("adapter"),
                                                                                              dict):
            return dict(entry["adapter"])
    return None


class _Pixels:
    """An engine result made of a source image's pixels and the facts its render recorded."""

    def __init__(self, pixels: Any, facts: dict[str, Any]) -> None:
        self.pixels = pixels
        self.facts = facts


def reused_image(job: Job, found: Found, model: Any, project: str | None) -> tuple[Any, Any] | None:
    """The job's image made of ``found``'s pixels, encoded as the commit path encodes a render's (an
    ``executors.output.EncodedImage``), and the pixels; None when the source's pixels are not an RGB image of the
    job's size (not reused)."""
    import numpy as np
    from PIL import Image

    from .executors.output import encode_result

    try:
        with Image.open(io.BytesIO(found.png)) as image:
            if image.mode != "RGB" or image.size != (job.request.width, job.request.height):
                return None
            pixels = np.asarray(image).copy()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):  # a received folder's file: anything
        return None
    fusion = found.sidecar.get("fusion")
    facts: dict[str, Any] = {}
    if isinstance(fusion, dict):
        facts["fusion"] = {name: value for name, value in fusion.items() if name != "mask_strip"}
    adapter = _adapter_record(found.sidecar, job) if job.conditioning else None
    # Where the pixels were made and with what: a source of the same key may be from another device or torch.
    device, software = found.sidecar["model"]["device"], found.sidecar["software"]
    return encode_result(job, _Pixels(pixels, facts), model, device, adapter, project, software), pixels


def note_commit(sources: dict[str, list[Source]], root: Path, job: Job, moved: list[dict[str, Any]]) -> None:
    """After ``job``'s reused image was committed: its take is a source of its key, and what the commit ``moved``
    aside (the store's ``superseded`` entries) is found in superseded now, for the jobs after it."""
    note_moved(sources, root, moved)
    sources.setdefault(job.key, []).append(Source(job.key, job.image_relpath, job.sidecar_relpath))


def note_moved(sources: dict[str, list[Source]], root: Path, moved: Iterable[dict[str, Any]]) -> None:
    """What this run ``moved`` aside since superseded was listed (``{shot_id, name}`` entries: a commit's, or the
    take a restore displaced) is a source of its key where it is now, in superseded."""
    from .kept_files import SUPERSEDED

    for entry in moved:
        base = (SUPERSEDED / str(entry["shot_id"]) / str(entry["name"])).as_posix()
        key = (read_sidecar_file(Path(root) / f"{base}.json") or {}).get("job_key")
        if isinstance(key, str):
            sources.setdefault(key, []).append(Source(key, f"{base}.png", f"{base}.json"))


def run_fields(found: Found, reused_at: str) -> dict[str, Any]:
    """The sidecar's run fields of a reused image: the batch, timing and executor of the render that made the
    pixels, and ``reused``: the source image (path, sha256) and when it was reused."""
    sidecar = found.sidecar
    return {"batch": sidecar.get("batch"), "timing": sidecar.get("timing"), "executor": sidecar.get("executor"),
            "reused": {"from": {"path": found.source.image, "sha256": sha256_bytes(found.png)}, "at": reused_at}}


# What a reused image's sidecar holds that its PNG does not, kept in its ``reuse-begin`` journal line: the run fields
# but its signature (read back from the PNG's manifest when the sidecar is rebuilt) and ``recovered``.
_NOT_IN_THE_PNG = tuple(name for name in RUN_FIELDS if name not in ("c2pa", "recovered"))


def reused_entry(job: Job, source: Any) -> dict[str, Any]:
    """The journal line of a reused image committed with its sidecar (``source``: the image it was reused from),
    written by the reuse and, after a kill between the two, by the adoption that rebuilt its sidecar."""
    return {"event": "reuse", "job_key": job.key, "shot_id": job.shot_id, "take": job.take, "from": source}


def begin_entry(job: Job, sidecar: dict[str, Any], found: Found) -> dict[str, Any]:
    """The journal line written before ``job``'s reused image and ``sidecar`` are committed: the image's sha256
    and the sidecar's fields its PNG does not hold, for ``begun_reuses``."""
    return {"event": "reuse-begin", "job_key": job.key, "shot_id": job.shot_id, "take": job.take,
            "from": found.source.image, "sha256": sidecar["image"]["sha256"],
            "sidecar": {name: sidecar[name] for name in _NOT_IN_THE_PNG if name in sidecar}}


def begun_reuses(store: Any, adopting: Iterable[tuple[Job, str | None]]) -> dict[str, dict[str, Any]]:
    """By take stem, the ``reuse-begin`` line of each reuse that left its image at the take's path without a sidecar
    (killed between the two), for the takes a run adopts (``adopting``: each job, and the sha256 of the image at its
    path). A take's newest line of a commit, reuse or restore decides: a ``reuse-begin`` counts only when it describes
    these bytes and holds what a sidecar may (a received folder's journal may say anything); any other (a render
    killed the same way) or none leaves the take out, its sidecar rebuilt from the PNG alone.

    One pass over the journal from its end for them all, stopping once each take is decided: a folder whose sidecars
    were deleted adopts every take, and a pass per take read a film's journal as many times."""
    waiting = {(job.shot_id, job.take): (job, sha256) for job, sha256 in adopting if sha256}
    if not waiting:
        return {}
    begun: dict[str, dict[str, Any]] = {}
    # Lines of other shots, and of shots whose takes are all decided, are skipped unparsed (of one shot, the lines not
    # naming it at all are found faster: a kill leaves one image to adopt).
    shots = Counter(shot for shot, _take in waiting)
    for entry in store.journal_newest_first(mentioning=next(iter(shots)) if len(shots) == 1 else None, shots=shots):
        shot, take, event = entry.get("shot_id"), entry.get("take"), entry.get("event")
        if not isinstance(shot, str) or type(take) is not int or event not in _DECIDING:
            continue  # a take moved aside ("supersede") says nothing of what went to its place
        job, sha256 = waiting.pop((shot, take), (None, None))
        if job is None:
            continue
        if event == "reuse-begin" and _describes(entry, job, sha256):
            begun[job.stem] = entry
        shots[shot] -= 1
        if not shots[shot]:
            del shots[shot]
            if not shots:
                break
    return begun


# The journal lines that say what was last put at a take's path.
_DECIDING = ("reuse-begin", "commit", "reuse", "restore", "restore-begin")


def _describes(entry: dict[str, Any], job: Job, image_sha256: str | None) -> bool:
    """Whether a ``reuse-begin`` line is of ``job``'s image of these bytes and holds only what a sidecar may."""
    fields = entry.get("sidecar")
    return (entry.get("job_key") == job.key and entry.get("sha256") == image_sha256
            and isinstance(fields, dict) and isinstance(fields.get("reused"), dict)
            and all(name in _NOT_IN_THE_PNG and (value is None or isinstance(value, dict))
                    for name, value in fields.items())
            and _plain_json(fields) and _fusion_facts(fields.get("fusion")))


def add_begun_fields(sidecar: dict[str, Any], begun: dict[str, Any]) -> None:
    """Give a sidecar rebuilt from a reused image's PNG what the reuse's ``begun`` line kept (``begun_reuses``)."""
    for name, value in begun["sidecar"].items():
        if name == "fusion":
            add_fusion_facts(sidecar, value)  # its identity entries' facts too, as the commit wrote them
        else:
            sidecar[name] = value


def reuse_plan(root: Path, jobs: list[Job], kept_by_take: dict[str, list[SupersededVersion]], adapter: Any,
               known: dict[str, str | None], orphans: Iterable[str], save_masks: bool = False) -> dict[str, Source]:
    """``plan``'s and a dry run's view: the source each of ``jobs`` (those a render would not skip) would be made
    from, by take stem. A job whose own take is kept in superseded is restored, not reused (as render does);
    ``kept_by_take``: ``superseded.kept_versions_by_take``; ``known`` and ``orphans`` as ``renders_by_key``'s. Read
    only: a source a render would move aside before using it is named where it is now."""
    from .kept_versions import kept_render_of

    root = Path(root)
    jobs = [job for job in jobs if kept_render_of(root, job.stem, job.key, kept_by_take.get(job.stem, [])) is None]
    if not jobs:
        return {}
    sources = renders_by_key(root, [v for versions in kept_by_take.values() for v in versions], known, orphans)
    chosen: dict[str, Source] = {}
    for job in jobs:
        found = reusable_source(root, job, sources, adapter, save_masks)
        if found is not None:
            chosen[job.stem] = found.source
    return chosen
