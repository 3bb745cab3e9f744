"""Keys that survive a new machine: identities keyed by what made them, hub adapter hashes, framing phrases."""

from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import plan_on_cpu

from idcli.identity import resolve as resolve_module
from idcli.identity.pack import read_pack, write_pack
from idcli.method import says_framing, with_framing

pytest.importorskip("insightface", exc_type=ImportError)

SHOTS = """\
version: 1
project: keys-test
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, takes: 1}
characters:
  mara: {selfies: [selfies/mara_1.jpg, selfies/mara_2.jpg]}
shots:
  - {id: dual, prompt: "{mara} on a wet street"}
  - {id: prepend, prompt: "{mara} in a bar", method: single, method_params: {aggregation: prepend}}
"""


def _analyzer_with_threads(models, threads: int):
    """A FaceAnalyzer whose ONNX Runtime sessions run ``threads`` intra-op threads."""
    import onnxruntime

    from idcli.identity.faces import FaceAnalyzer

    analyzer = FaceAnalyzer(models)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    for model in analyzer.app.models.values():
        model.session = onnxruntime.InferenceSession(model.model_file, options, providers=["CPUExecutionProvider"])
    return analyzer


def test_same_selfies_on_two_onnx_thread_settings_give_the_same_keys(write_shotlist, monkeypatch) -> None:
    from idcli.identity.faces import resolve_face_models
    from idcli.paths import state_dir

    path = write_shotlist(SHOTS)
    models = resolve_face_models()
    plans, embeddings = [], []
    for threads in (1, 2):
        # A fresh cache and an analyzer on this thread setting: the selfies are really encoded again.
        for cached in (state_dir() / "identities").glob("*.idpack"):
            cached.unlink()
        analyzer = _analyzer_with_threads(models, threads)
        calls: list[int] = []
        detect = analyzer.detect
        analyzer.detect = lambda rgb, detect=detect, calls=calls: calls.append(1) or detect(rgb)
        monkeypatch.setattr(resolve_module, "ANALYZERS", {f"{models.folder}|{models.hash}": analyzer})
        plan = plan_on_cpu(path)
        assert len(calls) == 2  # both selfies went through this thread setting's sessions
        plans.append([j.key for j in plan.jobs])
        embeddings.append(plan.jobs[0].identities[0].embedding)
    assert plans[0] == plans[1]
    # The keys would agree even where the bits do not (next test). Here the bits agree too, for these
    # small synthetic models on this CPU build; a real buffalo_l on another build need not.
    assert np.array_equal(embeddings[0], embeddings[1])


def test_keys_do_not_depend_on_the_embeddings_bits(write_shotlist) -> None:
    """The key rule itself: another machine's encoding of the same selfies (other last bits of the
    embedding) keeps every job key, while the sidecar still records the embedding actually used."""
    path = write_shotlist(SHOTS)
    before = plan_on_cpu(path)
    identity = before.jobs[0].identities[0]
    cached = resolve_module.cached_pack_path(identity.key)
    pack = read_pack(cached)
    tensors = dict(pack.tensors)
    # One ulp on every value, as a different BLAS or ONNX Runtime build gives.
    tensors["embedding"] = np.nextafter(tensors["embedding"], np.float32(2)).astype(np.float32)
    tensors["selfie_embeddings"] = np.nextafter(tensors["selfie_embeddings"], np.float32(2)).astype(np.float32)
    meta = {k: v for k, v in pack.meta.items() if k not in ("schema", "tool", "embedding_sha256")}
    write_pack(cached, meta, tensors)
    after = plan_on_cpu(path)
    assert [j.key for j in after.jobs] == [j.key for j in before.jobs]
    assert after.jobs[0].identities[0].embedding_sha256 != identity.embedding_sha256
    assert not np.array_equal(after.jobs[0].request.identity_embedding, before.jobs[0].request.identity_embedding)
    # What does change an identity's key: its selfies, its face models, the encoder version.
    key = resolve_module.identity_key(["a" * 64], "idcli-face-models-v1:x")
    assert key != resolve_module.identity_key(["b" * 64], "idcli-face-models-v1:x")
    assert key != resolve_module.identity_key(["a" * 64], "idcli-face-models-v1:y")
    from idcli.identity import build

    original = build.ENCODER_VERSION
    try:
        build.ENCODER_VERSION = "idcli-identity-encoder/999"
        assert key != resolve_module.identity_key(["a" * 64], "idcli-face-models-v1:x")
    finally:
        build.ENCODER_VERSION = original


def test_hub_adapter_records_the_resolved_weight_files_sha256(tmp_path, monkeypatch) -> None:
    """A hub adapter is keyed by id and revision; once resolved, the file's sha256 is recorded."""
    from idcli.adapters import AdapterIdentity, resolved_weight_sha256
    from idcli.hashing import sha256_file

    # A hub cache laid out as huggingface_hub writes it: refs/main names the snapshot holding the file.
    cache = tmp_path / "hub"
    repo = cache / "models--h94--IP-Adapter-FaceID"
    commit = "0123456789abcdef0123456789abcdef01234567"
    weight = repo / "snapshots" / commit / "faceid.safetensors"
    weight.parent.mkdir(parents=True)
    weight.write_bytes(b"weights of the adapter")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(cache))
    adapter = AdapterIdentity("hub", "h94/IP-Adapter-FaceID", "faceid.safetensors", "", "main", None, False, False)
    assert resolved_weight_sha256(adapter) == sha256_file(weight)
    assert "hub" in adapter.key_material()  # the key still names the hub id and revision only
    missing = AdapterIdentity("hub", "h94/none", "faceid.safetensors", "", "main", None, False, False)
    assert resolved_weight_sha256(missing) is None


@pytest.mark.parametrize(("prompt", "framing", "said"), [
    ("{mara} and {theo} talk across a table, medium shot", "medium", True),
    ("Medium-shot of a bar", "medium", True),
    ("an extreme close-up of her eyes", "close-up", True),
    ("closeup of a hand", "close-up", True),
    ("a wide shot of the harbour", "wide", True),
    ("a full body portrait", "full-body", True),
    ("a medium-sized dog", "medium", False),
    ("a wide street", "wide", False),
    ("a woman in a bar", "close-up", False),
    ("a wide shot", None, False),
])
def test_a_framing_phrase_is_not_added_when_the_prompt_says_it(prompt: str, framing: str | None,
                                                                said: bool) -> None:
    assert says_framing(prompt, framing) is said
    framed = with_framing(prompt, framing)
    assert (framed == prompt) is (said or framing is None)


def test_a_description_never_stands_in_for_the_shots_framing(write_shotlist) -> None:
    # "full-body wetsuit" in a character's description is what the character wears, not how the shot is
    # framed: only the shot's own words can make the framing phrase redundant.
    shots = """\
version: 1
project: framing-words
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, framing: full-body}
characters:
  kai: {selfies: [selfies/theo_1.jpg], description: a diver in a black full-body wetsuit}
  mara: {selfies: [selfies/mara_1.jpg], description: a red-haired woman}
shots:
  - {id: diver, prompt: "{kai} on the pier at dawn"}
  - {id: pair, prompt: "{kai} and {mara} on the pier at dawn"}
  - {id: said, prompt: "a full body shot of {mara} on the pier"}
"""
    jobs = {job.shot_id: job for job in plan_on_cpu(write_shotlist(shots)).jobs}
    phrase = "full-body shot, head to toe, "
    diver = jobs["diver"].request
    assert diver.prompt.startswith(phrase + "a diver in a black full-body wetsuit on the pier")
    assert diver.semantic_prompt.startswith(phrase)
    (start, end), = diver.subject_spans
    assert diver.semantic_prompt[start:end] == "a diver in a black full-body wetsuit"
    pair = jobs["pair"].request
    assert pair.semantic_prompt.startswith(phrase) and all(line.prompt.startswith(phrase) for line in pair.lines)
    for line, words in zip(pair.lines, ("a diver in a black full-body wetsuit", "a red-haired woman"), strict=True):
        (start, end), = line.spans
        assert pair.semantic_prompt[start:end] == words
    assert jobs["said"].request.prompt.startswith("a full body shot of a red-haired woman")


def test_a_prompts_own_words_keep_literal_braces_and_drop_placeholders() -> None:
    from idcli.shot_prompts import own_words

    assert own_words("a {{close-up}} of {mara}, wide shot") == "a {close-up} of  ; , wide shot"
    assert says_framing(own_words("{{full body}} {mara}"), "full-body") is True


def test_a_framing_alias_keys_as_its_framing(write_shotlist) -> None:
    # Script words ('CU', 'long shot') are read as the framing before anything is keyed: same key, same prompt.
    def keys(close: str, wide: str) -> list[tuple[str, str]]:
        shots = f"""\
version: 1
project: framing-aliases
model: {{preset: tiny-sd}}
defaults: {{size: 64x64, steps: 2}}
characters:
  mara: {{selfies: [selfies/mara_1.jpg]}}
shots:
  - {{id: near, prompt: "{{mara}} on the pier", framing: {close}}}
  - {{id: far, prompt: "{{mara}} on the pier", framing: {wide}}}
"""
        return [(job.key, job.request.prompt) for job in plan_on_cpu(write_shotlist(shots)).jobs]

    canonical = keys("close-up", "wide")
    assert keys("CU", "long shot") == canonical
    assert keys("Close_Up", "WS") == canonical
    assert canonical[0][0] != canonical[1][0]
