"""A long prompt's key without the model's tokenizer: fetch its files, or know which prompts cannot be keyed.

A job whose longest text needs more than one CLIP window has ``text_windows`` in its key (job_keys.py), and only the
tokenizer can count windows. Where it cannot be read (a hub model not in the cache, a Ray driver that never downloaded
the model), the plan would take every job to fit one window while the engine encodes the prompt in full: one job, two
keys depending on the cache. So a render fetches the tokenizer's few small files first (as the model's own download
would cache them), and where it still cannot read them a prompt that might be longer than one window is refused
rather than keyed. A text of at most 75 UTF-8 bytes, as the tokenizer normalises it, always fits: a BPE token is at
least one byte of the normalised text (which lower-casing and NFC can make longer than the text given).
"""

from __future__ import annotations

import unicodedata
from typing import Any

# What CLIPTokenizer.from_pretrained(subfolder="tokenizer") reads: about 1.5 MB, not the gigabytes of weights. SD1.5 and
# SDXL publish vocab.json and merges.txt; a repository may publish tokenizer.json instead (or too).
TOKENIZER_FILES = ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json")

# Prompt tokens of one CLIP window (77 positions less the start and end tokens).
ONE_WINDOW_BYTES = 75


def fetch_tokenizer_files(model: Any) -> bool:
    """Download the hub model's ``tokenizer/`` files at its revision into the Hugging Face cache (where the full
    download puts them); False when the model is not a hub model, or neither its vocabulary and merges nor its
    ``tokenizer.json`` could be fetched (offline: the first failure ends it). A hub that does not answer, or refuses
    the repository, raises ``HubUnavailable`` (``tokenizer_problem``) after one request: no retries."""
    if model.source != "hub" or not model.id:
        return False
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import RemoteEntryNotFoundError
    from huggingface_hub.utils import httpx

    from .hub_reach import ask_hub_once, hub_problem

    # huggingface_hub retries a failed request for 25 s to minutes before the download gives up (hub_reach.py).
    problem = ask_hub_once(model.id, f"tokenizer/{TOKENIZER_FILES[0]}", model.revision)
    if problem is not None:
        raise HubUnavailable(problem)
    fetched = set()
    for name in TOKENIZER_FILES:
        try:
            hf_hub_download(model.id, f"tokenizer/{name}", revision=model.revision)  # HF_ENDPOINT, as the model's
        except RemoteEntryNotFoundError:  # a file this repository does not publish (tokenizer.json, or the BPE pair)
            continue
        except (OSError, ValueError, httpx.TransportError) as exc:  # offline, gated, a download cut off, a 503
            problem = hub_problem(exc, model.id, model.revision, downloading=True)
            if problem is not None:
                raise HubUnavailable(problem) from None
            break
        fetched.add(name)
    return {"vocab.json", "merges.txt"} <= fetched or "tokenizer.json" in fetched


class HubUnavailable(Exception):
    """The hub could not be asked for the tokenizer, or refused its repository: ``problem`` says why."""

    def __init__(self, problem: Any) -> None:
        super().__init__(problem.why)
        self.problem = problem


def job_texts(job: Any) -> list[str]:
    """The texts the engine encodes for ``job``'s UNet rows (what decides its window count)."""
    request = job.request
    texts = [request.prompt, request.negative_prompt if request.guidance > 1.0 else ""]
    if request.semantic_prompt is not None:
        texts.append(request.semantic_prompt)
    texts.extend(line.prompt for line in request.lines)
    return texts


def may_need_more_windows(job: Any) -> bool:
    """Whether ``job`` (planned without a tokenizer) has a text that may not fit one CLIP window."""
    return job.prompt_tokens is None and any(normalised_bytes(text) > ONE_WINDOW_BYTES for text in job_texts(job))


def normalised_bytes(text: str) -> int:
    """The UTF-8 bytes CLIP's tokenizer splits into BPE tokens: ``text`` after its normaliser (NFC, then lower case),
    or as given where that is longer. Both can lengthen a text: 'İ' (2 bytes) lower-cases to 'i' and a combining dot
    (3), and NFC writes U+0344 (2 bytes) as two marks (4), so 37 of them, 74 bytes, made up to 148 tokens."""
    return max(len(text.encode("utf-8")), len(unicodedata.normalize("NFC", text).lower().encode("utf-8")))


def unmeasured_shots(plan: Any) -> list[str]:
    """The shots (in plan order, once each) whose window count, and so key, cannot be known here."""
    return list(dict.fromkeys(job.shot_id for job in plan.jobs if may_need_more_windows(job)))


def download_hint(model: Any) -> str:
    """How to make the tokenizer readable here."""
    if model.source == "hub":
        revision = f" --revision {model.revision}" if model.revision not in (None, "main") else ""
        return (f"download the model (`hf download {model.id}{revision}`), or only its tokenizer "
                f"(`hf download {model.id}{revision} --include 'tokenizer/*'`), then run again")
    return f"copy the model's tokenizer/ files (vocab.json, merges.txt, tokenizer_config.json) into '{model.id}'"


def _shots_words(shots: list[str]) -> str:
    named = ", ".join(repr(s) for s in shots[:5]) + (f" and {len(shots) - 5} more" if len(shots) > 5 else "")
    return ("shot " if len(shots) == 1 else "shots ") + named


def unknown_keys_warning(model: Any, shots: list[str]) -> str:
    """``plan``'s warning for the shots it cannot key (it never downloads)."""
    one = len(shots) == 1
    return (f"cannot read the tokenizer of {model.label} here, and {_shots_words(shots)} "
            f"{'has a prompt' if one else 'have prompts'} longer than {ONE_WINDOW_BYTES} bytes that may need more "
            f"than one CLIP window: {'its' if one else 'their'} token and window counts, and so "
            f"{'its key, are' if one else 'their keys, are'} unknown (the key shown assumes one window); render "
            f"fetches the tokenizer first, or refuses {'it' if one else 'them'}. To count: "
            + download_hint(model))


def unknown_keys_error(model: Any, shots: list[str], problem: Any = None) -> Any:
    """The render's refusal (exit 4) when the tokenizer could not be fetched: nothing is rendered. ``problem`` (a
    ``hub_reach.HubProblem``): why the hub could not give it (unreachable, gated, no such repository), in place of
    the offline words."""
    from .errors import ModelUnavailableError

    cannot = (f"is not in the cache and cannot be downloaded: {problem.why}" if problem is not None
              else "cannot be read or downloaded here (offline, not in the cache)")
    fix = problem.fix if problem is not None else download_hint(model)
    return ModelUnavailableError(
        f"cannot key {_shots_words(shots)}: {'its prompt is' if len(shots) == 1 else 'their prompts are'} longer "
        f"than {ONE_WINDOW_BYTES} bytes and may need more than one CLIP window, but the tokenizer of {model.label} "
        f"{cannot}, so the window count that is part of the job key is unknown. Nothing was rendered. To fix: {fix}")
