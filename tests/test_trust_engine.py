"""Issue 18, part A: long prompts in full, and renders that are thread- and process-safe.

Each test is named after the bullet it guards ("Long prompts in full", "Thread- and process-safe").
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest
from cli_helpers import cli_env, spawn_render

import idcli
from idcli.shotlist import LoadedShotList

SMALL = """\
version: 1
project: trust
model: {{preset: {preset}}}
defaults: {{size: 64x64, steps: 3, guidance: 4.0, takes: 1}}
characters:
  mara:
    selfies: [selfies/mara_1.jpg]
    description: a red-haired woman
shots:
  - id: a010
    prompt: "{{mara}} on a wet street at night"
  - id: a020
    prompt: "an empty harbour at dawn, fog"
"""


def _images(out: Path) -> dict[str, str]:
    """Each image's pixels, hashed (the PNG text also records paths, such as the identity pack's)."""
    import numpy as np
    from PIL import Image

    return {p.relative_to(out).as_posix(): hashlib.sha256(np.asarray(Image.open(p)).tobytes()).hexdigest()
            for p in sorted(out.glob("*/*.png"))}


def _render(shots: Path, out: Path) -> dict[str, str]:
    report = idcli.render(idcli.load_shotlist(shots), out, device="cpu", batch_size=1)
    assert report.failed == 0 and report.rendered == 2, report.as_dict()
    return _images(out)


# -- Long prompts in full ------------------------------------------------------------------------------------

# Repeated, a prompt of any length (the tiny tokenizer makes about 1.5 tokens of a word).
FILLER = "a dark wet street at night with rain and fog near the old harbour under neon light"
LONG_PREFIX = ", ".join([FILLER] * 6)  # past the first window, short of the third


def _tokens(text: str) -> int:
    from idcli.engine.tokenizer import build_tiny_tokenizer
    from idcli.prompt_tokens import token_count

    return token_count(build_tiny_tokenizer(77), text)


def _sidecar(out: Path, shot: str) -> dict:
    import json

    return json.loads((out / shot / f"{shot}_t1.json").read_text("utf-8"))


LONG = """version: 1
project: long
model: {{preset: {preset}}}
defaults: {{size: 64x64, steps: 3, guidance: 4.0, takes: 1, negative_prompt: blurry}}
characters:
  mara:
    selfies: [selfies/mara_1.jpg]
    description: a woman
shots:
  - id: late
    prompt: "{prefix}, {{mara}} stands in the rain"
"""


@pytest.mark.parametrize("preset", ["tiny-sd", "tiny-sdxl"])
def test_long_prompts_keep_late_placeholder_tokens(write_shotlist, tmp_path: Path, preset: str) -> None:
    # Before issue 18 a {mara} past CLIP's 77 tokens was cut away: subject_tokens 0, an empty fusion mask,
    # and the sidecar still said conditions_image: true.
    assert _tokens(LONG_PREFIX) > 77
    shots = write_shotlist(LONG.format(preset=preset, prefix=LONG_PREFIX))
    report = idcli.render(idcli.load_shotlist(shots), tmp_path / "out", device="cpu", batch_size=1)
    assert report.failed == 0
    sidecar = _sidecar(tmp_path / "out", "late")
    assert sidecar["fusion"]["subject_tokens"] == _tokens("a woman") > 0
    assert sidecar["identity"][0]["conditions_image"] is True


def test_long_prompts_subject_positions_follow_the_window_layout() -> None:
    from idcli.engine.fusion import subject_token_positions
    from idcli.engine.tokenizer import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer(77)
    prompt = f"{LONG_PREFIX}, a woman stands"
    start = prompt.index("a woman")
    before, upto = _tokens(prompt[:start]), _tokens(prompt[:start + len("a woman")])
    assert 75 < before < upto < 150  # the woman's tokens are in the second window
    positions = subject_token_positions(tokenizer, prompt, ((start, start + len("a woman")),), 2 * 77)
    # The second window starts at position 77 with its start token; its prompt tokens are the 76th onwards.
    assert positions == [77 + 1 + (i - 75) for i in range(before, upto)]
    ids = _window_ids(tokenizer, prompt)
    assert tokenizer.convert_ids_to_tokens(ids[positions[0]]) == "a</w>"
    assert ids[77] == tokenizer.bos_token_id


def _window_ids(tokenizer, prompt: str) -> list[int]:
    from idcli.prompt_tokens import window_ids

    return [i for window in window_ids(tokenizer, prompt, 2) for i in window]


@pytest.mark.parametrize("preset", ["tiny-sd", "tiny-sdxl"])
def test_long_prompts_text_past_77_tokens_changes_the_image(tiny_engines, preset: str) -> None:
    from functools import partial

    from idcli.render_request import RenderRequest

    engine = tiny_engines(preset)
    base = partial(RenderRequest, negative_prompt="blurry", seed=3, width=64, height=64, steps=3, guidance=4.0,
                   sampler="ddim")
    a = engine.render([base(prompt=f"{LONG_PREFIX}, red coat")])[0]
    b = engine.render([base(prompt=f"{LONG_PREFIX}, blue hat")])[0]
    assert (a.pixels != b.pixels).any()


@pytest.mark.parametrize("preset", ["tiny-sd", "tiny-sdxl"])
def test_long_prompts_one_window_encodes_as_the_stock_pipeline(tiny_engines, preset: str) -> None:
    # Prompts that fit are encoded by diffusers' own encode_prompt, as before; the window encoder gives the
    # same tensors for one window, and a long prompt's first window is the stock encoding of its first 75
    # tokens (SDXL's pooled embedding is the first window's).
    import torch

    from idcli.engine.tokenizer import build_tiny_tokenizer

    engine = tiny_engines(preset)
    texts = ["a woman on a wet street at night", "", "blurry"]
    with torch.inference_mode():
        stock, stock_pooled = engine.text.encode(texts)
        mine, mine_pooled = engine.text.encode_windows(texts, 1)
        assert torch.equal(stock, mine)
        assert stock_pooled is None or torch.equal(stock_pooled, mine_pooled)
        tokenizer = build_tiny_tokenizer(77)
        ids = tokenizer(LONG_PREFIX, add_special_tokens=False).input_ids
        first = tokenizer.decode(ids[:75])
        assert _tokens(first) == 75
        long, long_pooled = engine.text.encode([LONG_PREFIX])
        head, head_pooled = engine.text.encode([first])
        assert long.shape[1] == 2 * 77
        torch.testing.assert_close(long[:, :77], head, rtol=0, atol=1e-6)
        if long_pooled is not None:
            torch.testing.assert_close(long_pooled, head_pooled, rtol=0, atol=1e-6)


def test_long_prompts_batch_composition_never_changes_an_image(tiny_engines) -> None:
    # Rows of one forward share a sequence length; a short job batched with a long one keeps its window
    # (filling it up with empty windows would change its pixels), so both images equal their solo renders.
    from functools import partial

    from idcli.render_request import RenderRequest

    engine = tiny_engines("tiny-sd")
    base = partial(RenderRequest, negative_prompt="blurry", width=64, height=64, steps=3, guidance=4.0, sampler="ddim")
    short = base(prompt="a woman on a wet street", seed=1)
    long = base(prompt=f"{LONG_PREFIX}, a woman", seed=2)
    together = engine.render([short, long])
    assert [r.facts["batch_members"] for r in together] == [[0], [1]]
    assert (together[0].pixels == engine.render([short])[0].pixels).all()
    assert (together[1].pixels == engine.render([long])[0].pixels).all()


def test_long_prompts_plan_shows_token_counts_and_groups_by_windows(write_shotlist) -> None:
    import json
    import subprocess
    import sys

    from cli_helpers import ROOT

    shots = write_shotlist(LONG.format(preset="tiny-sd", prefix=LONG_PREFIX) + """  - id: short
    prompt: "an empty harbour at dawn"
""")
    done = subprocess.run([sys.executable, "-m", "idcli", "plan", str(shots), "--device", "cpu", "--json"],
                          capture_output=True, text=True, env=cli_env(), cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    jobs = {j["shot_id"]: j for j in json.loads(done.stdout)["jobs"]}
    prompt = f"{LONG_PREFIX}, a woman stands in the rain"
    assert jobs["late"]["prompt_tokens"] == _tokens(prompt) and jobs["late"]["text_windows"] == 2
    assert jobs["short"]["prompt_tokens"] == _tokens("an empty harbour at dawn")
    assert jobs["short"]["text_windows"] == 1 and jobs["late"]["group"] != jobs["short"]["group"]
    table = subprocess.run([sys.executable, "-m", "idcli", "plan", str(shots), "--device", "cpu"],
                           capture_output=True, text=True, env=cli_env(), cwd=ROOT, timeout=300)
    assert "tokens" in table.stdout and f"{_tokens(prompt)} (2×77)" in table.stdout


def test_long_prompts_plan_counts_no_tokens_without_the_models_tokenizer(write_shotlist, tmp_path: Path) -> None:
    # A real preset planned before its weights are fetched: transformers 5 builds an empty CLIPTokenizer (no word,
    # no window size) when the tokenizer's files are not in the cache instead of raising, and plan counted every
    # character of the prompt as a token, all in one window (180 tokens for the quickstart's first shot). The
    # docs say `prompt_tokens` is null when the model's tokenizer is not on this machine.
    import json
    import subprocess
    import sys

    from cli_helpers import ROOT

    shots = write_shotlist("""\
version: 1
project: trust
model: {preset: sd15}
shots:
  - id: harbour
    prompt: "an empty harbour at dawn, fog over the water"
""")
    env = {**cli_env(), "HF_HUB_CACHE": str(tmp_path / "empty-hub-cache")}
    done = subprocess.run([sys.executable, "-m", "idcli", "plan", str(shots), "--device", "cpu", "--json"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    job = document["jobs"][0]
    assert job["prompt_tokens"] is None and job["text_windows"] == 1, job  # one window: what plan assumes unread
    assert any("cannot read the tokenizer" in warning for warning in document["warnings"]), document["warnings"]


def test_long_prompts_a_tokenizer_folder_without_its_files_is_not_measured(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from idcli.prompt_tokens import load_prompt_measure

    (tmp_path / "model" / "tokenizer").mkdir(parents=True)
    model = SimpleNamespace(source="local", id=str(tmp_path / "model"), revision=None, preset="sd15")
    assert load_prompt_measure(model) is None


def _without_tokens(shots: Path) -> LoadedShotList:
    """The shot list with mara's description made spaces, past validation: a shot list is refused one since
    2026-12-02 (tests/test_blank_description.py), and none other makes no token with the tiny tokenizer."""
    import dataclasses

    loaded = idcli.load_shotlist(shots)
    mara = loaded.shotlist.characters["mara"].model_copy(update={"description": "  "})
    shotlist = loaded.shotlist.model_copy(update={"characters": {"mara": mara}})
    return dataclasses.replace(loaded, shotlist=shotlist)


def test_long_prompts_character_without_tokens_is_not_claimed(write_shotlist, tmp_path: Path) -> None:
    # A description that makes no CLIP token: plan warns, and the sidecar does not claim the identity.
    shots = write_shotlist("""version: 1
project: empty
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, guidance: 4.0, takes: 1}
characters:
  mara: {selfies: [selfies/mara_1.jpg], description: "x"}
shots:
  - {id: s1, prompt: "{mara} on a street"}
""")
    plan, _ = idcli.plan_shotlist(_without_tokens(shots), device="cpu")
    # Said at the line of the description that makes no token (line 6), as validate's notes are said.
    assert [w for w in plan.warnings if "makes no CLIP token" in w] == [
        f"{shots}:6:54: characters.mara.description: the description of 'mara' makes no CLIP token, so in shot 's1' "
        "the fusion mask cannot find the character and the identity line is never applied (write words that "
        "describe 'mara')"]
    idcli.render(_without_tokens(shots), tmp_path / "out", device="cpu", batch_size=1)
    sidecar = _sidecar(tmp_path / "out", "s1")
    assert sidecar["fusion"]["subject_tokens"] == 0
    assert sidecar["identity"][0]["conditions_image"] is False


# -- Thread- and process-safe ------------------------------------------------------------------------------


def test_thread_safe_two_renders_in_one_process_give_the_sequential_images(write_shotlist, tmp_path: Path) -> None:
    # Each render builds its own tiny-preset engine; before issue 18 both seeded torch's global generator,
    # so two builds at once drew each other's numbers and rendered wrong pixels under correct keys.
    shots = write_shotlist(SMALL.format(preset="tiny-sd"))
    sequential = _render(shots, tmp_path / "sequential")
    results: dict[str, dict[str, str]] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def worker(name: str) -> None:
        try:
            barrier.wait()
            results[name] = _render(shots, tmp_path / name)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(name,)) for name in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not errors, errors
    assert results["one"] == sequential
    assert results["two"] == sequential


def test_process_safe_two_render_processes_give_the_sequential_images(write_shotlist, tmp_path: Path) -> None:
    shots = write_shotlist(SMALL.format(preset="tiny-sd"))
    sequential = _render(shots, tmp_path / "sequential")
    # A fresh IDCLI_HOME: both processes write the random adapter file at the same time.
    env = cli_env(tmp_path / "home")
    runs = [spawn_render(shots, tmp_path / name, env=env) for name in ("p1", "p2")]
    for run in runs:
        _stdout, stderr = run.communicate(timeout=600)
        assert run.returncode == 0, stderr
    assert _images(tmp_path / "p1") == sequential
    assert _images(tmp_path / "p2") == sequential


@pytest.mark.parametrize("preset, variant", [("tiny-sd", "faceid"), ("tiny-sdxl", "faceid"),
                                             ("tiny-sd", "faceid-plusv2")])
def test_a_render_leaves_the_callers_global_generators_as_they_were(preset: str, variant: str, write_shotlist,
                                                                    tmp_path: Path) -> None:
    """A pipeline that seeds torch for work of its own and calls ``idcli.render`` in between found its stream moved:
    the FaceID LoRA's layers were built as ``nn.Linear`` (a random initialisation from torch's global generator, then
    overwritten by the checkpoint's weights), so every render that loaded the adapter advanced it. Images are the
    checkpoint's weights either way; the global generators are the caller's."""
    import random

    import numpy as np
    import torch

    def numpy_keys() -> np.ndarray:
        state = np.random.get_state(legacy=True)
        assert isinstance(state, tuple)  # the legacy form: numpy's stub also admits the dict one
        return state[1].copy()

    adapter = "{adapter: {variant: " + variant + "}, "
    text = SMALL.format(preset=preset).replace("model: {", "model: " + adapter)
    shots = write_shotlist(text)
    torch.manual_seed(1234)
    np.random.seed(1234)
    random.seed(1234)
    before = (torch.get_rng_state(), numpy_keys(), random.getstate())
    _render(shots, tmp_path / "out")
    assert torch.equal(torch.get_rng_state(), before[0]), "torch's global generator was advanced"
    assert (numpy_keys() == before[1]).all() and random.getstate() == before[2]


@pytest.mark.parametrize("preset", ["tiny-sd", "tiny-sdxl"])
def test_thread_safe_private_generator_gives_the_weights_of_the_seeded_global_one(preset: str) -> None:
    # The same weights as every earlier version (torch.manual_seed(TINY_INIT_SEED), then construction):
    # existing images keep their pixels.
    import torch

    from idcli.engine.build import construct_modules
    from idcli.engine.private_rng import private_generator
    from idcli.engine.tokenizer import build_tiny_tokenizer
    from idcli.presets import TINY_INIT_SEED

    tokenizer = build_tiny_tokenizer(77)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_INIT_SEED)
        seeded = construct_modules(preset, tokenizer)
    with private_generator(TINY_INIT_SEED):
        private = construct_modules(preset, tokenizer)
    for name, module in seeded.items():
        if module is None:
            continue
        theirs = private[name].state_dict()
        for key, value in module.state_dict().items():
            assert torch.equal(value, theirs[key]), f"{name}.{key}"
