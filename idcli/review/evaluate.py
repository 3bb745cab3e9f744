"""Tables over runs: how well each run held its characters, from the QA in its sidecars.

Per run: images, images with QA, the share flagged (and per flag), per character the mean and lowest
identity cosine of its matched faces, the face-area share of matched faces by framing, and leakage
(mean and highest over the images where it is defined). Several runs side by side — for example the
same shot list rendered with ``method: single`` and ``method: dual-line`` — is how methods are judged
on real weights; on random-weight presets every figure is about noise.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean
from typing import Any

from ..errors import InputError
from ..paths import absolute
from .qa import FLAGS
from .runs import Run


@dataclass
class RunSummary:
    folder: str
    images: int
    with_qa: int
    flagged: int
    flags: dict[str, int]
    methods: dict[str, int]
    characters: dict[str, dict[str, Any]]
    face_area_by_framing: dict[str, dict[str, Any]]
    leakage: dict[str, Any]
    problems: list[str] = field(default_factory=list)

    @property
    def flagged_share(self) -> float | None:
        return round(self.flagged / self.with_qa, 4) if self.with_qa else None

    def as_dict(self) -> dict[str, Any]:
        return {"out_dir": self.folder, "images": self.images, "with_qa": self.with_qa, "flagged": self.flagged,
                "flagged_share": self.flagged_share, "flags": self.flags, "methods": self.methods,
                "characters": self.characters, "face_area_by_framing": self.face_area_by_framing,
                "leakage": self.leakage, "problems": self.problems}


def _stats(values: list[float]) -> dict[str, Any]:
    return {"n": len(values), "mean": round(fmean(values), 4) if values else None,
            "min": round(min(values), 4) if values else None, "max": round(max(values), 4) if values else None}


def summarise(run: Run) -> RunSummary:
    cosines: dict[str, list[float]] = defaultdict(list)
    appearances: Counter[str] = Counter()
    areas: dict[str, list[float]] = defaultdict(list)
    leaks: list[float] = []
    flags: Counter[str] = Counter({flag: 0 for flag in FLAGS})
    methods: Counter[str] = Counter()
    with_qa = flagged = 0
    for take in run.takes:
        methods[take.method or "text"] += 1
        qa = take.qa
        if qa is None or take.qa_error:
            continue
        with_qa += 1
        flagged += bool(take.flags)
        flags.update(take.flags)
        faces = [f for f in qa.get("faces") or [] if isinstance(f, dict)]
        for name, entry in (qa.get("characters") or {}).items():
            appearances[name] += 1
            if isinstance(entry, dict) and isinstance(entry.get("cosine"), int | float):
                cosines[name].append(float(entry["cosine"]))
                face = entry.get("face")
                if isinstance(face, int) and 0 <= face < len(faces):
                    share = faces[face].get("area_share")
                    if isinstance(share, int | float):
                        areas[take.framing or "unset"].append(float(share))
        if isinstance(qa.get("leakage"), int | float):
            leaks.append(float(qa["leakage"]))
    characters = {name: {"images": appearances[name], "matched": len(cosines[name]),
                         "mean_cosine": _stats(cosines[name])["mean"], "lowest_cosine": _stats(cosines[name])["min"]}
                  for name in sorted(appearances)}
    by_framing = {framing: {"faces": len(v), "mean_area_share": round(fmean(v), 5)}
                  for framing, v in sorted(areas.items())}
    leakage = {"images": len(leaks), "mean": _stats(leaks)["mean"], "max": _stats(leaks)["max"]}
    return RunSummary(str(absolute(run.root)), len(run.takes), with_qa, flagged, dict(flags), dict(methods),
                      characters, by_framing, leakage, list(run.problems))


def table_rows(summaries: list[RunSummary]) -> list[tuple[str, list[str]]]:
    """(metric, one cell per run) rows for the side-by-side table."""

    def cell(value: Any, digits: int = 3) -> str:
        if value is None:
            return "–"
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    rows: list[tuple[str, list[str]]] = [
        ("images", [str(s.images) for s in summaries]),
        ("methods", [", ".join(f"{k} {v}" for k, v in sorted(s.methods.items())) for s in summaries]),
        ("images with QA", [str(s.with_qa) for s in summaries]),
        ("flagged share", [cell(s.flagged_share) for s in summaries]),
    ]
    rows += [(f"  {flag}", [str(s.flags.get(flag, 0)) for s in summaries]) for flag in FLAGS]
    names = sorted({name for s in summaries for name in s.characters})
    for name in names:
        rows.append((f"{name}: mean cosine", [cell(s.characters.get(name, {}).get("mean_cosine")) for s in summaries]))
        rows.append((f"{name}: lowest cosine",
                     [cell(s.characters.get(name, {}).get("lowest_cosine")) for s in summaries]))
    framings = sorted({f for s in summaries for f in s.face_area_by_framing})
    for framing in framings:
        rows.append((f"face area share, {framing}",
                     [cell(s.face_area_by_framing.get(framing, {}).get("mean_area_share"), 4) for s in summaries]))
    rows.append(("leakage mean", [cell(s.leakage["mean"]) for s in summaries]))
    rows.append(("leakage max", [cell(s.leakage["max"]) for s in summaries]))
    return rows


def evaluate(folders: str | Path | Sequence[str | Path], shots_file: str | Path | None = None) -> list[RunSummary]:
    """One summary per output folder (``idcli evaluate OUT…``): ``folders`` a list of them, or one folder;
    ``shots_file`` the shot list to order and judge them by (None: the snapshot each folder's last render wrote).
    Arguments of the wrong type raise ``InputError`` before any folder is read (exit code 2)."""
    import os

    from ..arguments import check_path_or_none, shown
    from .runs import load_run

    # One folder as itself is one run (a str was read letter by letter: "o: no such output folder").
    given = [folders] if isinstance(folders, (str, os.PathLike)) else folders
    if not isinstance(given, (list, tuple)) or not given or not all(
            isinstance(f, (str, os.PathLike)) and os.fspath(f) for f in given):
        raise InputError(f"folders={shown(folders)}: give an output folder, or a list of them (str or pathlib.Path)",
                         field="folders")
    shots = check_path_or_none("shots_file", shots_file)
    return [summarise(load_run(folder, None if shots is None else Path(shots))) for folder in given]
