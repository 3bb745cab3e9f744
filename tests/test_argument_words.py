"""Notes and errors that reach a Python caller name its arguments (``delivered_from=``, ``compile=True``,
``shots_file=``), while the command line still names its flags (``--from``, ``--compile``, ``--shots``):
idcli/option_words.py. Each surface is checked from Python and from the command; tests/test_option_words.py holds
the errors of render, verify and export that were worded so first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import render_on_cpu
from review_helpers import cli
from test_option_words import SHOTS  # the one-shot list both files of option words render

import idcli
from idcli.errors import InputError, ProjectMismatchError
from idcli.option_words import EachSurface, Option, joined, options_as_flags, words


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    path = tmp_path / "shots.yaml"
    path.write_text(SHOTS, "utf-8")
    return path


def test_a_part_written_for_each_surface_and_options_given_together() -> None:
    command = EachSurface("reproduce('f.png', delivered_from=OUT)", "idcli reproduce f.png --from OUT")
    error = InputError("no take: ", command, "; or ", joined(Option("force", True), Option("only", "SHOT")))
    assert str(error) == "no take: reproduce('f.png', delivered_from=OUT); or force=True, only='SHOT'"
    with options_as_flags():
        assert str(error) == "no take: idcli reproduce f.png --from OUT; or --force --only SHOT"
        assert words((Option("edl"), ": a note")) == "--edl: a note"
    assert words((Option("edl"), ": a note")) == "edl: a note"


def test_reproduce_names_the_ignored_delivered_from_as_it_was_given(shots: Path, tmp_path: Path,
                                                                     engine_factory) -> None:
    out, studio = tmp_path / "out", tmp_path / "studio"
    render_on_cpu(shots, out, engine_factory)
    take = out / "sh010" / "sh010_t1.png"
    made = idcli.reproduce(take, delivered_from=studio, engine_factory=engine_factory)
    assert made.identical
    assert f"delivered_from='{studio}' ignored: sh010_t1.png is a take, not a delivered copy" in made.notes
    result = cli("reproduce", take, "--from", studio, "--device", "cpu", "--json")
    assert result.exit_code == 0, result.output
    notes = json.loads(result.stdout)["notes"]
    assert f"--from {studio} ignored: sh010_t1.png is a take, not a delivered copy" in notes, notes


def test_a_compiled_renders_note_names_compile_in_each_surfaces_words() -> None:
    from idcli.reproduce import compile_note

    record = {"executor": {"compile": True}}
    assert (compile_note(record) or "").startswith("rendered with compile=True: torch.compile fuses")
    with options_as_flags():
        assert (compile_note(record) or "").startswith("rendered with --compile: torch.compile fuses")


def test_verify_trust_problems_name_trust_in_each_surfaces_words(shots: Path, tmp_path: Path, engine_factory,
                                                                 studio_ca) -> None:
    out = tmp_path / "out"
    render_on_cpu(shots, out, engine_factory)
    [check] = idcli.verify_folder(out, trust=studio_ca.root).images
    assert check.problems == ["not signed, and trust asks that every image be signed by a certificate under its "
                              "root"]
    result = cli("verify", out, "--trust", studio_ca.root, "--json")
    assert result.exit_code == 6, result.output
    [image] = json.loads(result.stdout)["images"]
    assert image["problems"] == ["not signed, and --trust asks that every image be signed by a certificate under "
                                 "its root"]


def test_a_shot_list_of_another_project_is_named_as_given(review_run: Path, tmp_path: Path) -> None:
    from idcli.review.runs import load_run

    other = tmp_path / "other.yaml"
    other.write_text(SHOTS, "utf-8")  # project 'words', the run's is another
    with pytest.raises(ProjectMismatchError, match=rf"^shots_file='{other}': project 'words', but "):
        load_run(review_run, other)
    result = cli("export", review_run, "--shots", other, "--otio", tmp_path / "a.otio")
    assert result.exit_code == 2 and f"--shots {other}: project 'words', but " in result.stderr, result.output


def test_a_damaged_shot_list_record_points_at_shots_file_as_given(review_run: Path, tmp_path: Path) -> None:
    import shutil

    from idcli.review.runs import load_run

    out = tmp_path / "out"
    shutil.copytree(review_run, out)
    record = out / ".idcli" / "shotlist.jsonl"
    manifest = json.loads(record.read_text("utf-8"))
    manifest["shots"] = [{"id": "sh010", "takes": "many"}]
    record.write_text(json.dumps(manifest) + "\n", "utf-8")
    with pytest.raises(InputError, match=r"the shot list record is damaged; pass shots_file='FILE' \(or re-run"):
        load_run(out)
    result = cli("export", out, "--otio", tmp_path / "a.otio")
    assert result.exit_code == 2 and "damaged; pass --shots FILE (or re-run" in result.stderr, result.output


def test_the_edl_of_no_rendered_shot_names_edl_in_each_surfaces_words(review_run: Path, tmp_path: Path) -> None:
    # (The note this test held, of shots after the last rendered one left out of the EDL, is gone: since 2026-12-02
    # every shot of the cut is an event, one not rendered black; tests/test_review_editorial.py.)
    import shutil

    from idcli.review.export import export_animatic
    from idcli.review.runs import load_run

    out = tmp_path / "out"
    shutil.copytree(review_run, out)
    record = out / ".idcli" / "shotlist.jsonl"
    manifest = json.loads(record.read_text("utf-8"))
    manifest["shots"] = [{"id": "sh090", "takes": 1, "duration": 1.0}]  # none of the rendered shots in the list
    record.write_text(json.dumps(manifest) + "\n", "utf-8")
    with pytest.raises(InputError) as caught:
        export_animatic(load_run(out), edl=tmp_path / "a.edl")
    assert str(caught.value).startswith(f"edl={str(tmp_path / 'a.edl')!r}: none of the shot list's 1 shot(s) is "
                                        "rendered"), caught.value
    printed = cli("export", out, "--edl", tmp_path / "b.edl")
    assert printed.exit_code == 2, printed.output
    assert f"--edl {tmp_path / 'b.edl'}: none of the shot list's 1 shot(s) is rendered" in printed.stderr, \
        printed.stderr
    assert not (tmp_path / "a.edl").exists() and not (tmp_path / "b.edl").exists()


def test_read_results_of_a_folder_never_rendered_into_names_out_dir(tmp_path: Path) -> None:
    # read_results has no command: a Python caller only, who gave render() an out_dir, not --out.
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"give the folder a render wrote \(its out_dir; idcli render's default is "
                                         r"renders/PROJECT\)$"):
        idcli.read_results(tmp_path / "empty")


def test_a_hand_edited_take_is_kept_naming_force_in_each_surfaces_words(shots: Path, tmp_path: Path,
                                                                        engine_factory) -> None:
    from PIL import Image

    out = tmp_path / "out"
    render_on_cpu(shots, out, engine_factory)
    take = out / "sh010" / "sh010_t1.png"
    Image.open(take).convert("RGB").rotate(90).save(take)  # retouched by hand: a whole image, other bytes
    [job] = idcli.plan_folder(shots, out, device="cpu")["jobs"]
    assert job["state"] == "modified" and "kept — force=True renders it again" in job["reason"], job
    printed = cli("plan", shots, "--out", out, "--device", "cpu", "--json")
    [job] = json.loads(printed.stdout)["jobs"]
    assert job["state"] == "modified" and "kept — --force renders it again" in job["reason"], job


def test_a_pack_in_the_way_and_a_face_not_found_name_the_arguments(tmp_path: Path) -> None:
    from idcli.identity.pack import PackExistsError

    error = PackExistsError(tmp_path / "mara.idpack")
    assert str(error).endswith("give overwrite=True to replace it, or another out")
    with options_as_flags():
        assert str(error).endswith("give --force to replace it, or another -o")


def test_a_compile_that_gave_up_is_said_in_each_surfaces_words() -> None:
    from types import SimpleNamespace

    from idcli.executors.local import note_compile_fallback

    said: list[str] = []
    results = [SimpleNamespace(facts={"compile_fallback": "no compiler here"})]
    note_compile_fallback(results, said.append)
    with options_as_flags():
        note_compile_fallback(results, said.append)
    assert said == ["warning: compile=True gave up; the UNet runs uncompiled from here on (no compiler here)",
                    "warning: --compile gave up; the UNet runs uncompiled from here on (no compiler here)"]


def test_missing_face_models_are_named_as_chosen(tmp_path: Path, selfies: Path) -> None:
    from idcli.errors import ModelUnavailableError
    from idcli.identity.faces import resolve_face_models

    missing = tmp_path / "no-such-pack"
    with pytest.raises(ModelUnavailableError) as caught:
        resolve_face_models(missing)
    assert f"face models: {missing} (face_models) does not exist" in str(caught.value)
    assert "or pass face_models='DIR' / set IDCLI_FACE_MODELS" in str(caught.value)
    assert caught.value.exit_code == 4
    result = cli("encode-identity", selfies / "mara_1.jpg", "--name", "mara", "-o", tmp_path / "mara.idpack",
                 "--face-models", missing)
    text = " ".join(result.output.split())
    assert result.exit_code == 4 and f"face models: {missing} (--face-models) does not exist" in text, text


def test_a_face_index_beyond_the_faces_found_is_named_as_given(tmp_path: Path, selfies: Path,
                                                                synthetic_face_models: Path) -> None:
    from idcli.identity.build import build_identity
    from idcli.identity.encode import SelfieError
    from idcli.identity.faces import FaceAnalyzer, resolve_face_models

    analyzer = FaceAnalyzer(resolve_face_models(synthetic_face_models))
    with pytest.raises(SelfieError, match=r"mara_1\.jpg: face_index=9 asked, but 1 face\(s\) were found"):
        build_identity("mara", [selfies / "mara_1.jpg"], analyzer, tmp_path / "mara.idpack", face_index=9)
    result = cli("encode-identity", selfies / "mara_1.jpg", "--name", "mara", "-o", tmp_path / "mara.idpack",
                 "--face-models", synthetic_face_models, "--face", "9")
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "mara_1.jpg: --face 9 asked, but 1 face(s) were found" in text, text


def test_images_left_unsigned_are_said_with_the_arguments_that_sign_them(shots: Path, tmp_path: Path, engine_factory,
                                                                          signing_env) -> None:
    # tests/test_sign_done_images.py checks the Python words; here the command's.
    out = tmp_path / "out"
    render_on_cpu(shots, out, engine_factory, sign=False)
    result = cli("render", shots, "--out", out, "--device", "cpu", "--sign")
    assert result.exit_code == 0, result.output
    assert "(sh010_t1); --force --only SHOT renders them again, signed" in " ".join(result.output.split()), \
        result.output


def test_a_models_dir_that_is_not_there_is_named_as_given(tmp_path: Path) -> None:
    from idcli.model_folders import given_folders

    missing = tmp_path / "no-models"
    with pytest.raises(InputError, match=rf"^models_dirs entry '{missing}' does not exist$"):
        given_folders([missing])
    result = cli("models", "list", "--models-dir", missing)
    assert result.exit_code == 2 and f"--models-dir '{missing}' does not exist" in result.stderr, result.output


def test_retake_flagged_arguments_are_named_as_given(shots: Path, tmp_path: Path) -> None:
    """``render_with_retakes(..., max_takes=0)`` and ``qa=False`` were told ``--max-takes 0`` and ``remove --no-qa``."""
    from idcli.review.retake import render_with_retakes

    loaded, out = idcli.load_shotlist(shots), tmp_path / "out"
    with pytest.raises(InputError, match=r"^max_takes=0: give 1\.\.100$"):
        render_with_retakes(loaded, out, max_takes=0, device="cpu")
    with pytest.raises(InputError, match=r"^render_with_retakes needs identity QA; remove qa=False$"):
        render_with_retakes(loaded, out, device="cpu", qa=False)
    result = cli("render", shots, "--out", out, "--device", "cpu", "--retake-flagged", "--max-takes", "0")
    assert result.exit_code == 2 and "--max-takes 0: give 1..100" in result.stderr, result.output
    result = cli("render", shots, "--out", out, "--device", "cpu", "--retake-flagged", "--no-qa")
    assert result.exit_code == 2 and "--retake-flagged needs identity QA; remove --no-qa" in result.stderr
    assert not out.exists()


def test_bench_arguments_are_named_as_given(tmp_path: Path) -> None:
    """``idcli.bench.run_bench(jobs=0)`` was told ``--jobs 0``: each bench argument is named as it was given. Its
    notes and ``command`` are left as they are: the bench's record (``--json``), kept with the figures."""
    from idcli.bench import check_batch_invariance, parse_size, run_bench

    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("", "utf-8")
    full = tmp_path / "full"
    refused = {
        "jobs=0: give 1..10000": lambda: run_bench("tiny-sd", jobs=0),
        "steps=999: give 1..200": lambda: run_bench("tiny-sd", steps=999),
        "arch='sd16': allowed: sd15, sdxl, tiny-sd, tiny-sdxl (did you mean sd15?)": lambda: run_bench("sd16"),
        "method='dual': allowed: single, dual-line (did you mean dual-line?)": lambda: run_bench(method="dual"),
        "dtype='fp16': allowed: auto, float32, float16, bfloat16 (did you mean float16?)":
            lambda: run_bench(dtype="fp16"),
        "repeats=0: give a whole number of at least 1": lambda: run_bench(repeats=0),
        "baseline_jobs=9: give a whole number from 1 to jobs (4)": lambda: run_bench(jobs=4, baseline_jobs=9),
        f"profile='{full}': give a new or empty folder (a profile never writes over earlier files)":
            lambda: run_bench(profile=full),
        f"keep='{full}': give a new or empty folder (a bench never renders over earlier files)":
            lambda: run_bench(keep=full),
        "jobs=1: check_batch_invariance compares a batch with single renders; give 2 or more":
            lambda: check_batch_invariance(jobs=1),
        "size='12': give WIDTHxHEIGHT, e.g. 1024x1024": lambda: parse_size("12"),
        # --size had its own parser and no size to write instead; it now judges as a shot list's size: does.
        "size='12x12': each side must be a multiple of 8 (nearest: size='64x64')": lambda: parse_size("12x12"),
        "size='770x512': each side must be a multiple of 8 (nearest: size='768x512')": lambda: parse_size("770x512"),
        "size='4096x4096': over the pixel budget of 4,194,304 pixels (largest of that shape within it: "
        "size='2048x2048')": lambda: parse_size("4096x4096"),
        "size=(300, 300): each side must be a multiple of 8 (nearest: size=(296, 296) or size=(304, 304))":
            lambda: run_bench("tiny-sd", size=(300, 300)),
    }
    for message, call in refused.items():
        with pytest.raises(InputError) as caught:
            call()
        assert str(caught.value) == message
    for argv, said in [(["--jobs", "0"], "--jobs 0: give 1..10000"),
                       (["--arch", "sd16"], "--arch sd16: allowed: sd15, sdxl, tiny-sd, tiny-sdxl (did you mean "
                                            "sd15?)"),
                       (["--dtype", "fp16"], "--dtype fp16: allowed: auto, float32, float16, bfloat16 (did you mean "
                                             "float16?)"),
                       (["--jobs", "4", "--baseline-jobs", "9"], "--baseline-jobs 9: give a whole number from 1 to "
                                                                 "--jobs (4)"),
                       (["--keep", str(full)], f"--keep {full}: give a new or empty folder (a bench never renders "
                                               "over earlier files)"),
                       (["--jobs", "1", "--check-batch-invariance"], "--jobs 1: --check-batch-invariance compares a "
                                                                    "batch with single renders; give 2 or more"),
                       (["--size", "12"], "--size 12: give WIDTHxHEIGHT, e.g. 1024x1024"),
                       (["--size", "300x300"], "--size 300x300: each side must be a multiple of 8 (nearest: --size "
                                               "296x296 or --size 304x304)"),
                       (["--size", "4096x2048"], "--size 4096x2048: over the pixel budget of 4,194,304 pixels "
                                                 "(largest of that shape within it: --size 2896x1448)")]:
        argv = ["--arch", "tiny-sd", *argv] if "--arch" not in argv else argv
        result = cli("bench", *argv, "--device", "cpu", "--json")
        assert result.exit_code == 2, result.output
        assert json.loads(result.stdout)["error"]["message"] == said, result.stdout


def test_an_unknown_device_or_preset_is_named_as_given(shots: Path, tmp_path: Path) -> None:
    """"unknown device 'gpu'" named neither device= nor --device, and its error had no field."""
    loaded = idcli.load_shotlist(shots)
    with pytest.raises(InputError, match=r"^device='gpu': no such device \(allowed: auto, cpu") as caught:
        idcli.render(loaded, tmp_path / "a", device="gpu")
    assert caught.value.field == "device"
    with pytest.raises(InputError, match=r"^preset='sd16': no such preset; did you mean 'sd15'\?") as caught:
        idcli.render(loaded, tmp_path / "b", device="cpu", preset="sd16")
    assert caught.value.field == "preset"
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    result = cli("render", shots, "--out", tmp_path / "c", "--device", "gpu", "--json")
    assert result.exit_code == 2 and json.loads(result.stdout)["error"]["field"] == "device", result.output
    assert "--device gpu: no such device" in result.stderr
    result = cli("render", shots, "--out", tmp_path / "c", "--preset", "sd16")
    assert result.exit_code == 2 and "--preset sd16: no such preset; did you mean 'sd15'?" in result.stderr
