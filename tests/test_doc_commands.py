"""Every command line the docs show runs as written: each `idcli COMMAND` in README.md's and docs/*.md's code (a
fenced shell block, its lines continued with `\\` read as one, an inline code span, a row of README's command table)
names a command idcli has (after a group, `idcli models`, one of its commands), and each option written after it is
one that command takes (`-o`, `--out`, `--no-sign` ...).

tests/test_doc_options.py checks the other way round (every option of the code is documented). Until 2026-12-02
nothing checked this way: a renamed or misspelt option in an example (`--batchsize`, `--contactsheet`) would pass
every test and fail only for the reader who typed it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer.main

from idcli.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^\s*(```|~~~)\s*(\w*)")
SHELL_BLOCKS = {"bash", "sh", "shell", "console", "zsh"}
INLINE_CODE = re.compile(r"`([^`]+)`")
# `idcli` as a word of its own (not `idcli/run.py`, `tests/idcli`), then the words that may name a command.
COMMAND = re.compile(r"idcli ((?:[a-z][a-z-]*(?: |$))+)(.*)")
OPTION = re.compile(r"(?<![\w-])(--[a-zA-Z][\w-]*|-[a-zA-Z](?![\w-]))")
# Where a command line ends: a shell pipe, a list separator, or another idcli command in the same code.
SEGMENTS = re.compile(r" \| |;|&&|(?<![\w./-])(?=idcli )")
# idcli's own answer to a mistyped option quotes the mistake (README: `--batchsize: idcli render has no such option`).
QUOTES_A_MISTAKE = "no such option"


def _leaf(words: list[str]) -> tuple[Any, int]:
    """The command the leading words name and how many words that took; a group (`idcli models`) where they stop at
    one (_is_group)."""
    command: Any = typer.main.get_command(app)
    used = 0
    for word in words:
        subcommands = getattr(command, "commands", None)
        if not subcommands or word not in subcommands:
            break
        command, used = subcommands[word], used + 1
    return command, used


def _is_group(command: Any) -> bool:
    return bool(getattr(command, "commands", None))


def _options(command: Any) -> set[str]:
    return {"--help", *(option for param in command.params for option in (*param.opts, *param.secondary_opts))}


def _code(text: str) -> list[tuple[int, str, bool]]:
    """(line number, code, from a shell block) for each line of a fenced block and each inline code span."""
    found: list[tuple[int, str, bool]] = []
    fence: str | None = None
    continued: tuple[int, str] | None = None  # a shell line ending in `\`: its number and text, the next line joined
    for number, line in enumerate(text.splitlines(), start=1):
        opened = FENCE.match(line)
        if opened:
            fence = None if fence is not None else opened.group(2).lower()
            continue
        if fence is not None:
            shell = fence in SHELL_BLOCKS
            code = re.sub(r"(^|\s)#.*", "", line) if shell else line
            if shell and continued is not None:  # the options on a continuation line are the command's too
                number, code, continued = continued[0], f"{continued[1]} {code.strip()}", None
            if shell and code.rstrip().endswith("\\"):
                continued = (number, code.rstrip()[:-1].rstrip())
                continue
            found.append((number, code, shell))
        else:
            found.extend((number, span, False) for span in INLINE_CODE.findall(line))
    return found


def _wrong_in_command_line(code: str, shell: bool) -> list[str]:
    problems: list[str] = []
    if QUOTES_A_MISTAKE in code:
        return problems
    for segment in SEGMENTS.split(code):
        match = COMMAND.match(segment)
        if not match:
            continue
        words = match.group(1).split()
        command, used = _leaf(words)
        if used == 0:
            # `idcli chunk`, `idcli plate` (a record's words) in prose; a shell block's line is a command to run.
            if shell:
                problems.append(f"idcli {words[0]}: no such command")
            continue
        name = "idcli " + " ".join(words[:used])
        if _is_group(command):  # `idcli models`: in a shell block a word after it must be one of its commands
            if used < len(words):
                if shell:  # in prose, a record's words (`idcli identity strength`, a PNG's field), as above
                    problems.append(f"{name} {words[used]}: no such command")
            else:
                problems.extend(f"{name} {option}: no such option" for option in OPTION.findall(match.group(2))
                                if option not in _options(command))
            continue
        rest = " ".join(words[used:]) + " " + match.group(2)
        problems.extend(f"{name} {option}: no such option" for option in OPTION.findall(rest)
                        if option not in _options(command))
    return problems


def _wrong_in_table_row(line: str) -> list[str]:
    """A row of a command table (`| \\`idcli render FILE …\\` | … \\`--only SHOT\\` …`): its option spans are that
    command's. Spans that name a command of their own (`render --force` in restore's row) are checked as such."""
    head = re.match(r"\| `idcli ((?:[a-z][a-z-]*(?: |`|$))+)", line)
    if not head:
        return []
    command, used = _leaf(head.group(1).replace("`", " ").split())
    if used == 0 or _is_group(command):
        return []
    name = "idcli " + " ".join(head.group(1).replace("`", " ").split()[:used])
    return [f"{name} {option}: no such option" for span in INLINE_CODE.findall(line) if span.startswith("-")
            for option in OPTION.findall(SEGMENTS.split(span)[0]) if option not in _options(command)]


def wrong_command_lines(text: str) -> list[tuple[int, str]]:
    """(line number, what is wrong) for each command or option a doc shows that idcli does not have."""
    found = [(number, problem) for number, code, shell in _code(text)
             for problem in _wrong_in_command_line(code, shell)]
    found += [(number, problem) for number, line in enumerate(text.splitlines(), start=1)
              for problem in _wrong_in_table_row(line)]
    return sorted(set(found))


def test_wrong_command_lines_finds_a_misspelt_option_an_unknown_command_and_a_table_row() -> None:
    """Guards the scan itself: one that found nothing would pass with nothing checked."""
    text = ("Run `idcli render shots.yaml --out renders/qs --batchsize 4` first.\n"
            "```bash\n"
            "idcli identity show mara.idpack --contactsheet mara.png   # a comment: --not-an-option\n"
            "idcli preview renders/qs\n"
            "idcli export OUT [--movie F.mp4|F.mov] [--fsp 24]\n"
            "RAY_ADDRESS=head:6379 idcli render shots.yaml -o out --executor ray && idcli verify out -x\n"
            "```\n"
            "| `idcli deliver OUT DEST` | copies; `--shots A,B`, `--all-take`, `render --force` |\n"
            "`idcli: error: --batchsize: idcli render has no such option (did you mean --batch-size?)`; `idcli plate`\n"
            "```text\nidcli characters: mara theo\n```\n")
    assert wrong_command_lines(text) == [
        (1, "idcli render --batchsize: no such option"),
        (3, "idcli identity show --contactsheet: no such option"),
        (4, "idcli preview: no such command"),
        (5, "idcli export --fsp: no such option"),
        (6, "idcli verify -x: no such option"),
        (8, "idcli deliver --all-take: no such option"),
    ]


def test_wrong_command_lines_reads_a_continued_line_and_a_group_s_subcommand() -> None:
    """Two ways a wrong command line passed the scan (a hostile read, 2026-12-02): an option on a line a shell block
    continues with `\\` (docs/performance.md's Ray and bench commands) was never looked at, and after a group
    (`idcli identity`, `idcli models`) nothing was: a misspelt subcommand or an option the group lacks passed."""
    text = ("```bash\n"
            "idcli render shots.yaml --out renders/qs \\\n"
            "    --batchsize 4 \\\n"
            "    --json\n"
            "idcli identity shw mara.idpack\n"
            "idcli models --accept-insightface-license\n"
            "```\n"
            "Then `idcli models --json`; `idcli identity strength` is a PNG's field, `idcli identity --help` help.\n")
    assert wrong_command_lines(text) == [
        (2, "idcli render --batchsize: no such option"),
        (5, "idcli identity shw: no such command"),
        (6, "idcli models --accept-insightface-license: no such option"),
        (8, "idcli models --json: no such option"),
    ]


def test_every_command_line_in_the_docs_names_commands_and_options_idcli_has() -> None:
    wrong = [f"{doc.relative_to(ROOT)}:{number}: {problem}" for doc in DOCS
             for number, problem in wrong_command_lines(doc.read_text(encoding="utf-8"))]
    assert wrong == []
