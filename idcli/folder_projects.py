"""Which project's renders an output folder holds, so that a run never overwrites another project's takes by
accident (same shot ids, same file names) and ``plan --json`` can say so first.

Split from run.py; read by the render session and by the plan document. ``other_project_note`` words what plan and
render say of it: render says it to its ``progress.note`` (a Python caller's progress object, the command's line).
"""

from __future__ import annotations

from pathlib import Path

from .store import OutputStore


def folder_projects(store: OutputStore) -> set[str]:
    """The projects whose renders an output folder holds: the last run's manifest, else the sidecars'."""
    from .kept_files import read_sidecar_file

    manifest = store.read_manifest()
    if manifest is not None and isinstance(manifest.get("project"), str):
        return {manifest["project"]}
    projects = set()
    for sidecar in store.root.glob("[!.]*/*.json"):
        record = read_sidecar_file(sidecar)
        if record is not None and isinstance(record.get("project"), str) and "job_key" in record:
            projects.add(record["project"])
    return projects


def other_project_note(folder: str | Path, other: str, project: str, went: str | None) -> str:
    """The note that ``folder`` holds renders of project ``other``, not ``project``, in the words of the surface in use
    (option_words): ``went`` None before a render (plan: render refuses it without force), else what the forced
    render does ("the render goes into it anyway" for its dry run, "rendering into it anyway")."""
    from .option_words import Option, words

    held = f"note: {folder} holds renders of project '{other}', not '{project}'"
    if went is None:
        return words((held, " (render refuses it without ", Option("force", True), ")"))
    return words((held, "; ", Option("force", True), f": {went} (that project's takes of the same shot ids go to "
                  ".idcli/superseded)"))
