"""Which UNet rows one model evaluation runs, and what each row is given.

All jobs of a batch go through the UNet in one forward. Its rows, in this order:

* the unconditional rows, one per job (classifier-free guidance only); they never carry an identity,
  so every line of a job shares its job's unconditional row;
* the conditional rows, one per job: the single-line prompt with its identity, the text-only prompt,
  or a dual-line job's semantic line (no identity);
* the identity lines of the dual-line jobs whose fusion window is open: one row per conditioning
  character, job after job, each with that character's prompt, embedding and strength.

So a dual-line job with k characters costs ``2 + k`` rows per evaluation inside its window (``1 + k``
without guidance) and 2 outside it. Every row's inputs are its own; nothing is repeated across the
batch, so no identity reaches another job (diffusers issue 9813).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..profile_ranges import IDENTITY, ranged
from ..render_request import IdentityLine, RenderRequest


def rows_per_evaluation(request: RenderRequest, fusing: bool = True) -> int:
    """UNet rows one job costs per model evaluation: ``(2 if CFG else 1) + k`` for a dual-line job with
    ``k`` identity lines inside its fusion window (``fusing``), ``(2 if CFG else 1)`` otherwise."""
    lines = len(request.identity_lines()) if request.method == "dual-line" and fusing else 0
    return (2 if request.guidance > 1.0 else 1) + lines


def rows_per_image(request: RenderRequest, evaluations: int) -> int:
    """UNet rows one job costs over all its evaluations: ``E * (2 if CFG else 1) + k * (end - start)``."""
    outside = rows_per_evaluation(request, fusing=False) * evaluations
    if request.method != "dual-line" or request.fusion is None:
        return outside
    start, end = request.fusion.window(evaluations)
    return outside + len(request.identity_lines()) * (end - start)


@dataclasses.dataclass(frozen=True)
class LineEntry:
    """One identity line of one job: its job's index in the batch and its character's line."""

    job: int
    line: IdentityLine
    row: int  # its row among every row the batch can use (``RowLayout.texts``)


class RowLayout:
    """The rows a batch can use, and which of them each evaluation runs."""

    def __init__(self, requests: list[RenderRequest], cfg: bool, identity_adapter: bool) -> None:
        self.requests = requests
        self.n = len(requests)
        self.cfg = cfg
        # Dual-line jobs: those with identity lines when an adapter is loaded (otherwise text-only rows).
        self.dual = [i for i, r in enumerate(requests)
                     if r.method == "dual-line" and r.identity_embedding is not None and identity_adapter]
        self.base = 2 * self.n if cfg else self.n  # rows before the first identity line
        self.entries: list[LineEntry] = []
        for i in self.dual:
            for line in requests[i].identity_lines():
                self.entries.append(LineEntry(i, line, self.base + len(self.entries)))
        self._by_job: dict[int, list[int]] = {}
        for k, entry in enumerate(self.entries):
            self._by_job.setdefault(entry.job, []).append(k)

    # -- what every row reads ----------------------------------------------------------------------

    @property
    def texts(self) -> list[str]:
        """The prompt of every row, in row order."""
        negative = [r.negative_prompt for r in self.requests] if self.cfg else []
        dual = set(self.dual)
        cond = [r.semantic_prompt or r.prompt if i in dual else r.prompt for i, r in enumerate(self.requests)]
        return negative + cond + [entry.line.prompt for entry in self.entries]

    def semantic_row(self, job: int) -> int:
        """The row of a job's semantic line (its conditional row)."""
        return (self.n if self.cfg else 0) + job

    def probe_views(self) -> list[RenderRequest]:
        """Per identity line, its job's request with that character's spans: whose attention makes its mask."""
        return [dataclasses.replace(self.requests[e.job], subject_spans=e.line.spans) for e in self.entries]

    def probe_rows(self) -> list[int]:
        """Per identity line, the semantic row whose attention to the character's tokens is recorded."""
        return [self.semantic_row(e.job) for e in self.entries]

    def entries_of(self, job: int) -> list[int]:
        """Indices into ``entries`` (and into the probe's maps) of one job's lines."""
        return self._by_job.get(job, [])

    @ranged(IDENTITY)
    def identity_inputs(self) -> tuple[Any, Any]:
        """Identity embeddings ``[rows, n, 512]`` and strengths ``[rows]`` for every row.

        Rows without an identity (the unconditional rows, text-only jobs, dual-line's semantic line) get
        zeros at strength 0, which is exactly text-only.
        """
        import numpy as np
        import torch

        # Every row of a batch holds as many embeddings (batch_signature); the largest count is that one even
        # where a plate crop without an identity (count 1) comes first.
        count = max(r.identity_count() for r in self.requests)
        zeros = np.zeros((count, 512), dtype=np.float32)
        single = [r.method != "dual-line" and r.identity_embedding is not None for r in self.requests]
        cond = [r.identity_rows() if single[i] else zeros for i, r in enumerate(self.requests)]
        cond_scale = [float(r.identity_strength) if single[i] else 0.0 for i, r in enumerate(self.requests)]
        rows = ([zeros] * self.n if self.cfg else []) + cond + [e.line.rows(count) for e in self.entries]
        scales = ([0.0] * self.n if self.cfg else []) + cond_scale + [float(e.line.strength) for e in self.entries]
        return torch.from_numpy(np.stack(rows)), torch.tensor(scales, dtype=torch.float32)

    @ranged(IDENTITY)
    def clip_inputs(self, tokens: int, hidden: int) -> Any:
        """FaceID-Plus v2's CLIP features ``[rows, n, tokens, hidden]`` for every row, paired row for row
        with ``identity_inputs``' embeddings; rows without an identity get zeros (at strength 0 they are
        never read)."""
        import numpy as np
        import torch

        count = max(r.identity_count() for r in self.requests)  # as identity_inputs counts them
        zeros = np.zeros((count, tokens, hidden), dtype=np.float32)

        def checked(rows: Any, who: str) -> Any:
            if rows is None:
                raise ValueError(f"{who} has no CLIP features; FaceID-Plus v2 needs them (identity/clip_features.py)")
            if rows.shape != zeros.shape:
                raise ValueError(f"{who}: CLIP features {list(rows.shape)}, the adapter reads {list(zeros.shape)}")
            return rows

        single = [r.method != "dual-line" and r.identity_embedding is not None for r in self.requests]
        cond = [checked(r.identity_clip_rows(), f"job {i}") if single[i] else zeros
                for i, r in enumerate(self.requests)]
        lines = [checked(None if e.line.clip is None else e.line.clip_rows(count), f"line {e.line.name}")
                 for e in self.entries]
        rows = ([zeros] * self.n if self.cfg else []) + cond + lines
        return torch.from_numpy(np.stack(rows))

    # -- which rows one evaluation runs ------------------------------------------------------------

    def rows(self, active: list[int]) -> list[int]:
        """The rows run while the jobs ``active`` have their fusion window open."""
        return list(range(self.base)) + [self.entries[k].row for i in active for k in self.entries_of(i)]

    def positions(self, active: list[int]) -> dict[int, int]:
        """Entry index -> its row's position in the forward's output, for the lines of ``active`` jobs."""
        out: dict[int, int] = {}
        for i in active:
            for k in self.entries_of(i):
                out[k] = self.base + len(out)
        return out

    def line_jobs(self, active: list[int]) -> list[int]:
        """The job of each identity-line row ``active`` runs, in row order (whose latent it denoises)."""
        return [i for i in active for _k in self.entries_of(i)]

    def inputs(self, active: list[int], embeds: Any, added_all: dict[str, Any]) -> tuple[Any, dict[str, Any] | None]:
        """The text embeddings and added conditioning (SDXL, identity) of the rows ``active`` runs."""
        import torch

        index = torch.tensor(self.rows(active), device=embeds.device)
        added = {k: v.index_select(0, index) if k != "image_embeds" else [v.index_select(0, index)]
                 for k, v in added_all.items()} or None
        return embeds.index_select(0, index), added

    def selections(self, schedule: list[tuple[int, ...]], embeds: Any, added_all: dict[str, Any],
                   scales: Any, clip: Any = None) -> dict[tuple[int, ...], RowSelection]:
        """The inputs of each distinct set of open windows in ``schedule`` (one entry per evaluation).

        Built before the denoising loop, so that inside it nothing is copied from the host to the device
        and nothing is read back: a GPU never waits for the host between evaluations. ``scales`` are the
        rows' strengths (a CPU tensor; None without an identity adapter); ``clip`` FaceID-Plus v2's CLIP
        features of every row (on the device; None for FaceID).
        """
        import torch

        out: dict[tuple[int, ...], RowSelection] = {}
        for active in dict.fromkeys(schedule):
            jobs = list(active)
            row_embeds, added = self.inputs(jobs, embeds, added_all)
            line_jobs = self.line_jobs(jobs)
            out[active] = RowSelection(
                row_embeds, added, self.positions(jobs),
                None if scales is None else scales[self.rows(jobs)],
                torch.tensor(line_jobs, device=embeds.device) if line_jobs else None,
                None if clip is None else clip.index_select(0, torch.tensor(self.rows(jobs), device=clip.device)))
        return out


@dataclasses.dataclass(frozen=True)
class RowSelection:
    """What one set of open fusion windows runs: the rows' inputs, where each identity line's output lands,
    the rows' strengths, and which job's latent each identity line denoises (an index on the device)."""

    embeds: Any
    added: dict[str, Any] | None
    positions: dict[int, int]
    row_scale: Any
    line_index: Any
    clip: Any = None  # FaceID-Plus v2: the rows' CLIP features [rows, n, tokens, hidden]

