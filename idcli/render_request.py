"""What the engine needs for one image: the request, its identity lines (one per conditioning character) and a
plate job's plate and faces.

The interface between plan and engine, split from plan.py: the engine, the executors and reproduce read
requests without the planning that makes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .method import MAX_PREPENDED_REFERENCES, FusionParams


@dataclass(frozen=True)
class IdentityLine:
    """One character's identity line in a dual-line image: its prompt, identity and where it sits.

    ``spans`` are the character offsets of the character's phrase in the job's *semantic* prompt,
    from which the engine takes that character's attention and so its mask.
    """

    name: str
    prompt: str
    strength: float
    spans: tuple[tuple[int, int], ...]
    embedding: Any = field(compare=False, repr=False)  # numpy (512,)
    references: Any = field(default=None, compare=False, repr=False)  # numpy (k, 512) for 'prepend'
    # FaceID-Plus v2: CLIP rows (aggregate, then each kept selfie's), numpy (1 + k, tokens, hidden); else None.
    clip: Any = field(default=None, compare=False, repr=False)

    def rows(self, count: int) -> Any:
        """The ``count`` embeddings its identity tokens are made from: the aggregate, then references."""
        import numpy as np

        rows = [np.asarray(self.embedding, np.float32)[None]]
        if count > 1:
            rows.append(np.asarray(self.references, np.float32)[:count - 1])
        return np.concatenate(rows)

    def clip_rows(self, count: int) -> Any:
        """The CLIP features paired with ``rows(count)``, row for row (FaceID-Plus v2)."""
        import numpy as np

        return np.asarray(self.clip, np.float32)[:count]


@dataclass(frozen=True)
class PlateFaceRequest:
    """One face of a plate job: the identity line (by character name) it takes, and where it sits."""

    character: str  # the name of one of the request's identity lines (``identity_lines()``)
    box: tuple[int, int, int, int]  # the face box, x, y, w, h in plate pixels
    crop_box: tuple[int, int, int, int]  # the square worked at the model's size (engine/plates.crop_box)


@dataclass(frozen=True)
class PlateRequest:
    """A plate job's plate (docs/plates.md): the engine re-generates each face's crop image-to-image at the
    request's working size (``width`` x ``height``, square) and composites it back into these pixels."""

    pixels: Any = field(compare=False, repr=False)  # numpy uint8 (h, w, 3|4), upright, as read from the file
    sha256: str
    faces: tuple[PlateFaceRequest, ...]
    strength: float  # the fraction of the schedule re-run on each face (engine/plates.start_index)
    # The plate file's RGB colour profile (ICC), which the image's PNG carries so it shows the plate's colours
    # (docs/plates.md, "Colour"); None: none (the PNG as before). Not in the key: the plate's sha256 covers it.
    icc_profile: bytes | None = field(default=None, compare=False, repr=False)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in plate pixels: the output image's size."""
        return int(self.pixels.shape[1]), int(self.pixels.shape[0])


@dataclass(frozen=True)
class RenderRequest:
    """What the engine needs for one image. Requests in one batch share their ``batch_signature``;
    the identity (embedding and strength) is per image, so one batch can hold several characters."""

    prompt: str
    negative_prompt: str
    seed: int
    width: int
    height: int
    steps: int
    guidance: float
    sampler: str
    identity_embedding: Any = field(default=None, compare=False, repr=False)  # numpy (512,) or None
    identity_strength: float = 0.0
    # How the identity is applied: "text" (none), "single" or "dual-line" (docs/method.md).
    method: str = "text"
    fusion: FusionParams | None = None  # dual-line's parameters (aggregation for single too)
    # The semantic line's prompt (dual-line) and where the conditioning character's phrase sits in it,
    # as character offsets: the engine turns them into token positions for the fusion mask.
    semantic_prompt: str | None = None
    subject_spans: tuple[tuple[int, int], ...] = ()
    identity_references: Any = field(default=None, compare=False, repr=False)  # numpy (k, 512) for 'prepend'
    # Several characters (dual-line): one identity line per conditioning character, in order of first
    # appearance; the fields above then hold the first one's identity. Empty: one character, described
    # by the fields above alone (the one-character arithmetic, unchanged).
    lines: tuple[IdentityLine, ...] = ()
    subject: str = ""  # the conditioning character's name (one character)
    # CLIP windows of 77 tokens each UNet row of this job gets (its longest text's; idcli/prompt_tokens.py).
    # All rows of one forward share a sequence length, and padding a row with windows changes its image,
    # so jobs batch only with jobs of the same count.
    text_windows: int = 1
    # A plate job (docs/plates.md): the faces of ``plate`` are re-generated at the working size, one crop per
    # face, each with its character's identity line and the face mask as that line's fusion mask; the
    # image returned is the plate, at the plate's size. None: text-to-image.
    plate: PlateRequest | None = None
    # FaceID-Plus v2: the identity's CLIP rows (the aggregate, then each kept selfie's), numpy
    # (1 + k, tokens, hidden), paired row for row with ``identity_rows()``. None for FaceID and text jobs.
    identity_clip: Any = field(default=None, compare=False, repr=False)

    def identity_lines(self) -> tuple[IdentityLine, ...]:
        """The identity lines of a dual-line image: one per conditioning character."""
        if self.lines:
            return self.lines
        if self.identity_embedding is None:
            return ()
        return (IdentityLine(self.subject, self.prompt, self.identity_strength, self.subject_spans,
                             self.identity_embedding, self.identity_references, self.identity_clip),)

    def identity_clip_rows(self) -> Any:
        """The CLIP features paired with ``identity_rows()`` (FaceID-Plus v2), or None."""
        import numpy as np

        if self.identity_clip is None or self.identity_embedding is None:
            return None
        return np.asarray(self.identity_clip, np.float32)[:len(self.identity_rows())]

    def identity_rows(self) -> Any:
        """The embeddings the identity tokens are made from: (n, 512), or None without an identity."""
        import numpy as np

        if self.identity_embedding is None:
            return None
        rows = [np.asarray(self.identity_embedding, np.float32)[None]]
        if self.fusion is not None and self.fusion.aggregation == "prepend" and self.identity_references is not None:
            rows.append(np.asarray(self.identity_references, np.float32)[:MAX_PREPENDED_REFERENCES])
        return np.concatenate(rows)

    def identity_count(self) -> int:
        """How many embeddings make this image's identity tokens (rows of one batch must agree)."""
        # Counted, not built: this runs for every job when planning and every request when batching.
        if (self.identity_embedding is None or self.fusion is None or self.fusion.aggregation != "prepend"
                or self.identity_references is None):
            return 1
        if self.lines:
            # Every line of one image runs in the same forward, so all take as many references as the
            # character with the fewest has.
            return 1 + min(min(len(line.references), MAX_PREPENDED_REFERENCES) for line in self.lines)
        return 1 + min(len(self.identity_references), MAX_PREPENDED_REFERENCES)

    def batch_signature(self) -> tuple[Any, ...]:
        signature = (self.width, self.height, self.steps, self.guidance, self.sampler, self.identity_count(),
                     self.text_windows)
        if self.plate is None:
            return signature  # text-to-image signatures are unchanged by plates existing
        from .engine.plates import start_index

        # Plate crops start at the schedule step their strength gives: crops batch with crops that share it.
        return (*signature, "plate", start_index(self.steps, self.plate.strength))
