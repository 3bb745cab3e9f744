"""Long prompts: how a prompt is laid out in CLIP's 77-token windows. No torch.

A CLIP text encoder sees 77 positions: a start token, up to 75 prompt tokens, an end token (then
padding). A longer prompt is cut in pieces of 75 tokens, each encoded as its own window
``[start, piece..., end, pad...]``, and the windows' embeddings are concatenated along the sequence:
the convention of AUTOMATIC1111's web UI and of compel, so prompts port between tools. (A1111 also
moves a cut back to a comma within 20 tokens; compel does not; idcli cuts at 75 like compel, so a
window always holds 75 tokens and a token's position follows from its index alone.) SDXL's pooled
embedding is the first window's; a row with fewer windows than the others of its UNet forward (the
negative prompt of a long prompt) is filled up with windows encoding the empty prompt.

A prompt that fits in one window is laid out exactly as the tokenizer alone lays it out, so its
encoding (and image) is the same as before long prompts were supported.
"""

from __future__ import annotations

import math
from typing import Any


def window_size(tokenizer: Any) -> int:
    """Positions per window (77 for CLIP)."""
    return int(tokenizer.model_max_length)


def piece_size(tokenizer: Any) -> int:
    """Prompt tokens per window: the window less its start and end tokens (75 for CLIP)."""
    return window_size(tokenizer) - 2


def prompt_token_ids(tokenizer: Any, text: str) -> list[int]:
    """The prompt's tokens, without start or end tokens, never truncated."""
    # Tokenised word by word: the same ids as one call, without the tokenizer's "sequence too long" warning.
    ids = tokenizer(text, add_special_tokens=False, truncation=False, verbose=False).input_ids
    return list(ids)


def token_count(tokenizer: Any, text: str) -> int:
    return len(prompt_token_ids(tokenizer, text))


def windows_for(tokens: int, piece: int = 75) -> int:
    """Windows a prompt of ``tokens`` tokens needs (at least one: the empty prompt has a window too)."""
    return max(1, math.ceil(tokens / piece))


def window_ids(tokenizer: Any, text: str, windows: int) -> list[list[int]]:
    """The token ids of ``text`` laid out in ``windows`` windows (more than it needs: the rest encode "")."""
    ids = prompt_token_ids(tokenizer, text)
    piece = piece_size(tokenizer)
    need = windows_for(len(ids), piece)
    if need > windows:
        raise ValueError(f"a prompt of {len(ids)} tokens needs {need} windows, not {windows}")
    size = window_size(tokenizer)
    pad = tokenizer.pad_token_id
    out = []
    for w in range(windows):
        chunk = ids[w * piece:(w + 1) * piece]
        row = [tokenizer.bos_token_id, *chunk, tokenizer.eos_token_id]
        out.append(row + [pad] * (size - len(row)))
    return out


def token_positions(tokenizer: Any, index: int) -> int:
    """The sequence position of the prompt's ``index``-th token (0-based) in the concatenated windows."""
    piece = piece_size(tokenizer)
    return (index // piece) * window_size(tokenizer) + 1 + index % piece


class PromptMeasure:
    """Token counts and window counts of prompts for one model's tokenizer (what ``plan`` shows)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.piece = piece_size(tokenizer)
        self._counts: dict[str, int] = {}

    def tokens(self, text: str) -> int:
        if text not in self._counts:
            self._counts[text] = token_count(self.tokenizer, text)
        return self._counts[text]

    def windows(self, *texts: str) -> int:
        """Windows every UNet row of a job made of ``texts`` gets: the most any of them needs."""
        return max(windows_for(self.tokens(t), self.piece) for t in texts)


def load_prompt_measure(model: Any) -> PromptMeasure | None:
    """The measure of ``model``'s (first) tokenizer, or None when it cannot be read here (a hub model not
    in the local cache; nothing is downloaded): the engine then still encodes every prompt in full, but ``plan``
    cannot count, and a prompt that may need more than one window cannot be keyed (tokenizer_files.py).

    SDXL's second tokenizer has the same vocabulary and merges, so it counts the same tokens.
    """
    try:
        if model.source == "builtin":
            from .engine.tokenizer import build_tiny_tokenizer
            from .presets import PRESETS

            components = PRESETS[model.preset].components
            return PromptMeasure(build_tiny_tokenizer(components["text_encoder"]["max_position_embeddings"]))
        from .package_imports import import_packages

        import_packages("transformers")  # two threads' first import at once: one failed
        from transformers import CLIPTokenizer

        extra = {"revision": model.revision} if model.source == "hub" and model.revision else {}
        # The cache only: planning never downloads (online, from_pretrained fetched the tokenizer, and asked the hub
        # for chat templates, from `idcli plan`). A render fetches it first where it must (tokenizer_files.py).
        tokenizer = CLIPTokenizer.from_pretrained(model.id, subfolder="tokenizer", local_files_only=True, **extra)
    except (OSError, ValueError, KeyError):
        return None
    return PromptMeasure(tokenizer) if read_from_its_files(tokenizer) else None


def read_from_its_files(tokenizer: Any) -> bool:
    """Whether ``tokenizer`` was read from its files. transformers 5 does not raise when they are missing (a hub
    model not in the cache, offline; an empty ``tokenizer/`` folder): it builds a CLIPTokenizer that knows only its
    special tokens and no window size, which would count every character of a prompt as a token, in one window
    (and encode every word as the unknown token). The engine refuses such a tokenizer (engine/build.py)."""
    return len(tokenizer) > len(tokenizer.all_special_ids) and tokenizer.model_max_length <= MAX_WINDOW


# transformers' stand-in for "no model_max_length" is about 1e30; a real CLIP window is 77 positions.
MAX_WINDOW = 4096
