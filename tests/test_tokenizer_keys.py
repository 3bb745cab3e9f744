"""A long prompt's key must not depend on whether the model's tokenizer is in the cache (idcli/tokenizer_files.py).

A hub preset planned without its tokenizer took every job to fit one CLIP window, so a long prompt was keyed without
``text_windows`` on a fresh machine and with it once the model was cached: one job, two keys. A render now fetches the
tokenizer's files first, and refuses (exit 4) a prompt it cannot key; short prompts are keyed as before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hub_emulator import COMMIT, HubEmulator

import idcli
from idcli.errors import EXIT_MODEL_UNAVAILABLE, ModelUnavailableError
from idcli.presets import PRESETS

REPO = PRESETS["sd15"].default_id
LONG = ("a woman in a red coat walks through the wet neon street at night, rain and fog and smoke, "
        "a crowded bar behind her, golden light from a window, a train station in the distance, "
        "an old man with an umbrella stands near the door, cinematic film still, dramatic backlit lighting, "
        "detailed, sharp, moody colour, a quiet empty alley to the left and a tall ruined church to the right")
SHORT = "an empty harbour at dawn"  # 24 bytes: one window, whatever the tokenizer

SHOTS = """\
version: 1
project: keys
model: {{preset: sd15}}
defaults: {{takes: 1}}
shots:
  - id: {shot}
    prompt: "{prompt}"
"""


def _tokenizer_files() -> dict[str, bytes]:
    """A CLIP tokenizer's files as SD1.5's hub repository holds them under tokenizer/ (vocab.json, merges.txt, its
    config and special tokens map; no tokenizer.json), with the tiny presets' vocabulary."""
    import json

    from idcli.engine.tokenizer import tiny_vocab_and_merges

    vocab, merges = tiny_vocab_and_merges()
    specials = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
                "pad_token": "<|endoftext|>"}
    config = {"tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True, **specials}
    return {"tokenizer/vocab.json": json.dumps(vocab).encode(),
            "tokenizer/merges.txt": ("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges)).encode(),
            "tokenizer/tokenizer_config.json": json.dumps(config).encode(),
            "tokenizer/special_tokens_map.json": json.dumps(specials).encode()}


def _use_cache(monkeypatch: pytest.MonkeyPatch, cache: Path, endpoint: str | None = None) -> None:
    import huggingface_hub.constants as hub

    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)  # as conftest's HF_HUB_OFFLINE=1 says, however imported
    if endpoint is not None:  # online, through the emulator (HF_ENDPOINT, as huggingface_hub read it on import)
        monkeypatch.setattr(hub, "HF_HUB_OFFLINE", False)
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.setattr(hub, "ENDPOINT", endpoint)
        monkeypatch.setattr(hub, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")


def _cache_with_tokenizer(root: Path) -> Path:
    """A Hugging Face cache holding the preset's tokenizer files only, as huggingface_hub lays them out."""
    repo = root / ("models--" + str(REPO).replace("/", "--"))
    for name, data in _tokenizer_files().items():
        (repo / "snapshots" / COMMIT / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / "snapshots" / COMMIT / name).write_bytes(data)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)
    return root


def _dry_run(shots: Path, out: Path) -> dict[str, Any]:
    report = idcli.render(shots, out, device="cpu", dry_run=True, qa=False)
    return {job.shot_id: job.key for job in report.jobs}


def test_a_long_prompt_renders_under_one_key_whether_or_not_the_tokenizer_was_cached(
        write_shotlist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shots = write_shotlist(SHOTS.format(shot="rain", prompt=LONG))
    _use_cache(monkeypatch, _cache_with_tokenizer(tmp_path / "cached"))
    cached = _dry_run(shots, tmp_path / "out")
    plan, _runtime = idcli.plan_shotlist(shots, device="cpu")
    assert plan.jobs[0].request.text_windows > 1  # the prompt does need two windows
    # A fresh machine, online: the render fetches the tokenizer's files first, and keys the job as above.
    with HubEmulator({str(REPO): _tokenizer_files()}) as hub:
        _use_cache(monkeypatch, tmp_path / "fresh", hub.endpoint)
        assert _dry_run(shots, tmp_path / "out") == cached
        fetched = {path for method, path, _range in hub.requests if method == "GET"}
    assert fetched and all("/resolve/" in path and "/tokenizer/" in path for path in fetched), fetched


def test_a_long_prompt_that_cannot_be_keyed_is_refused_before_anything_renders(
        write_shotlist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shots = write_shotlist(SHOTS.format(shot="rain", prompt=LONG))
    _use_cache(monkeypatch, _cache_with_tokenizer(tmp_path / "cached"))
    cached = _dry_run(shots, tmp_path / "out")
    _use_cache(monkeypatch, tmp_path / "empty")  # offline (conftest) and not cached
    # Before: the dry run (and the render) keyed the take for one window, a key the cached machine never makes.
    with pytest.raises(ModelUnavailableError, match="cannot key shot 'rain'"):
        assert _dry_run(shots, tmp_path / "out") == cached
    # A Ray run plans on its driver, through the same step (a dry run without a cluster address starts no Ray).
    with pytest.raises(ModelUnavailableError, match="cannot key shot 'rain'"):
        idcli.render(shots, tmp_path / "out", device="cpu", dry_run=True, qa=False, executor="ray")
    with pytest.raises(ModelUnavailableError) as refused:
        idcli.render(shots, tmp_path / "out", device="cpu", qa=False)
    text = str(refused.value)
    assert refused.value.exit_code == EXIT_MODEL_UNAVAILABLE
    assert "shot 'rain'" in text and "--include 'tokenizer/*'" in text and "Nothing was rendered" in text
    assert not (tmp_path / "out").exists()
    # plan never downloads: it says the window count is unknown rather than showing a one-window count.
    from idcli.plan_document import planned_in_folder

    _plan, _runtime, document = planned_in_folder(shots, tmp_path / "out", device="cpu")
    assert document["jobs"][0]["text_windows"] is None and document["jobs"][0]["prompt_tokens"] is None
    assert any("shot 'rain'" in w and "its key, are unknown" in w for w in document["warnings"]), document["warnings"]


def test_short_prompts_are_keyed_as_before_without_the_tokenizer(
        write_shotlist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shots = write_shotlist(SHOTS.format(shot="harbour", prompt=SHORT))
    _use_cache(monkeypatch, _cache_with_tokenizer(tmp_path / "cached"))
    cached = _dry_run(shots, tmp_path / "out")
    # Online but uncached: nothing is downloaded for a prompt of at most 75 bytes, and its key is the same.
    with HubEmulator({str(REPO): _tokenizer_files()}) as hub:
        _use_cache(monkeypatch, tmp_path / "fresh", hub.endpoint)
        assert _dry_run(shots, tmp_path / "out") == cached
        assert not [request for request in hub.requests if "/resolve/" in request[1]], hub.requests


def test_a_short_prompt_that_lower_casing_lengthens_is_not_taken_for_one_window(
        write_shotlist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 74 UTF-8 bytes, but CLIP's tokenizer lower-cases before BPE and 'İ' (2 bytes) becomes 'i' and a combining dot
    # (3 bytes): 111 bytes to cover, so more than 75 tokens can come of it (the tiny vocabulary makes 111).
    shots = write_shotlist(SHOTS.format(shot="istanbul", prompt="İ" * 37))
    _use_cache(monkeypatch, _cache_with_tokenizer(tmp_path / "cached"))
    plan, _runtime = idcli.plan_shotlist(shots, device="cpu")
    assert plan.jobs[0].request.text_windows > 1
    _use_cache(monkeypatch, tmp_path / "empty")  # offline and not cached
    # Before: at most 75 bytes, so taken to fit one window and keyed without its windows, silently.
    with pytest.raises(ModelUnavailableError, match="cannot key shot 'istanbul'"):
        _dry_run(shots, tmp_path / "out")


def test_a_selection_of_short_prompts_renders_offline_beside_a_long_prompt_it_leaves_out(
        write_shotlist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = SHOTS.format(shot="rain", prompt=LONG) + f'  - id: harbour\n    prompt: "{SHORT}"\n'
    shots = write_shotlist(text)
    _use_cache(monkeypatch, _cache_with_tokenizer(tmp_path / "cached"))
    cached = _dry_run(shots, tmp_path / "out")
    _use_cache(monkeypatch, tmp_path / "empty")  # offline and not cached
    # Before: refused (exit 4) for shot 'rain', which --only leaves out; the harbour's key needs no tokenizer.
    report = idcli.render(shots, tmp_path / "out", device="cpu", dry_run=True, qa=False, only="harbour")
    assert {job.shot_id: job.key for job in report.jobs} == {"harbour": cached["harbour"]}
    with pytest.raises(ModelUnavailableError, match="cannot key shot 'rain'"):
        idcli.render(shots, tmp_path / "out", device="cpu", dry_run=True, qa=False, only=["rain", "harbour"])
    # a pattern (night-counts-3) stands for the shots it matches: the long prompt it selects is refused as by its id
    report = idcli.render(shots, tmp_path / "out", device="cpu", dry_run=True, qa=False, only="h*")
    assert {job.shot_id: job.key for job in report.jobs} == {"harbour": cached["harbour"]}
    with pytest.raises(ModelUnavailableError, match="cannot key shot 'rain'"):
        idcli.render(shots, tmp_path / "out", device="cpu", dry_run=True, qa=False, only="r?in")
