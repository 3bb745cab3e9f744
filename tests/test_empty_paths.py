"""An empty path on the command line is a usage error (exit 2), never the current folder.

``Path("")`` is ``Path(".")``: ``idcli deliver OUT ""`` (an unset shell variable, ``"$DEST"``) delivered into the
folder the command ran in. Every path argument and option of every command is found by walking the app, so a
command added later is checked too.
"""

from __future__ import annotations

import json
import sys
import typing
from pathlib import Path
from typing import Any

import pytest
import typer

from idcli.cli import app, main

# Options typed as text that name a path (a folder of face models; text, since a preset's default is no path).
PATH_TEXT_OPTIONS = {"--face-models"}


def _is_path(param: Any) -> bool:
    annotation = param.type_descriptor.annotation
    if PATH_TEXT_OPTIONS & set(getattr(param, "opts", [])):
        return True
    return annotation is Path or Path in typing.get_args(annotation)


def _commands(group: Any, path: list[str]) -> list[tuple[list[str], Any]]:
    found = []
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            found += _commands(command, [*path, name])
        else:
            found.append(([*path, name], command))
    return found


def _command_line(words: list[str], command: Any, empty: Any) -> list[str]:
    """``idcli WORDS`` with every required argument and option given a harmless value and ``empty`` given ''."""
    argv = [*words]
    for param in command.params:
        given = "" if param is empty else "somewhere"
        if param.param_type_name == "argument" and (param.required or param is empty):
            argv.append(given)
        elif param.param_type_name == "option" and (param.required or param is empty):
            argv += [param.opts[0], given]
    return argv


def _every_path_parameter() -> list[Any]:
    cases = []
    for words, command in _commands(typer.main.get_command(app), []):
        for param in command.params:
            if _is_path(param):
                name = param.opts[0] if param.param_type_name == "option" else param.name
                cases.append(pytest.param(_command_line(words, command, param), id=f"{' '.join(words)} {name}"))
    return cases


CASES = _every_path_parameter()


def test_every_command_taking_a_path_is_found() -> None:
    found = {c.id for c in CASES}
    for expected in ("deliver dest", "deliver out", "render --out", "render file", "export --otio", "review out",
                     "verify out", "reproduce target", "qa out", "select out", "encode-identity selfies",
                     "render --face-models", "bench --keep", "models list --models-dir"):
        assert expected in found, sorted(found)


def _run(argv: list[str], monkeypatch: pytest.MonkeyPatch,
         capsys: pytest.CaptureFixture[str]) -> tuple[str | int | None, str, str]:
    """The exit code as SystemExit carries it (compared, not narrowed: a None would be exit 0), stdout, stderr."""
    monkeypatch.setattr(sys, "argv", ["idcli", *argv])
    with pytest.raises(SystemExit) as ended:
        main()
    out, err = capsys.readouterr()
    return ended.value.code, out, err


@pytest.mark.parametrize("argv", CASES)
def test_an_empty_path_is_a_usage_error(argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(argv, monkeypatch, capsys)
    assert code == 2, (code, err)
    assert out == "" and err.count("\n") == 1 and err.startswith("idcli: error: ") and "empty" in err, err
    assert list(tmp_path.iterdir()) == []  # nothing made in the current folder


def test_deliver_into_an_empty_dest_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(["deliver", "renders", "", "--json"], monkeypatch, capsys)
    document = json.loads(out)
    assert code == 2 and document["exit_code"] == 2 and document["error"]["type"] == "UsageError", document
    assert document["error"]["message"].startswith("DEST: ") and "empty" in document["error"]["message"], document
    assert err.startswith("idcli: error: DEST: "), err


def test_an_empty_out_option_is_named_as_typed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    _code, _out, err = _run(["render", "shots.yaml", "--out="], monkeypatch, capsys)
    assert err.startswith("idcli: error: --out \"\": "), err


@pytest.mark.parametrize("words", sorted({tuple(c.values[0][:1]) if c.values[0][0] not in ("identity", "models")
                                         else tuple(c.values[0][:2]) for c in CASES}), ids=" ".join)
def test_help_names_a_path_parameters_type_as_path(words: tuple[str, ...]) -> None:
    """The shared parser (``parser=given_path``) made Typer 0.29 label every path parameter by its annotation's
    ``__name__``: ``OUT <Path>``, ``--otio <Path>``, where ``--help`` said ``<path>`` (idcli/cli/help_text.py)."""
    from typer.testing import CliRunner

    usage = CliRunner().invoke(app, [*words, "--help"], env={"COLUMNS": "200"})
    assert usage.exit_code == 0, usage.output
    assert "<Path>" not in usage.stdout, usage.stdout
    for words_shown in PLAIN_PATHS.get(words, ()):
        assert words_shown in usage.stdout, (words_shown, usage.stdout)


# What --help wrote before the shared parser, for a few commands (argument, option, list argument).
PLAIN_PATHS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("export",): ("OUT <path>", "--otio <path>", "--movie <path>", "--shots <path>"),
    ("render",): ("FILE <path>", "-o, --out <path>"), ("deliver",): ("DEST <path>",),
    ("encode-identity",): ("SELFIE... <path>", "-o, --output <path>"), ("evaluate",): ("OUT... <path>",)}


# Where idcli writes: a folder (or a pack file) made at the path given.
WRITTEN = {"render --out", "plan --out", "deliver dest", "reproduce --out", "bench --keep", "bench --profile",
           "encode-identity --output"}


def test_every_written_path_is_known() -> None:
    """Every parameter named in WRITTEN is found: one renamed would drop out of the test below unsaid."""
    assert {c.id for c in CASES} >= WRITTEN


@pytest.mark.parametrize("argv", [pytest.param([word or "-" for word in c.values[0]], id=c.id)
                                  for c in CASES if c.id in WRITTEN])
def test_a_dash_where_idcli_writes_is_a_usage_error(argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Many tools read ``-`` as standard output: ``idcli render shots.yaml --out -`` rendered the whole shot list into
    a folder named ``-`` and said so only in its last line; ``idcli deliver OUT -`` made one too."""
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(argv, monkeypatch, capsys)
    assert code == 2, (code, err)
    assert out == "" and err.count("\n") == 1 and "not standard output; give ./- to mean a " in err, err
    assert list(tmp_path.iterdir()) == []


def _library_calls(shots: Path, out: Path) -> dict[str, Any]:
    """Every public function's optional path argument (and ``preset``) given '' — ``os.environ.get("VAR", "")`` of a
    variable the farm did not set. Each is one call that would otherwise go on as if the argument were not given."""
    import idcli
    from idcli.review.evaluate import evaluate
    from idcli.review.recheck import recheck

    image = out / "a010" / "a010_t1.png"
    return {
        "face_models": lambda: idcli.plan_shotlist(shots, face_models=""),
        "face_models=''": lambda: idcli.render(shots, out, dry_run=True, face_models=""),
        "preset": lambda: idcli.render(shots, out, dry_run=True, preset=""),
        "preset=''": lambda: idcli.plan_shotlist(shots, preset=""),
        "plan_folder face_models": lambda: idcli.plan_folder(shots, out, face_models=""),
        "out_dir": lambda: idcli.reproduce(image, out_dir=""),
        "reproduce face_models": lambda: idcli.reproduce(image, face_models=""),
        "delivered_from": lambda: idcli.reproduce(image, delivered_from=""),
        "trust": lambda: idcli.verify_folder(out, trust=""),
        "recheck face_models": lambda: recheck(out, face_models=""),
        "shots_file": lambda: evaluate(out, shots_file=""),
    }


@pytest.mark.parametrize("call", list(_library_calls(Path("s"), Path("o"))))
def test_an_empty_path_or_preset_given_to_a_library_function_is_refused(call: str, write_shotlist, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The command refuses ``--face-models ""`` (an unset shell variable); the library read ``face_models=""`` as not
    given (the preset's face models), ``preset=""`` as the shot list's preset, ``delivered_from=""`` as a take's, and
    ``reproduce(image, out_dir="")`` wrote the re-render into the current folder (the harm the CLI check is for)."""
    import idcli

    shots = write_shotlist('version: 1\nproject: p\nmodel: {preset: tiny-sd}\ndefaults: {size: 64x64, steps: 2}\n'
                           'shots:\n  - {id: a010, prompt: "a lighthouse"}\n')
    out = tmp_path / "out"
    idcli.render(shots, out)
    here = tmp_path / "cwd"
    here.mkdir()
    monkeypatch.chdir(here)
    with pytest.raises(idcli.InputError) as refused:
        _library_calls(shots, out)[call]()
    name = call.split()[-1].removesuffix("=''")
    assert refused.value.exit_code == idcli.EXIT_INVALID_INPUT and refused.value.field == name, refused.value
    assert str(refused.value).startswith(f"{name}='': an empty "), refused.value
    assert list(here.iterdir()) == []  # nothing written where the pipeline happened to run


@pytest.mark.parametrize("command", ["plan", "render"])
def test_an_empty_preset_is_refused_not_read_as_the_shot_lists(command: str, write_shotlist, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """``idcli render shots.yaml --preset "$PRESET"`` with PRESET unset planned and rendered the shot list's preset,
    exit 0: a farm switching presets by variable got the wrong model's images without a word."""
    shots = write_shotlist("version: 1\nproject: p\nmodel: {preset: tiny-sd}\nshots:\n  - {id: a010, prompt: a}\n")
    monkeypatch.chdir(tmp_path)
    code, out, err = _run([command, str(shots), "--out", "renders", "--preset", ""], monkeypatch, capsys)
    assert code == 2 and out == "", (code, out, err)
    assert err.startswith('idcli: error: --preset "": an empty value') and err.count("\n") == 1, err
    assert not (tmp_path / "renders").exists()
