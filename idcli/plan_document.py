"""The ``idcli plan --json`` document: each job of a plan with its state in an output folder (read only), the
blocked takes, orphans, superseded takes and the folder's other project.

Split from run.py: it reads the folder as a render would find it and writes nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .folder_projects import folder_projects
from .paths import absolute
from .plan import Job, Plan
from .run_report import OutputFile
from .runtime import Runtime
from .store import OutputStore

if TYPE_CHECKING:
    from .shotlist import LoadedShotList


def job_states(plan: Plan, out_dir: Path) -> dict[tuple[str, int], Any]:
    """Each job's state in an output folder (read only), by take (shot id, take)."""
    return states_and_causes(plan, out_dir)[0]


def states_and_causes(plan: Plan, out_dir: Path, keys: dict[str, str | None] | None = None
                      ) -> tuple[dict[tuple[str, int], Any], dict[tuple[str, int], str]]:
    """Each job's state in an output folder, and what changed, in words, for each job stale because its key changed
    ((shot id, take) -> cause) where its sidecar can say (idcli/stale_causes.py). By take, not job key: two shots of
    the same content share a key, yet each take has its own image, one done while the other's is missing. Each
    sidecar is read once, by the state, and not kept once its cause is told: a film whose every shot changed would
    hold all its sidecars. ``keys``, when given, gets the key recorded at each job's image path
    (``reuse.recorded_key``)."""
    from dataclasses import replace

    from .reuse import recorded_key
    from .stale_causes import edited_cause

    store = OutputStore(out_dir)
    states, causes = {}, {}
    for job in plan.jobs:
        take = (job.shot_id, job.take)
        state = store.state(job)
        if keys is not None:
            keys[job.image_relpath] = recorded_key(job, state)
        if (cause := edited_cause(job, state, plan.model)) is not None:
            causes[take] = cause
        states[take] = replace(state, sidecar=None) if state.sidecar is not None else state
    return states, causes


# What ``plan_document``'s ``counts`` counts, in this order.
STATES = ("new", "done", "recoverable", "stale", "modified", "blocked")


def plan_document(plan: Plan, runtime: Runtime, out_dir: Path) -> dict[str, Any]:
    """The ``idcli plan --json`` document without its ``ok``/``exit_code``/``error`` head (docs/file-formats.md)."""
    from .provenance import model_record
    from .tokenizer_files import may_need_more_windows

    out = Path(out_dir)
    # What render would refuse (exit 5, a shot's folder a file too), not "every job is new".
    OutputStore(out).check_usable(job.shot_id for job in plan.jobs)
    known: dict[str, str | None] = {}
    states, causes = states_and_causes(plan, out, known)
    rows = []
    for job in plan.jobs:
        r = job.request
        state, take = states[job.shot_id, job.take], (job.shot_id, job.take)
        rows.append({"job_key": job.key, "shot_id": job.shot_id, "take": job.take, "seed": r.seed,
                     "subject": job.subject, "characters": list(job.characters), "method": r.method,
                     "conditioning": list(job.conditioning),
                     "size": {"width": r.width, "height": r.height},
                     "sampler": {"name": r.sampler, "steps": r.steps, "guidance": r.guidance},
                     "group": job.group, "state": state.status, "reason": state.reason or None,  # as in render
                     "cause": causes.get(take),  # what changed since its sidecar (idcli/stale_causes.py)
                     "image": OutputFile.of(out, job.image_relpath).as_dict(),
                     "sidecar": OutputFile.of(out, job.sidecar_relpath).as_dict(),
                     # issue 18: the prompt's CLIP tokens (null: the tokenizer is not here) and windows
                     # (null too where no tokenizer is here and a text may not fit one window: tokenizer_files.py)
                     "prompt_tokens": job.prompt_tokens,
                     "text_windows": None if may_need_more_windows(job) else r.text_windows,
                     # issue 12: a plate job's plate and faces (null: text-to-image); its image has the
                     # plate's size ("size" above is the square its faces are worked at)
                     "plate": _plate_row(job)})
    for blocked in plan.blocked:
        rows.append({"job_key": None, "shot_id": blocked.shot_id, "take": blocked.take, "seed": blocked.seed,
                     "subject": None, "characters": [blocked.character], "method": None, "conditioning": [],
                     "size": None,
                     "sampler": None, "group": None, "state": "blocked", "reason": blocked.problem.format(plan.source),
                     "cause": None,
                     "image": OutputFile.of(out, blocked.image_relpath).as_dict(),
                     "sidecar": OutputFile.of(out, blocked.sidecar_relpath).as_dict(),
                     "prompt_tokens": None, "text_windows": None, "plate": None})
    from .kept_versions import kept_render_of, kept_versions_by_take, list_superseded
    from .orphans import find_orphans
    from .reuse import reuse_plan

    # The takes a render (without --save-masks) puts back from superseded/ (their shot edited back: restored), and
    # of the rest those it makes of an image of the same job already in the folder (reused): neither is rendered,
    # so plan's "render again" leaves them out (at 2 a.m. that count is the night's cost).
    rendered = [job for job in plan.jobs if states[job.shot_id, job.take].status in ("new", "stale")]
    orphans = find_orphans(out, [*((j.shot_id, j.take) for j in plan.jobs),
                                 *((b.shot_id, b.take) for b in plan.blocked)])
    kept_by_take = kept_versions_by_take(out) if out.is_dir() and rendered else {}
    restoring = {job.stem: kept for job in rendered
                 if (kept := kept_render_of(out, job.stem, job.key, kept_by_take.get(job.stem, []))) is not None}
    reusing = reuse_plan(out, [job for job in rendered if job.stem not in restoring], kept_by_take, plan.adapter,
                         known, [orphan["image"]["path"] for orphan in orphans]) if out.is_dir() else {}
    for row in rows:
        stem = f"{row['shot_id']}_t{row['take']}"
        source = reusing.get(stem) if row["job_key"] else None
        row["reuses"] = OutputFile.of(out, source.image).as_dict() if source is not None else None
        kept = restoring.get(stem) if row["job_key"] else None
        row["restores"] = OutputFile.of(out, kept.image).as_dict() if kept is not None and kept.image else None
    store = OutputStore(out)
    projects = folder_projects(store)
    return {"project": plan.project, "file": plan.source, "out_dir": str(absolute(out)),
            "model": model_record(plan.model, runtime.device),
            "counts": {name: sum(1 for row in rows if row["state"] == name) for name in STATES}, "jobs": rows,
            "problems": [p.as_json(plan.source) for p in plan.problems],
            "orphans": orphans,
            "superseded": [v.as_dict(out) for v in list_superseded(out)],
            "other_project": None if not projects or plan.project in projects else sorted(projects)[0],
            "warnings": list(plan.warnings)}


def planned_in_folder(shots: Any, out_dir: str | Path, *, preset: str | None = None, device: str = "auto",
                      face_models: str | os.PathLike[str] | None = None) -> tuple[Plan, Runtime, dict[str, Any]]:
    """The plan of ``shots`` for ``out_dir`` as ``idcli plan`` makes it (the takes ``--retake-flagged`` added there
    included), its runtime, and its ``plan --json`` document without the head."""
    from .added_takes import added_takes
    from .arguments import as_loaded_shotlist, check_out_dir, check_path_or_none
    from .planning import plan_shotlist

    loaded = as_loaded_shotlist(shots, "shots")
    folder = check_out_dir(out_dir)
    plan, runtime = plan_shotlist(loaded, preset=preset, device=device,
                                  face_models=check_path_or_none("face_models", face_models),
                                  takes=added_takes(folder, loaded))
    return plan, runtime, plan_document(plan, runtime, folder)


def plan_folder(shots: LoadedShotList | str | Path, out_dir: str | Path, *, preset: str | None = None,
                device: str = "auto", face_models: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """What ``idcli plan --json SHOTS -o OUT`` prints, less its ``ok``/``exit_code``/``error`` head: each job with
    its ``state`` in ``out_dir``, and for a stale one its ``reason`` and ``cause`` (what changed since its sidecar,
    idcli/stale_causes.py); blocked takes, orphans, kept renders, warnings. Reads only; bad arguments raise
    ``InputError``, an unusable folder ``OutputError``, as the command's exit codes say."""
    return planned_in_folder(shots, out_dir, preset=preset, device=device, face_models=face_models)[2]


def _plate_row(job: Job) -> dict[str, Any] | None:
    """A plate job in ``plan --json``: the plate file, its size, the working size and each face."""
    if job.plate is None:
        return None
    p = job.plate
    return {"path": p["path"], "sha256": p["sha256"], "size": {"width": p["size"][0], "height": p["size"][1]},
            "working_size": p["working_size"], "strength": p["faces"][0]["strength"] if p["faces"] else None,
            "faces": [{"character": f["character"], "box": f["box"], "crop_box": f["crop_box"],
                       "detected": f["detected"]} for f in p["faces"]]}
