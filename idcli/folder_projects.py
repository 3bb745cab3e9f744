"""Which project's renders an output folder holds, so that a run never overwrites another project's takes by
accident (same shot ids, same file names) and ``plan --json`` can say so first.

Split from run.py; read by the render session and by the plan document.
"""

from __future__ import annotations

from .store import OutputStore


def folder_projects(store: OutputStore) -> set[str]:
    """The projects whose renders an output folder holds: the last run's manifest, else the sidecars'."""
    from .superseded import read_sidecar_file

    manifest = store.read_manifest()
    if manifest is not None and isinstance(manifest.get("project"), str):
        return {manifest["project"]}
    projects = set()
    for sidecar in store.root.glob("[!.]*/*.json"):
        record = read_sidecar_file(sidecar)
        if record is not None and isinstance(record.get("project"), str) and "job_key" in record:
            projects.add(record["project"])
    return projects
