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


def _run(argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
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
PLAIN_PATHS = {("export",): ("OUT <path>", "--otio <path>", "--movie <path>", "--shots <path>"),
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
