"""``--compile`` across mixed batches (engine/compiled.py): one graph per probe state, not per batch kind; the
compiled images equal the uncompiled ones bit for bit; and a fallback is said, never silent.

The UNet is compiled with torch's ``eager`` backend here (a backend that counts the graphs it is handed and
runs each one op by op, as ``backend="eager"`` does): dynamo traces, guards and recompiles exactly as it
does for inductor, so the graph count is inductor's, at a fraction of the compile time, and the arithmetic
is the uncompiled UNet's.

Tracing the UNet is most of this file's time (seconds a graph on a quiet machine, over a minute under a loaded
CI), and three tests compile the session's tiny-sd engine and need its text-only graph first. Dynamo keeps a graph
in the cache of the UNet forward's code object and reuses it for any later ``torch.compile`` of that forward with
the same backend whose guards it passes, so that graph is traced once (``text_graph``) and the three count only the
graphs their own batches add.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils._python_dispatch import TorchDispatchMode

import idcli
from idcli.engine.compiled import CompiledForward, compile_unet
from idcli.engine.fusion import AttentionProbe, attention_level, ceil_grid, mark_attention_levels

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"

# One worker under pytest-xdist, the tests in file order: those that compile the session's engine share one trace of
# its text-only graph (text_graph), which two workers would each trace.
pytestmark = pytest.mark.xdist_group("compile")

SHOTS = """\
version: 1
project: compile
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 3, guidance: 5.0, takes: 1}
characters:
  mara: {selfies: [selfies/mara_1.jpg]}
  theo: {selfies: [selfies/theo_1.jpg]}
shots:
  - {id: text, prompt: "an empty lighthouse at dusk"}
  - {id: dual, prompt: "{mara} on a pier", method: dual-line, method_params: {fusion_start: 0.34}}
  - {id: single, prompt: "{theo} in a harbour", method: single}
  - {id: two, prompt: "{theo} and {mara} by a boat", method: dual-line}
  - {id: zero, prompt: "{theo} at a desk", method: single, identity_strength: 0}
  - {id: wide, prompt: "{mara} on a roof", method: dual-line, size: 80x64}
"""

# Text-only, single line, dual-line with one and with two characters, a strength-0 character (a text-only
# job once planned), batch sizes 1 to 4 (2 to 11 UNet rows), windows opening mid-batch, another image size;
# the test adds a plate shot (face crops of their own sizes).
SEQUENCE = [["text"], ["single"], ["dual"], ["text", "single"], ["text", "dual", "single"], ["two"], ["zero"],
            ["text", "single", "zero"], ["dual", "two"], ["single"], ["wide"], ["text", "dual", "single", "two"]]


def _plan() -> tuple[object, dict[str, object]]:
    """The adapter and each shot's request (one take each)."""
    from idcli.planning import plan_shotlist

    plan, _runtime = plan_shotlist(idcli.loads_shotlist(SHOTS, base_dir=str(RECIPES)), device="cpu")
    return plan.adapter, {job.shot_id: job.request for job in plan.jobs}


def _pixels(path: object) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def _plate_request(like):
    """A plate shot's request (engine/plate_render.py): two faces of a 96x80 plate, re-generated from the
    plate's latents part-way through the schedule, in crops of their own sizes, without the probe."""
    from idcli.engine.plates import crop_box
    from idcli.render_request import PlateFaceRequest, PlateRequest

    pixels = np.random.default_rng(0).integers(0, 256, (80, 96, 3), dtype=np.uint8)
    faces = [("mara", (8, 8, 40, 44)), ("mara", (52, 20, 88, 62))]
    plate = PlateRequest(pixels, "plate-sha", tuple(PlateFaceRequest(name, box, crop_box(box, (96, 80)))
                                                    for name, box in faces), 0.6)
    return dataclasses.replace(like, method="plate", plate=plate, steps=4)


@contextlib.contextmanager
def _compiled(engine, backend, *, fresh: bool = True) -> Iterator[CompiledForward]:
    """The engine's UNet compiled for the block, as ``--compile`` does it; uncompiled again after it. ``fresh``:
    dynamo reset before and after, so the block traces every graph it needs; otherwise the graphs dynamo holds
    are kept (``text_graph``)."""
    if fresh:
        torch._dynamo.reset()
    engine.compiled = compile_unet(engine.pipe.unet, backend)
    try:
        yield engine.compiled
    finally:
        del engine.pipe.unet.forward
        engine.compiled = None
        if fresh:
            torch._dynamo.reset()


GRAPHS: list[torch.fx.GraphModule] = []  # every graph counting_eager was handed, in order


def counting_eager(gm: torch.fx.GraphModule, example_inputs: list) -> object:
    """torch's eager backend, counting: what ``backend="eager"`` returns, the captured graph run op by op. One
    function for the module, since dynamo reuses a cached graph only under the backend that made it."""
    GRAPHS.append(gm)
    return gm.forward


def _unet_graphs(engine) -> list:
    """The graphs dynamo holds for UNet forwards (every UNet of this class: the cache is the code object's)."""
    from torch._dynamo.eval_frame import _debug_get_cache_entry_list

    return _debug_get_cache_entry_list(type(engine.pipe.unet).forward.__code__)


_TEXT_GRAPH: dict[str, object] = {}  # the UNet and the cache entry text_graph traced, while dynamo holds it


@pytest.fixture(scope="module", autouse=True)
def _no_graph_left_for_other_files() -> Iterator[None]:
    """The graphs the tests here keep for one another (``_compiled(fresh=False)``) go with the module."""
    yield
    torch._dynamo.reset()
    _TEXT_GRAPH.clear()


@pytest.fixture
def text_graph(tiny_engines) -> tuple[object, object, dict[str, object]]:
    """The session's tiny-sd engine with SHOTS' adapter, that adapter and each shot's request; dynamo holding the
    graph of a text-only batch (without the probe) for it, traced with ``counting_eager``, and no other.

    Traced here by the first test that asks, and again whenever dynamo holds anything else: a test that reset it or
    added a graph (the probe's), another file's UNet compiled in this process. A test that reuses it sees its
    batches through exactly the graph they would have made first, guards included."""
    adapter, requests = _plan()
    engine = tiny_engines("tiny-sd", adapter)
    held = _unet_graphs(engine)
    if not (len(held) == 1 and _TEXT_GRAPH.get("unet") is engine.pipe.unet and held[0].code is _TEXT_GRAPH["code"]):
        _TEXT_GRAPH.clear()
        torch._dynamo.reset()
        before = len(GRAPHS)
        with _compiled(engine, counting_eager, fresh=False) as compiled:
            engine.render([requests["text"]])
            assert compiled.fallback is None
        held = _unet_graphs(engine)
        assert len(GRAPHS) - before == 1 and len(held) == 1, (len(GRAPHS) - before, held)
        _TEXT_GRAPH.update(unet=engine.pipe.unet, code=held[0].code)
    return engine, adapter, requests


# The tests that reuse text_graph's graph and add none come first and the one that adds the probe's graph last
# (after it, text_graph traces again): in this order, in one process, the UNet is traced once for all three.


def test_a_compiled_render_says_so_in_its_sidecar_and_reproduce_explains_a_difference(
        text_graph, write_shotlist, tmp_path) -> None:
    """inductor may move an 8-bit value by one (docs/performance.md) while the job key stays the same: the
    sidecar's executor records `compile`, and `idcli reproduce` (which renders uncompiled) says why the image
    differs instead of leaving a bare "different"."""
    from idcli.reproduce import compile_note

    shots = idcli.load_shotlist(write_shotlist(SHOTS))
    engine, _adapter, _requests = text_graph
    plain = idcli.render(shots, tmp_path / "plain", device="cpu", only=["text"], engine_factory=lambda m, r, a: engine)
    with _compiled(engine, counting_eager, fresh=False):
        compiled = idcli.render(shots, tmp_path / "compiled", device="cpu", only=["text"],
                                engine_factory=lambda m, r, a: engine)
    [plain_job], [compiled_job] = plain.jobs, compiled.jobs
    plain_sidecar = json.loads(Path(plain_job.sidecar).read_text("utf-8"))
    compiled_sidecar = json.loads(Path(compiled_job.sidecar).read_text("utf-8"))
    assert compiled_sidecar["job_key"] == plain_sidecar["job_key"]  # speed only: never in the key
    assert compiled_sidecar["executor"]["compile"] is True and "compile" not in plain_sidecar["executor"]
    assert compile_note(plain_sidecar) is None
    # named as the caller names it: compile=True to Python (idcli reproduce says --compile: test_argument_words.py)
    assert "compile=True" in compile_note(compiled_sidecar) and "differ by one" in compile_note(compiled_sidecar)


def test_a_recompile_limit_is_said_and_the_run_goes_on_uncompiled(text_graph, write_shotlist, tmp_path) -> None:
    """With torch's recompile limit at 1, the second graph (the probe's) cannot be made: the engine says so in
    the batch's facts, the run prints a warning, and every image still equals the uncompiled one."""
    shots = idcli.load_shotlist(write_shotlist(SHOTS))
    engine, _adapter, _requests = text_graph
    only = ["text", "dual"]
    reference = idcli.render(shots, tmp_path / "reference", device="cpu", batch_size=1, only=only,
                             engine_factory=lambda m, r, a: engine)
    notes: list[str] = []

    class Notes:
        def start(self, total, already_done): ...
        def advance(self, outcome): ...
        def note(self, text): notes.append(text)
        def stop(self): ...

    # The text job runs through text_graph's graph (dynamo's first for this forward), the dual-line job needs the
    # probe's: a second graph, past the limit.
    graphs_before = len(GRAPHS)
    with _compiled(engine, counting_eager, fresh=False) as compiled, torch._dynamo.config.patch(recompile_limit=1):
        report = idcli.render(shots, tmp_path / "compiled", device="cpu", batch_size=1, only=only,
                              engine_factory=lambda m, r, a: engine, progress=Notes())
        assert compiled.fallback is not None and "recompile limit (1 graphs" in compiled.fallback
    assert len(GRAPHS) == graphs_before  # the text job's graph was text_graph's; the probe's was never made
    assert report.rendered == 2 and report.failed == 0
    warnings = [n for n in notes if n.startswith("warning: compile=True gave up")]  # as Python names it
    assert len(warnings) == 1 and "recompile limit" in warnings[0], notes
    for a, b in zip(report.jobs, reference.jobs, strict=True):
        assert np.array_equal(_pixels(a.image), _pixels(b.image))


def test_mixed_batches_share_one_graph_per_probe_state(text_graph) -> None:
    """The old processors (Python flags, caches filled while traced, a new probe each batch) made 8 graphs in
    the first five batches of this sequence, hit torch's recompile limit and ran uncompiled from there,
    silently. Now: one graph without the attention probe (``text_graph``'s, traced for the text-only batch this
    sequence starts with), one with it, for the whole sequence."""
    engine, _adapter, requests = text_graph
    batches = [[requests[i] for i in ids] for ids in SEQUENCE] + [[_plate_request(requests["dual"])]]
    expected = [[r.pixels for r in engine.render(batch)] for batch in batches]
    assert expected[-1][0].shape == (80, 96, 3)  # the plate's size: its faces were composited into it

    from torch._dynamo.utils import counters

    unique_before, graphs_before = counters["stats"]["unique_graphs"], len(GRAPHS)
    with _compiled(engine, counting_eager, fresh=False) as compiled:
        per_batch = []
        for batch, want in zip(batches, expected, strict=True):
            before = len(GRAPHS)
            results = engine.render(batch)
            per_batch.append(len(GRAPHS) - before)
            for got, pixels in zip(results, want, strict=True):
                assert np.array_equal(got.pixels, pixels)  # bit for bit: the compiled UNet's arithmetic is eager's
            assert all("compile_fallback" not in r.facts for r in results)
        assert compiled.fallback is None
    assert counters["stats"]["unique_graphs"] - unique_before == len(GRAPHS) - graphs_before  # torch's own count
    assert len(_unet_graphs(engine)) == 2, per_batch  # text_graph's and one more
    assert per_batch[0] == 0  # text-only: the graph without the probe, text_graph's ...
    assert per_batch[2] == 1 and sum(per_batch) == 1, per_batch  # ... the first dual-line batch: the probe's


PLUS_SHOTS = """\
version: 1
project: compile-plus
model: {preset: tiny-sd, adapter: {variant: faceid-plusv2}}
defaults: {size: 64x64, steps: 3, guidance: 4.0, takes: 1}
characters:
  mara: {selfies: [selfies/mara_1.jpg, selfies/mara_2.jpg]}
  theo: {selfies: [selfies/theo_1.jpg]}
shots:
  - {id: single, prompt: "{mara} on a wet street at night", method: single}
  - {id: theo, prompt: "{theo} at a table", method: single}
  - {id: text, prompt: "an empty street at night"}
"""


def test_faceid_plus_batches_share_one_graph(write_shotlist) -> None:
    """FaceID-Plus v2 sets its CLIP rows on the projection when the rows change (a tensor attribute): a batch
    without identities (zero features) and batches with one or two characters' features reuse one graph
    (no dual-line job here, so no probe), and the images equal the uncompiled ones."""
    from cli_helpers import plan_on_cpu

    from idcli.engine import Engine
    from idcli.runtime import Runtime

    plan = plan_on_cpu(write_shotlist(PLUS_SHOTS))
    assert plan.adapter.is_plus
    engine = Engine(plan.model, Runtime("cpu", "float32"), plan.adapter)
    requests = {job.shot_id: job.request for job in plan.jobs}
    batches = [[requests[i] for i in ids] for ids in (["text"], ["single"], ["single", "text", "theo"])]
    expected = [[r.pixels for r in engine.render(batch)] for batch in batches]
    before = len(GRAPHS)
    with _compiled(engine, counting_eager) as compiled:  # fresh: an engine of its own, its own graph
        for batch, want in zip(batches, expected, strict=True):
            for got, pixels in zip(engine.render(batch), want, strict=True):
                assert np.array_equal(got.pixels, pixels)
        assert compiled.fallback is None
    assert len(GRAPHS) - before == 1


def test_a_compiler_failure_falls_back_and_says_why(caplog: pytest.LogCaptureFixture) -> None:
    def broken_backend(gm, example_inputs):
        raise RuntimeError("no C++ compiler here")

    torch._dynamo.reset()
    forward = CompiledForward(lambda x: torch.sin(x) * 2, backend=broken_backend)
    x = torch.linspace(0, 1, 5)
    with caplog.at_level("WARNING", logger="idcli.engine.compiled"):
        assert torch.equal(forward(x), torch.sin(x) * 2)
        assert torch.equal(forward(x), torch.sin(x) * 2)  # uncompiled from then on, said once
    assert forward.fallback is not None and "no C++ compiler here" in forward.fallback
    assert len([r for r in caplog.records if "runs uncompiled" in r.getMessage()]) == 1
    torch._dynamo.reset()


def test_out_of_memory_while_compiling_is_not_a_fallback() -> None:
    """An out-of-memory error is the run's to handle (it halves the batch), not a reason to stop compiling."""
    def oom_backend(gm, example_inputs):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    torch._dynamo.reset()
    forward = CompiledForward(lambda x: x + 1, backend=oom_backend)
    with pytest.raises(Exception, match="out of memory"):
        forward(torch.ones(3))
    assert forward.fallback is None
    torch._dynamo.reset()


def test_probe_maps_equal_one_interpolation_per_layer() -> None:
    """``maps`` resamples each level's layers in one interpolation and adds them in the order they ran: the
    same bits as resampling and adding layer by layer (the formulation before), odd latent sizes included."""
    generator = torch.Generator().manual_seed(3)
    for latent_hw in [(8, 8), (13, 10), (32, 24)]:
        levels = {0, 1, 2}
        probe = AttentionProbe([4, 5, 5], torch.ones(3, 6), latent_hw, levels)
        order = [1, 2, 2, 1, 0, 2, 2, 1, 1]  # levels as a UNet runs them: down, middle, up
        parts = []
        for level in order:
            grid = ceil_grid(latent_hw, level)
            parts.append((level, torch.rand(3, grid[0] * grid[1], generator=generator)))
        probe._parts = list(parts)
        reference = None
        for level, attention in parts:
            grid = ceil_grid(latent_hw, level)
            layer = attention.reshape(3, 1, *grid)
            if grid != latent_hw:
                layer = F.interpolate(layer, size=latent_hw, mode="bilinear", align_corners=False)
            reference = layer if reference is None else reference + layer
        with _OpCounter() as ops:
            maps = probe.maps()
        assert torch.equal(maps, reference / len(parts))
        assert ops.count("upsample_bilinear2d") == 2  # levels 1 and 2; level 0 is the latent grid already


class _OpCounter(TorchDispatchMode):
    """The ATen operations dispatched while it is active, by name."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(str(func))
        return func(*args, **(kwargs or {}))

    def count(self, name: str) -> int:
        return sum(1 for n in self.names if name in n)


@pytest.mark.parametrize("preset", ["bench-sd15", "bench-sdxl", "tiny-sd", "tiny-sdxl"])
def test_marked_levels_match_the_layers_token_counts(preset: str) -> None:
    """The level each processor is marked with (what a compiled probe uses) is the level its token count
    gives (what the eager probe uses), for every cross-attention layer: compiled and eager probe the same
    layers. Run on the meta device: no weights, no arithmetic."""
    from idcli.engine.build import empty_components
    from idcli.engine.faceid import FaceIDState, RowScaledIPAdapterProcessor

    unet = empty_components(preset)["unet"]
    state = FaceIDState(0.0)
    unet.set_attn_processor({name: RowScaledIPAdapterProcessor(state=state) for name in unet.attn_processors})
    assert mark_attention_levels(unet) == len(unet.attn_processors)
    latent_hw = (24, 16)
    levels = set(range(len(unet.config.down_block_types)))
    probe = AttentionProbe([0], torch.zeros(1, 77, device="meta"), latent_hw, levels)
    seen: list[tuple[int | None, int | None]] = []
    record = probe.record

    def checking(query, key, scale, level=None):
        seen.append((level, probe._tokens_level.get(query.shape[2])))
        return record(query, key, scale, level)

    probe.record = checking
    state.probe = probe
    device = torch.device("meta")
    added = None
    if "xl" in preset:
        added = {"text_embeds": torch.empty(2, unet.config.projection_class_embeddings_input_dim
                                            - 6 * unet.config.addition_time_embed_dim, device=device),
                 "time_ids": torch.empty(2, 6, device=device)}
    unet.to(device)
    with torch.inference_mode():
        unet(torch.empty(2, unet.config.in_channels, *latent_hw, device=device), torch.tensor(500.0, device=device),
             encoder_hidden_states=torch.empty(2, 77, unet.config.cross_attention_dim, device=device),
             added_cond_kwargs=added)
    cross = [name for name in unet.attn_processors if name.endswith("attn2.processor")]
    assert len(seen) == len(cross) > 0
    assert all(marked == found for marked, found in seen), seen
    assert {attention_level(name, unet.config) for name in cross} <= levels


def test_compile_on_the_cpu_is_said_once_before_it_starts(tiny_engines, write_shotlist, tmp_path) -> None:
    """`render --compile` / `bench --compile` on a CPU compiled the UNet for minutes before any image, without a
    word (docs/performance.md). Said once now, before the engine is built: a note,
    nothing refused, no image or key changed; nothing said of a dry run or an uncompiled one."""
    from idcli.bench.runner import build_engine
    from idcli.bench.workload import make_workload
    from idcli.bench.workload import write_shotlist as bench_shotlist

    shots = idcli.load_shotlist(write_shotlist(SHOTS))
    adapter, _ = _plan()
    engine = tiny_engines("tiny-sd", adapter)
    notes: list[str] = []

    class Notes:
        def start(self, total, already_done): notes.append("start")
        def advance(self, outcome): ...
        def note(self, text): notes.append(text)
        def stop(self): ...

    said = ("note: compile=True on the CPU: compiling the UNet takes minutes before the first image (it is meant "
            "for GPUs; uncompiled, the first image starts at once)")
    plain = idcli.render(shots, tmp_path / "plain", device="cpu", only=["text"], engine_factory=lambda m, r, a: engine)
    compiled = idcli.render(shots, tmp_path / "compiled", device="cpu", only=["text"], compile=True,
                            engine_factory=lambda m, r, a: engine, progress=Notes())
    assert notes.count(said) == 1 and notes.index(said) < notes.index("start"), notes
    assert [j.key for j in compiled.jobs] == [j.key for j in plain.jobs]
    assert np.array_equal(_pixels(compiled.jobs[0].image), _pixels(plain.jobs[0].image))
    notes.clear()
    idcli.render(shots, tmp_path / "dry", device="cpu", only=["text"], compile=True, dry_run=True,
                 engine_factory=lambda m, r, a: engine, progress=Notes())
    idcli.render(shots, tmp_path / "again", device="cpu", only=["text"], engine_factory=lambda m, r, a: engine,
                 progress=Notes())
    assert not [n for n in notes if "compiling the UNet" in n], notes

    workload = make_workload("tiny-sd", 1, 1, (64, 64))
    bench_notes: list[str] = []
    built = build_engine(workload, bench_shotlist(workload, tmp_path / "bench"), device="cpu", dtype="auto",
                         compile=True, face_models="synthetic", note=bench_notes.append)
    assert built.engine.compiled is not None  # torch.compile traces on the first forward: none here
    assert bench_notes[0] == said.removeprefix("note: "), bench_notes
    from idcli.engine.compiled import cpu_compile_note
    from idcli.option_words import options_as_flags

    with options_as_flags():  # the command line's words: --compile
        assert (cpu_compile_note("cpu") or "").startswith("--compile on the CPU: compiling the UNet takes minutes")
    assert cpu_compile_note("cuda") is None and cpu_compile_note("cuda:1") is None
