"""idcli bench: the tiny end-to-end run, the real-size architectures' sizes, and the CLI's wiring."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from cli_helpers import cli_env
from typer.testing import CliRunner

from idcli.bench import BenchResult, format_report, parse_size, run_bench
from idcli.cli import app
from idcli.errors import InputError

# Parameter counts of the published models (diffusers / transformers, the checkpoints' own numbers).
PUBLISHED_PARAMETERS = {
    "bench-sd15": {"unet": 859_520_964, "vae": 83_653_863, "text_encoder": 123_060_480},
    "bench-sdxl": {"unet": 2_567_463_684, "vae": 83_653_863, "text_encoder": 123_060_480,
                   "text_encoder_2": 694_659_840},
}


def test_tiny_bench_end_to_end(synthetic_face_models: Path) -> None:
    result = run_bench("tiny-sd", jobs=3, steps=2, size=(64, 64), batch_size=2, device="cpu",
                       face_models=str(synthetic_face_models))
    data = result.as_dict()
    assert data["workload"] == {"arch": "tiny-sd", "preset": "tiny-sd", "jobs": 3, "width": 64, "height": 64,
                                "steps": 2, "guidance": 5.0, "sampler": "dpmpp-2m", "method": "single"}
    assert data["random_weights"] and data["batch_sizes"] == [2, 1]
    assert data["images_per_second"] > 0 and data["seconds_per_image"] > 0
    # Guidance on: two UNet rows per image per step, over 2 batches x 2 steps.
    assert data["forwards"]["unet_rows"] == 3 * 2 * 2 and data["forwards"]["calls"]["unet"] == 4
    assert data["forwards"]["calls"]["vae"] == 2 and data["forwards"]["calls"]["text"] >= 2
    assert data["unet_flops_per_image"] > 0 and data["achieved_tflops"] > 0
    assert data["matmul_ceiling"]["tflops"] > 0 and data["matmul_ceiling"]["dtype"] == "float32"
    # The UNet's time is part of the wall time, so the rate over the wall time is the lower one.
    assert 0.0 <= data["ceiling_share"] <= data["ceiling_share_in_unet"] <= 1.0
    # The raw timers nest: forwards run inside Engine.render, which starts after planning, all within the
    # wall time (the forward figures are rounded to 4 places).
    before, engine, wall = result.before_engine_seconds, result.engine_seconds, result.wall_seconds
    assert 0.0 < result.forward_seconds <= engine + 2e-4
    assert 0.0 < before < before + engine <= wall
    # Every batch's commit work was timed on the commit thread; it ran within the timed render.
    assert 0.0 < result.commit_seconds < wall
    assert data["peak_memory"]["bytes"] > 0
    baseline = data["baseline"]
    assert baseline["pipeline"] == "StableDiffusionPipeline" and baseline["identity"] == "faceid"
    # One stock call per job: a UNet call per step with both guidance rows, one VAE decode per image.
    assert baseline["jobs"] == 3 and baseline["forwards"]["unet_rows"] == 3 * 2 * 2
    assert baseline["forwards"]["calls"]["unet"] == 3 * 2 and baseline["forwards"]["calls"]["vae"] == 3
    assert 0.0 < baseline["forwards"]["total_seconds"] <= baseline["wall_seconds"] + 2e-4
    assert data["speedup_vs_baseline"] > 0
    assert data["versions"]["torch"] and data["machine"]["cpu_count"] and data["date"]
    # Images were written (the counts above), then the temporary folder went away.
    assert not data["kept"] and not Path(data["workdir"]).exists()
    text = format_report(result)
    assert "images/s" in text and "random weights" in text and "baseline" in text
    json.dumps(data)  # one JSON document


def test_bench_keeps_its_files_when_asked(tmp_path: Path, synthetic_face_models: Path) -> None:
    keep = tmp_path / "kept"
    result = run_bench("tiny-sdxl", jobs=1, steps=1, size=(64, 64), device="cpu", keep=keep,
                       face_models=str(synthetic_face_models))
    assert result.kept and (keep / "shots.yaml").is_file()
    assert len(list((keep / "out").rglob("*.png"))) == 1 and len(list((keep / "out").rglob("bench*.json"))) == 1
    assert result.forwards["calls"]["text"] >= 2  # SDXL: both text encoders are timed
    assert result.baseline is not None and result.baseline["pipeline"] == "StableDiffusionXLPipeline"
    assert result.baseline["identity"] == "faceid" and len(list((keep / "baseline").glob("*.png"))) == 1
    with pytest.raises(InputError, match="new or empty folder"):
        run_bench("tiny-sd", jobs=1, keep=keep)


def test_bench_input_errors() -> None:
    assert parse_size("1024x768") == (1024, 768)
    for bad in ("1024", "100x100", "32x32"):
        with pytest.raises(InputError, match=r"^size="):
            parse_size(bad)
    with pytest.raises(InputError, match=r"^arch="):
        run_bench("sd21")
    with pytest.raises(InputError, match=r"^jobs="):
        run_bench("tiny-sd", jobs=0)
    with pytest.raises(InputError, match=r"^method="):
        run_bench("tiny-sd", jobs=1, method="triple-line")
    with pytest.raises(InputError, match=r"^dtype='fp8': allowed: auto, float32, float16, bfloat16"):
        run_bench("tiny-sd", jobs=1, dtype="fp8")


def test_bench_in_bfloat16_on_the_cpu_rehearses_the_gpu_runs_precision(synthetic_face_models: Path) -> None:
    """--dtype bfloat16 on a CPU: the engine, the timed render, the baseline and the ceiling all in bfloat16
    (how the H200 run's path was rehearsed at full SDXL size in half float32's memory)."""
    import torch

    from idcli.bench import runner

    built: list = []
    real = runner.CountingEngine.__init__

    def spy(self, engine):  # the engine the bench built, to look at its weights
        built.append(engine)
        real(self, engine)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner.CountingEngine, "__init__", spy)
        result = run_bench("tiny-sd", jobs=1, steps=1, size=(64, 64), device="cpu", qa=False,
                           face_models=str(synthetic_face_models), dtype="bfloat16")
    data = result.as_dict()
    assert data["dtype"] == "bfloat16" and data["matmul_ceiling"]["dtype"] == "bfloat16"
    assert built and next(built[0].pipe.unet.parameters()).dtype == torch.bfloat16
    assert data["baseline"]["jobs"] == 1 and data["forwards"]["unet_rows"] == 2


def test_bench_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command's wiring: options to run_bench, the recorded command line, JSON and text output."""
    calls: list[dict] = []

    def fake_run_bench(arch: str, **kwargs: object) -> BenchResult:
        calls.append({"arch": arch, **kwargs})
        return _canned_result(str(kwargs["command"]))

    monkeypatch.setattr("idcli.bench.run_bench", fake_run_bench)
    args = ["bench", "--arch", "tiny-sd", "--jobs", "2", "--steps", "1", "--size", "64x64", "--device", "cpu",
            "--no-baseline"]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["command"] == ("idcli bench --arch tiny-sd --jobs 2 --steps 1 --size 64x64 --method single "
                               "--batch-size auto --device cpu --no-baseline --json")
    assert calls[0] == {"arch": "tiny-sd", "jobs": 2, "steps": 1, "size": (64, 64), "method": "single",
                        "batch_size": "auto", "device": "cpu", "baseline": False, "compile": False, "keep": None,
                        "repeats": 1, "command": data["command"], "on_note": calls[0]["on_note"], "qa": True,
                        "dtype": "auto", "profile": None, "baseline_jobs": None}
    text = CliRunner().invoke(app, [*args, "--batch-size", "3"])
    assert text.exit_code == 0 and "images/s" in text.stdout and calls[1]["batch_size"] == 3
    repeated = CliRunner().invoke(app, [*args, "--repeats", "5", "--json"])
    assert repeated.exit_code == 0 and calls[-1]["repeats"] == 5 and "--repeats 5" in calls[-1]["command"]
    calls.pop()
    # The default architecture follows the device: tiny-sd on a CPU.
    assert CliRunner().invoke(app, ["bench", "--device", "cpu"]).exit_code == 0 and calls[2]["arch"] == "tiny-sd"
    # identity QA runs in the timed render as in `render`; --no-qa measures without it
    no_qa = CliRunner().invoke(app, [*args, "--no-qa", "--json"])
    assert no_qa.exit_code == 0 and calls[3]["qa"] is False and "--no-qa" in json.loads(no_qa.stdout)["command"]
    bad = CliRunner().invoke(app, ["bench", "--size", "12x12"])
    assert bad.exit_code == 2 and "--size" in bad.stderr
    # --dtype reaches run_bench and the recorded command (auto is the default, left out of the line)
    half = CliRunner().invoke(app, [*args, "--dtype", "bfloat16", "--json"])
    assert half.exit_code == 0 and calls[-1]["dtype"] == "bfloat16"
    assert "--device cpu --dtype bfloat16 --no-baseline" in json.loads(half.stdout)["command"]
    # --profile reaches run_bench and the recorded command
    profiled = CliRunner().invoke(app, [*args, "--profile", "prof", "--json"])
    assert profiled.exit_code == 0 and calls[-1]["profile"] == Path("prof")
    assert "--profile prof --json" in json.loads(profiled.stdout)["command"]
    # --baseline-jobs reaches run_bench and the recorded command (with the baseline on only)
    args_with_baseline = [a for a in args if a != "--no-baseline"]
    fewer = CliRunner().invoke(app, [*args_with_baseline, "--baseline-jobs", "1", "--json"])
    assert fewer.exit_code == 0 and calls[-1]["baseline_jobs"] == 1
    assert "--device cpu --baseline-jobs 1 --json" in json.loads(fewer.stdout)["command"]


def test_bench_cli_check_batch_invariance(monkeypatch: pytest.MonkeyPatch) -> None:
    """--check-batch-invariance runs the check instead of the timed bench; options about timing are refused."""
    checks: list[dict] = []

    def fake_check(arch: str, **kwargs: object) -> dict:
        checks.append({"arch": arch, **kwargs})
        return {"check": "batch-invariance", "command": kwargs["command"], "model": "tiny-sd (random weights)",
                "device": "cpu", "dtype": "bfloat16", "batch": 8, "max_abs_diff": 2, "mean_abs_diff": 0.01,
                "differing_share": 0.02, "identical_images": 1,
                "workload": {"width": 64, "height": 64, "steps": 2, "method": "single"}}

    monkeypatch.setattr("idcli.bench.check_batch_invariance", fake_check)
    monkeypatch.setattr("idcli.bench.run_bench", lambda *a, **k: pytest.fail("the timed bench ran"))
    args = ["bench", "--arch", "tiny-sd", "--jobs", "8", "--steps", "2", "--size", "64x64", "--device", "cpu",
            "--dtype", "bfloat16", "--check-batch-invariance"]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["max_abs_diff"] == 2 and data["command"].endswith("--check-batch-invariance --json")
    assert checks[0]["jobs"] == 8 and checks[0]["dtype"] == "bfloat16" and checks[0]["size"] == (64, 64)
    text = CliRunner().invoke(app, args)
    assert text.exit_code == 0 and "8 jobs as one batch against each alone: max 2 8-bit levels" in text.stdout
    refused = CliRunner().invoke(app, [*args, "--profile", "prof", "--repeats", "2"])
    assert refused.exit_code == 2 and "--repeats, --profile does not apply" in refused.stderr
    assert len(checks) == 2


def _canned_result(command: str) -> BenchResult:
    forwards = {"seconds": {"unet": 1.0, "vae": 0.2, "text": 0.1}, "total_seconds": 1.3,
                "calls": {"unet": 2, "vae": 1, "text": 1}, "unet_rows": 8}
    return BenchResult(
        command=command, date="2026-11-21T00:00:00+00:00", machine={"cpu": "test", "cpu_count": 2, "gpu": None},
        versions={"torch": "x", "diffusers": "y", "transformers": "z"},
        workload={"arch": "tiny-sd", "preset": "tiny-sd", "jobs": 2, "width": 64, "height": 64, "steps": 1,
                  "guidance": 5.0, "sampler": "dpmpp-2m", "method": "single"},
        model="tiny-sd (random weights)", random_weights=True, device="cpu", dtype="float32", compile=False,
        batch_size="auto",
        batch_sizes=[2], setup_seconds=0.1, build_seconds=1.0, warmup_seconds=0.5, wall_seconds=1.5,
        before_engine_seconds=0.05, engine_seconds=1.35, commit_seconds=0.02, forwards=forwards,
        unet_flops_per_row=1e9,
        matmul_ceiling={"tflops": 0.1, "n": 1024, "dtype": "float32", "samples_tflops": [0.1]},
        peak_memory_bytes=10**9, peak_memory_kind="ru_maxrss", baseline=None, notes=["random weights"])


def test_bench_report_names_the_skipped_baseline_as_it_was_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The text report said "not run (--no-baseline)" to ``format_report(run_bench(..., baseline=False))`` too: a
    Python caller is told ``baseline=False``, the command line ``--no-baseline``. The recorded command is unchanged."""
    result = _canned_result("idcli bench --no-baseline")
    assert "  baseline: not run (baseline=False)" in format_report(result).splitlines()
    monkeypatch.setattr("idcli.bench.run_bench", lambda arch, **kwargs: result)
    text = CliRunner().invoke(app, ["bench", "--arch", "tiny-sd", "--device", "cpu", "--no-baseline"])
    assert text.exit_code == 0, text.output
    assert "  baseline: not run (--no-baseline)" in text.stdout.splitlines()
    assert result.as_dict()["command"] == "idcli bench --no-baseline" and result.as_dict()["baseline"] is None


def test_forward_timers_count_and_put_back_what_was_there() -> None:
    import torch

    from idcli.bench.measure import ForwardTimers

    unet, vae, text = torch.nn.Identity(), torch.nn.Identity(), torch.nn.Identity()
    vae.decode = lambda x: x

    def compiled(x: torch.Tensor) -> torch.Tensor:  # what render --compile sets on the UNet instance
        return x * 2

    unet.forward = compiled
    pipe = SimpleNamespace(unet=unet, vae=vae, text_encoder=text, text_encoder_2=None)
    with ForwardTimers(pipe, lambda: None) as timers:
        assert float(unet(torch.ones(3, 1))[0, 0]) == 2.0
        text(torch.ones(1))
        vae.decode(torch.ones(1))
    assert timers.time.calls == {"unet": 1, "vae": 1, "text": 1} and timers.time.unet_rows == 3
    assert unet.forward is compiled and "forward" not in text.__dict__
    assert timers.last_unet_call is not None


def test_baseline_runs_uncompiled_in_the_default_layout() -> None:
    import torch

    from idcli.bench.baseline import default_layout, plain_forward

    conv = torch.nn.Conv2d(4, 8, 3).to(memory_format=torch.channels_last)  # as the engine leaves a CUDA UNet
    plain = torch.nn.Conv2d(4, 8, 3)
    with default_layout(conv, plain):
        assert conv.weight.is_contiguous() and plain.weight.is_contiguous()
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) and not conv.weight.is_contiguous()
    assert plain.weight.is_contiguous()

    def compiled(x: torch.Tensor) -> torch.Tensor:
        return x

    conv.forward = compiled
    with plain_forward(conv):
        assert "forward" not in conv.__dict__
    assert conv.forward is compiled


@pytest.mark.parametrize("preset", sorted(PUBLISHED_PARAMETERS))
def test_real_size_architectures_match_the_published_models(preset: str) -> None:
    from idcli.engine.build import empty_components

    modules = empty_components(preset)  # parameters on the meta device: nothing allocated
    counts = {name: sum(p.numel() for p in module.parameters()) for name, module in modules.items()}
    assert counts == PUBLISHED_PARAMETERS[preset]
    # The random FaceID adapter fits the published layout: two keys per cross-attention layer (16 in
    # SD1.5, 70 in SDXL) and the six of the identity projection.
    from idcli.engine.faceid_layout import faceid_adapter_shapes

    assert len(faceid_adapter_shapes(modules["unet"])) == {"bench-sd15": 38, "bench-sdxl": 146}[preset]
    unet = modules["unet"].config
    if preset == "bench-sdxl":
        assert unet.cross_attention_dim == 2048 and unet.projection_class_embeddings_input_dim == 2816
        assert list(unet.transformer_layers_per_block) == [1, 2, 10] and unet.addition_embed_type == "text_time"
    else:
        assert unet.cross_attention_dim == 768 and list(unet.block_out_channels) == [320, 640, 1280, 1280]


def test_bench_presets_are_random_weights_with_their_own_identity() -> None:
    from idcli.models import resolve_model
    from idcli.shotlist import ModelSpec

    ids = {name: resolve_model(ModelSpec(preset="sd15"), Path("."), "float32", name)
           for name in ("bench-sd15", "bench-sdxl", "tiny-sd")}
    assert all(i.random_weights and i.source == "builtin" for i in ids.values())
    assert ids["bench-sd15"].label == "bench-sd15 (random weights)"
    assert len({i.content_hash for i in ids.values()}) == 3


@pytest.mark.slow
def test_bench_sd15_builds_and_renders_through_the_engine(tmp_path: Path, synthetic_face_models: Path) -> None:
    result = run_bench("sd15", jobs=1, steps=1, size=(64, 64), device="cpu", baseline=False,
                       face_models=str(synthetic_face_models))
    assert result.model == "bench-sd15 (random weights)" and result.forwards["unet_rows"] == 2
    # SD1.5 at 64x64 (an 8x8 latent): 13.6 GFLOP per text-only UNet row on the meta device; FaceID adds a little.
    assert 13.6e9 < result.unet_flops_per_row < 14e9


def test_bench_repeats_alternate_and_report_the_median_ratio(tmp_path: Path, synthetic_face_models: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """--repeats N times idcli and the baseline alternately (A B A B); the ratio is the median of the pairs'."""
    from idcli.bench import baseline as baseline_module
    from idcli.bench import runner

    order: list[str] = []
    timed, stock = runner.timed_render, baseline_module.run_baseline

    def timed_render(*args, **kwargs):
        order.append("idcli")
        return timed(*args, **kwargs)

    def run_baseline(*args, **kwargs):
        order.append("baseline")
        return stock(*args, **kwargs)

    monkeypatch.setattr(runner, "timed_render", timed_render)
    monkeypatch.setattr(baseline_module, "run_baseline", run_baseline)
    keep = tmp_path / "kept"
    result = run_bench("tiny-sd", jobs=2, steps=1, size=(64, 64), batch_size=2, device="cpu", keep=keep,
                       repeats=3, face_models=str(synthetic_face_models))
    assert order == ["idcli", "baseline"] * 3
    data = result.as_dict()
    assert len(data["repeats"]) == 3
    # Each pair's ratio is the baseline's wall time over idcli's (both recorded to 0.1 ms, hence the
    # tolerance); the reported ratio is their median and the spread their extremes.
    for record in data["repeats"]:
        assert record["speedup_vs_baseline"] == pytest.approx(
            record["baseline_wall_seconds"] / record["wall_seconds"], rel=1e-2)
    ratios = sorted(r["speedup_vs_baseline"] for r in data["repeats"])
    assert data["speedup_vs_baseline"] == pytest.approx(ratios[1], abs=1e-4)
    assert data["speedup_spread"] == [pytest.approx(ratios[0], abs=1e-4), pytest.approx(ratios[2], abs=1e-4)]
    # The main figures are the median idcli run's; every run rendered into its own folder.
    assert data["wall_seconds"] == pytest.approx(sorted(r["wall_seconds"] for r in data["repeats"])[1], abs=1e-4)
    assert all(len(list((keep / name).rglob("*.png"))) == 2 for name in ("out", "out-2", "out-3"))
    assert all(len(list((keep / name).glob("*.png"))) == 2 for name in ("baseline", "baseline-2", "baseline-3"))
    assert "alternating repeats" in format_report(result)
    with pytest.raises(InputError, match=r"^repeats=0"):
        run_bench("tiny-sd", jobs=1, repeats=0)


@pytest.mark.parametrize("arch", ["tiny-sd", "tiny-sdxl"])
def test_bench_in_float16_gives_the_baseline_the_vae_stock_would_have(tmp_path: Path, synthetic_face_models: Path,
                                                                    arch: str) -> None:
    """--dtype float16: the engine decodes with a float32 VAE (force_upcast), and the stock pipelines expect the
    VAE in the pipeline's dtype (SDXL's upcasts it for the decode and back to float16 afterwards; SD1.5's decodes
    in float16): the baseline gets the float16 VAE it would have, and idcli its float32 one again after it,
    also in the idcli run that follows the baseline (A B A B)."""
    import torch

    from idcli.bench import measure, runner

    built: list = []
    real = runner.CountingEngine.__init__

    def spy(self, engine):
        built.append(engine)
        real(self, engine)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner.CountingEngine, "__init__", spy)
        # A CPU multiplies float16 matrices slowly (a minute for the ceiling's 1024^3 products); not this test's.
        mp.setattr(measure, "matmul_ceiling",
                   lambda device, dtype, sync: measure.MatmulCeiling(1.0, 1, "float16", [1.0]))
        result = run_bench(arch, jobs=1, steps=1, size=(64, 64), device="cpu", qa=False, repeats=2,
                           face_models=str(synthetic_face_models), dtype="float16", keep=tmp_path / "kept")
    data = result.as_dict()
    assert data["dtype"] == "float16" and len(data["repeats"]) == 2
    assert built[0].vae_dtype == torch.float32 and built[0].pipe.vae.dtype == torch.float32
    assert built[0].pipe.unet.dtype == torch.float16
    assert len(list((tmp_path / "kept" / "baseline-2").glob("*.png"))) == 1


def test_bench_says_when_compile_gave_up(synthetic_face_models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--compile that falls back (a compiler failure, torch's recompile limit) leaves figures of an uncompiled
    UNet: the result's notes say so, so a GPU run's JSON cannot pass them off as compiled ones."""
    from torch._dynamo.exc import TorchDynamoException

    from idcli.engine import compiled as compiled_module

    real = compiled_module.compile_unet

    def failing_compile(unet, backend="inductor"):
        forward = real(unet, backend)

        def compiler_fails(*args, **kwargs):  # what torch.compile raises when its backend fails (not traced: fast)
            raise TorchDynamoException("no compiler on this machine (simulated)")

        forward.compiled = compiler_fails
        return forward

    monkeypatch.setattr(compiled_module, "compile_unet", failing_compile)
    result = run_bench("tiny-sd", jobs=1, steps=1, size=(64, 64), device="cpu", qa=False, baseline=False,
                       compile=True, face_models=str(synthetic_face_models))
    data = result.as_dict()
    assert data["compile"] is True
    said = [n for n in data["notes"] if "--compile gave up" in n]
    assert said and "no compiler on this machine" in said[0] and "uncompiled" in said[0]
    assert "--compile gave up" in format_report(result)


def test_bench_check_batch_invariance_refuses_baseline_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    """--baseline-jobs (merged beside --check-batch-invariance the same day) times the baseline, which the check never
    runs: refused with the other timing options, not ignored."""
    monkeypatch.setattr("idcli.bench.check_batch_invariance", lambda *a, **k: pytest.fail("the check ran"))
    refused = CliRunner().invoke(app, ["bench", "--arch", "tiny-sd", "--jobs", "8", "--device", "cpu",
                                       "--check-batch-invariance", "--baseline-jobs", "2"])
    assert refused.exit_code == 2, refused.output
    assert "--check-batch-invariance renders one batch of --jobs and each job alone: --baseline-jobs does not apply" \
        in refused.stderr


def test_bench_baseline_on_fewer_jobs_compares_rates(tmp_path: Path, synthetic_face_models: Path) -> None:
    """--baseline-jobs N: the baseline (one stock call per job, its cost linear in jobs) is timed on the first N
    jobs only, so a slow baseline at SDXL size fits the GPU run's time; the ratio compares images per second."""
    keep = tmp_path / "kept"
    result = run_bench("tiny-sd", jobs=3, steps=1, size=(64, 64), batch_size=3, device="cpu", keep=keep,
                       baseline_jobs=1, face_models=str(synthetic_face_models))
    data = result.as_dict()
    assert data["baseline"]["jobs"] == 1 and len(list((keep / "baseline").glob("*.png"))) == 1
    record = data["repeats"][0]
    idcli_rate = 3 / record["wall_seconds"]
    baseline_rate = 1 / record["baseline_wall_seconds"]
    assert record["speedup_vs_baseline"] == pytest.approx(idcli_rate / baseline_rate, rel=1e-2)
    assert data["speedup_vs_baseline"] == pytest.approx(data["images_per_second"]
                                                        / data["baseline"]["images_per_second"], rel=1e-2)
    assert any("first 1 of the 3 jobs" in note for note in data["notes"])
    for wrong in (0, 4):
        with pytest.raises(InputError, match=r"^baseline_jobs="):
            run_bench("tiny-sd", jobs=3, baseline_jobs=wrong)


def test_bench_baseline_jobs_without_a_baseline_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--no-baseline --baseline-jobs 16` dropped the count without a word: an option with nothing to act on is said."""
    monkeypatch.setattr("idcli.bench.run_bench", lambda *a, **k: pytest.fail("the bench ran"))
    result = CliRunner().invoke(app, ["bench", "--arch", "tiny-sd", "--device", "cpu", "--no-baseline",
                                      "--baseline-jobs", "4"])
    assert result.exit_code == 2 and "--baseline-jobs goes with the baseline" in result.stderr, result.output


@pytest.mark.parametrize(("args", "refusal"), [
    (["--dtype", "bf17"], "idcli: error: --dtype bf17: allowed: auto, float32, float16, bfloat16\n"),
    (["--method", "singel"], "idcli: error: --method singel: allowed: single, dual-line (did you mean single?)\n"),
    (["--jobs", "0"], "idcli: error: --jobs 0: give 1..10000\n"),
    (["--check-batch-invariance", "--jobs", "1"],
     "idcli: error: --jobs 1: --check-batch-invariance compares a batch with single renders; give 2 or more\n"),
], ids=["dtype", "method", "jobs", "invariance-jobs"])
def test_bench_refuses_a_typo_before_loading_torch(args: list[str], refusal: str) -> None:
    """A mistyped --dtype or --method took 14-15 s to be refused (a mistyped --arch 2.5 s): the default --arch
    (auto) asked torch for a GPU first. The values are checked before: torch is not loaded when the refusal is
    made (checked in a fresh process, not timed), and the refusal and its exit code are today's."""
    code = ("import sys; from idcli.cli import main\n"
            f"sys.argv = ['idcli', 'bench', {', '.join(map(repr, args))}]\n"
            "try:\n    main()\n"
            "finally:\n    print('torch loaded' if 'torch' in sys.modules else 'torch not loaded')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), timeout=300)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr == refusal and done.stdout == "torch not loaded\n"
