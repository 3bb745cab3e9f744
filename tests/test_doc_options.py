"""Every option of every idcli command is documented where a user looks for it: in a paragraph or table row of
README.md or docs/*.md that also names the command (``idcli render … --save-masks``), so an option added to a
command without a word in the docs fails here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer.main

from idcli.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _paragraphs() -> list[str]:
    """Blank-line separated blocks, each Markdown table row on its own (a row documents one command)."""
    blocks: list[str] = []
    for doc in DOCS:
        blocks.extend(re.split(r"\n\s*\n|\n(?=\|)", doc.read_text(encoding="utf-8")))
    return blocks


def _commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, Any]]:
    """(``idcli NAME``, command) for every leaf command; duck-typed, as Typer may carry its own copy of Click."""
    if getattr(command, "commands", None):
        return [found for name, sub in command.commands.items() for found in _commands(sub, (*path, name))]
    return [("idcli " + " ".join(path), command)]


def _mentions(text: str, word: str) -> bool:
    return re.search(re.escape(word) + r"(?![\w-])", text) is not None


def undocumented_options() -> list[str]:
    paragraphs = _paragraphs()
    missing = []
    for name, command in _commands(typer.main.get_command(app)):
        for param in command.params:
            if param.param_type_name != "option":
                continue
            for option in (*param.opts, *param.secondary_opts):
                if option.startswith("--") and not any(
                        _mentions(block, option) and _mentions(block, name) for block in paragraphs):
                    missing.append(f"{name} {option}")
    return missing


def test_every_command_and_its_options_are_walked() -> None:
    """Guards the walk itself: a walk that found no command would pass with nothing checked."""
    names = [name for name, _ in _commands(typer.main.get_command(app))]
    assert {"idcli render", "idcli models fetch", "idcli identity show", "idcli export"} <= set(names)
    render = dict(_commands(typer.main.get_command(app)))["idcli render"]
    assert "--save-masks" in {option for param in render.params for option in param.opts}


def test_every_option_is_documented_beside_its_command() -> None:
    assert undocumented_options() == []


def test_render_help_names_every_exit_code_a_render_can_end_with() -> None:
    """`idcli render --help` listed 0, 1, 2 and 130 only, later missed 70; a script reading it missed codes README's
    exit-code table (the contract) gives. Every code of that table but 6 (verify's and reproduce's "a check found a
    difference", never a render's) is named in the help's summary itself: anywhere in the help, `[default: 6]` of
    --max-takes would pass for a code."""
    from typer.testing import CliRunner

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("**Exit codes**"):]
    rows = re.findall(r"^\| (\d+(?: / \d+)?) \|", table[:table.index("\n\n", table.index("| code |"))], re.M)
    codes = [code for row in rows for code in row.split(" / ")]
    assert {"0", "1", "2", "3", "4", "5", "6", "70", "130", "143"} <= set(codes), rows
    text = " ".join(CliRunner().invoke(app, ["render", "--help"], terminal_width=200).output.split())
    summary = text[text.index("Render a shot list."):text.index("Arguments:")]
    for code in codes:
        if code != "6":
            assert re.search(rf"(?<![\d.]){code}(?!\d)", summary), (code, summary)


def test_validate_help_says_plates_are_read(tmp_path: Path) -> None:
    """`idcli validate --help` said "Without --selfies this reads no image", but validate reads every plate and finds
    its faces (docs/plates.md, "Checks before anything renders"): an unreadable plate fails validate."""
    from typer.testing import CliRunner

    (tmp_path / "plate.png").write_text("not an image")
    (tmp_path / "shots.yaml").write_text(
        "version: 1\nproject: p\ncharacters:\n  mara: {selfies: [plate.png]}\n"
        "shots:\n  - {id: a, prompt: '{mara} at a window', plate: plate.png}\n")
    checked = CliRunner().invoke(app, ["validate", str(tmp_path / "shots.yaml")])
    assert checked.exit_code == 2 and "not an image" in checked.output  # the plate was read
    text = " ".join(CliRunner().invoke(app, ["validate", "--help"]).output.split())
    assert "reads no image" not in text and "plate" in text


def test_plan_help_names_every_state_plan_prints() -> None:
    """`idcli plan --help` named the states new / done / stale; plan prints recoverable, modified and blocked too
    (idcli/plan_document.py's STATES)."""
    from typer.testing import CliRunner

    from idcli.plan_document import STATES

    text = " ".join(CliRunner().invoke(app, ["plan", "--help"], terminal_width=200).output.split())
    said = text[text.index("Show the jobs"):text.index("batch group")]
    assert [state for state in STATES if state not in said] == [], said


def test_evaluate_help_says_no_durations() -> None:
    """`idcli evaluate --help` said `--shots` gives "shot order and durations": evaluate reads no durations (review
    and export do, for the animatic)."""
    from typer.testing import CliRunner

    evaluate = " ".join(CliRunner().invoke(app, ["evaluate", "--help"], terminal_width=200).output.split())
    review = " ".join(CliRunner().invoke(app, ["review", "--help"], terminal_width=200).output.split())
    assert "Take shot order from this shot list" in evaluate and "durations" not in evaluate
    assert "Take shot order and durations from this shot list" in review
