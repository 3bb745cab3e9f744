"""What a person reads at the command line: ``--help`` of every command, and the errors a typo gives.

Each test runs the real console entry point (``python -m idcli``) as a user would, with a clean idcli home.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from cli_helpers import cli_env


def idcli(*argv: str, cwd: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "idcli", *argv], capture_output=True, text=True,
                          env=env or cli_env(), timeout=120, cwd=cwd)


def _help_of_every_command() -> str:
    """Every command's and sub-command's --help, found by walking the app (one process: a process per command
    would cost seconds each)."""
    code = ("import typer\nfrom typer.testing import CliRunner\nfrom idcli.cli import app\n"
            "def walk(group, path):\n"
            "    for name, command in group.commands.items():\n"
            "        yield from walk(command, [*path, name]) if hasattr(command, 'commands') else [[*path, name]]\n"
            "commands = list(walk(typer.main.get_command(app), []))\n"
            "assert len(commands) > 15 and ['models', 'list'] in commands, commands\n"
            "for argv in commands:\n"
            "    result = CliRunner().invoke(app, [*argv, '--help'], terminal_width=100)\n"
            "    assert result.exit_code == 0, (argv, result.output)\n"
            "    print('== ' + ' '.join(argv)); print(result.output)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def every_help() -> str:
    return _help_of_every_command()


def test_help_names_a_list_argument_plainly_not_as_a_python_type(every_help: str) -> None:
    # Typer wrote `SELFIE <list[Path]>`, `SHOT=TAKE <list[str]>` and `OUT <list[Path]>`: Python's type, not a name.
    assert "list[" not in every_help, [line for line in every_help.splitlines() if "list[" in line]
    assert "SELFIE... <path>" in every_help
    assert "SHOT=TAKE... <str>" in every_help
    assert "OUT... <path>" in every_help


def test_an_unknown_option_names_the_nearest_option_in_idclis_own_words() -> None:
    # Click said "No such option: --batchsize (Possible options: --batch-size)" under a usage line.
    done = idcli("render", "shots.yaml", "--batchsize", "2")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == "idcli: error: --batchsize: idcli render has no such option (did you mean --batch-size?)\n"


def test_an_unknown_option_with_nothing_near_lists_the_commands_options() -> None:
    # Click offered "Possible options: --out" for --bogus, and "--help" for --steps: nothing to do with either.
    done = idcli("render", "--bogus")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("idcli: error: --bogus: idcli render has no such option (its options: --out, "
                                  "--preset, --device, --batch-size, --force, --only, "), done.stderr
    assert "--help)" in done.stderr and "Possible" not in done.stderr
    assert done.stderr.count("\n") == 1
    done = idcli("models", "list", "--bogus", "--json")  # a sub-command's; --json still gets its document
    assert done.returncode == 2
    assert "--bogus: idcli models list has no such option (its options: --models-dir, " in done.stdout


def test_a_render_parameter_given_as_an_option_points_at_the_shot_list() -> None:
    done = idcli("render", "shots.yaml", "--steps", "20")
    assert done.returncode == 2
    assert done.stderr == ("idcli: error: --steps: idcli render has no such option (steps is set in the shot list: "
                           "defaults.steps, or a shot's steps)\n")


def test_help_names_arguments_as_the_readme_does(every_help: str) -> None:
    # Usage lines mixed Python parameter names with capitals: `restore [OPTIONS] {out_dir} {take}`,
    # `select [OPTIONS] {out} {SHOT=TAKE}...`, where the README writes `idcli restore OUT SHOT_tN`.
    usages = [line.split("[OPTIONS]", 1)[1].split() for line in every_help.splitlines() if line.startswith("Usage:")]
    arguments = [word for words in usages for word in words]
    # [SHOT=TAKE]...: optional (select takes --from a picks file instead)
    # [SHOT_tN]: optional with --list (restore OUT --list lists every kept render)
    assert arguments and all(re.fullmatch(r"\{[A-Z][A-Z_=]*(_tN)?\}(\.\.\.)?|\[[A-Z][A-Z_=]*(_tN)?\](\.\.\.)?", word)
                             for word in arguments), arguments
    for expected in ("render [OPTIONS] {FILE}", "restore [OPTIONS] {OUT} [SHOT_tN]",
                     "reproduce [OPTIONS] {IMAGE_OR_SIDECAR}", "select [OPTIONS] {OUT} [SHOT=TAKE]...",
                     "deliver [OPTIONS] {OUT} {DEST}", "show [OPTIONS] {PACK}", "fetch [OPTIONS] {PRESET}"):
        assert expected in every_help, expected


@pytest.mark.parametrize(("argv", "said"), [
    # Click: "Error: No such command 'rendr'. Did you mean 'render'?" under a usage block.
    (["rendr"], "rendr: no such command of idcli (did you mean render?)"),
    (["models", "lst"], "lst: no such command of idcli models (did you mean list?)"),
    (["frobnicate"], "frobnicate: no such command of idcli (its commands: validate, schema, expressions, plan, "),
    # Click: "Error: Missing argument 'FILE'." / "Missing option '--otio'."
    (["restore", "out"], "SHOT_tN: missing: the take to restore, as SHOT_tN (its file name without .png) (usage: "
                         "idcli restore [OPTIONS] OUT SHOT_tN)"),
    (["render"], "FILE: missing: shot list (YAML, schema version 1) (usage: idcli render [OPTIONS] FILE)"),
    (["deliver"], "OUT: missing: a render's output folder (usage: idcli deliver [OPTIONS] OUT DEST)"),  # not "A"
    (["reproduce"], "IMAGE_OR_SIDECAR: missing: a committed image (PNG) or its sidecar (JSON) (usage: "),
    (["export", "out"], "give at least one file to write: --otio, --edl, --fcp-xml or --movie"),
    # Click: "Invalid value for '--fps': Input should be a valid number, unable to parse string as a number"
    (["export", "out", "--otio", "a.otio", "--fps", "abc"], "--fps abc: give a number or a ratio of whole numbers "
                                                             "(frame rate of the timeline, 1 to 240: 23.976, or as "
                                                             "ffprobe gives it, 24000/1001)"),
    (["render", "x.yaml", "--max-takes", "x"], "--max-takes x: give an integer (with --retake-flagged: "),
    (["bench", "--repeats", "0"], "--repeats 0: should be greater than or equal to 1 (time idcli and the baseline "),
    # Click: "Option '--only' requires an argument." / "Got unexpected extra argument(s) (b)"
    (["render", "x.yaml", "--only"], "option '--only' requires an argument\n"),
    (["render", "a.yaml", "b.yaml"], "idcli render: got unexpected extra argument(s) (b.yaml) (usage: idcli render "
                                     "[OPTIONS] FILE)"),
    (["render", "a.yaml", "--bo\ngus"], "--bo\\ngus: idcli render has no such option (its options: "),  # one line
])
def test_a_typo_on_the_command_line_gets_one_line_in_idclis_words(argv: list[str], said: str) -> None:
    done = idcli(*argv)
    assert done.returncode == 2 and done.stdout == "", done
    assert done.stderr.startswith(f"idcli: error: {said}") and done.stderr.count("\n") == 1, done.stderr
    assert "Usage:" not in done.stderr and "Input should" not in done.stderr


def test_no_command_still_shows_the_help() -> None:
    done = idcli()
    assert done.returncode == 2 and "Commands:" in done.stdout + done.stderr and "error" not in done.stderr


@pytest.mark.parametrize(("argv", "said"), [
    # The library's words named its field: "QA threshold leakage=2.0: give a cosine between -1 and 1".
    (["--qa-leakage", "2"], "--qa-leakage 2: give a cosine between -1 and 1 (default 0.35)"),
    (["--qa-low-identity", "-1.5"], "--qa-low-identity -1.5: give a cosine between -1 and 1 (default 0.35)"),
])
def test_a_qa_threshold_out_of_range_is_named_by_its_option(tmp_path, argv: list[str], said: str) -> None:
    done = idcli("qa", str(tmp_path), *argv)
    assert done.returncode == 2 and done.stderr == f"idcli: error: {said}\n", done.stderr


def test_a_missing_selfie_is_named_before_the_face_models_are_looked_for(tmp_path) -> None:
    # A mistyped selfie path got the long "face models: ... does not exist" (exit 4) where no face models are set up.
    env = {k: v for k, v in cli_env().items() if k != "IDCLI_FACE_MODELS"} | {"HOME": str(tmp_path)}  # none there
    done = idcli("encode-identity", "mara_1.jgp", "--name", "mara", "-o", str(tmp_path / "mara.idpack"),
                 cwd=str(tmp_path), env=env)
    assert done.returncode == 2 and done.stderr == "idcli: error: mara_1.jgp: no such file\n", done.stderr


def test_a_selfie_that_is_a_broken_link_is_named_as_one(tmp_path) -> None:
    # A selfie linked from a shared drive that is not mounted said "no such file" while `ls` shows the file.
    (tmp_path / "mara_1.jpg").symlink_to("/mnt/stills/mara_1.jpg")
    env = {k: v for k, v in cli_env().items() if k != "IDCLI_FACE_MODELS"} | {"HOME": str(tmp_path)}
    done = idcli("encode-identity", "mara_1.jpg", "--name", "mara", "-o", str(tmp_path / "mara.idpack"),
                 cwd=str(tmp_path), env=env)
    assert done.returncode == 2 and done.stderr == (
        "idcli: error: mara_1.jpg: a link to a missing file (/mnt/stills/mara_1.jpg)\n"), done.stderr
    (tmp_path / "bobby_1.jpg").symlink_to("bobby_2.jpg")  # a loop: no file is missing, the links go round
    (tmp_path / "bobby_2.jpg").symlink_to("bobby_1.jpg")
    done = idcli("encode-identity", "bobby_1.jpg", "--name", "bobby", "-o", str(tmp_path / "bobby.idpack"),
                 cwd=str(tmp_path), env=env)
    assert done.returncode == 2 and done.stderr == (
        "idcli: error: bobby_1.jpg: a link that leads back to itself through links, a loop (bobby_2.jpg)\n"), \
        done.stderr


def test_restore_of_a_take_with_nothing_kept_names_the_takes_that_have_kept_versions(tmp_path) -> None:
    # "ro: no superseded version of sc01_sh01_t1 is kept" -- right, but no word of the take that has one.
    kept = tmp_path / ".idcli" / "superseded" / "sc01_sh010"
    kept.mkdir(parents=True)
    (kept / "sc01_sh010_t1.0123456789ab.png").write_bytes(b"kept")
    done = idcli("restore", str(tmp_path), "sc01_sh01_t1")
    assert done.returncode == 2
    assert done.stderr == (f"idcli: error: {tmp_path}: no superseded version of sc01_sh01_t1 is kept (did you mean "
                           "'sc01_sh010_t1'?)\n"), done.stderr
    done = idcli("restore", str(tmp_path), "intro_t4")
    assert done.stderr.endswith("is kept (takes with kept versions: sc01_sh010_t1)\n"), done.stderr
    (kept / "sc01_sh010_t1.0123456789ab.png").unlink()
    done = idcli("restore", str(tmp_path), "sc01_sh010_t1")
    assert done.stderr.endswith("is kept (nothing is kept in this folder)\n"), done.stderr


@pytest.mark.parametrize(("argv", "said"), [
    (["bench", "--dtype", "fp16"], "--dtype fp16: allowed: auto, float32, float16, bfloat16 (did you mean float16?)"),
    (["bench", "--arch", "sd16"], "--arch sd16: allowed: sd15, sdxl, tiny-sd, tiny-sdxl (did you mean sd15?)"),
    (["bench", "--method", "dual"], "--method dual: allowed: single, dual-line (did you mean dual-line?)"),
])
def test_a_bench_choice_mistyped_names_the_nearest(argv: list[str], said: str) -> None:
    done = idcli(*argv)
    assert done.returncode == 2 and done.stderr == f"idcli: error: {said}\n", done.stderr
