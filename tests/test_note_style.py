"""Notes and warnings read one way whichever command prints them: ``idcli: note: …`` / ``idcli: warning: …``,
as errors read ``idcli: error: …`` (docs/README quote that form). ``select`` and ``plan`` said ``idcli: note:``
and ``idcli: warning:``, while ``deliver``, ``restore``, ``models fetch``, ``encode-identity``, ``validate`` and
render's folder notes said a bare ``note:``."""

from __future__ import annotations

import io
import re

import pytest
from cli_helpers import ROOT

from idcli.console import PlainProgress
from idcli.diagnostics import diagnostic, styled

# A note or warning printed by hand, in the old bare form: print(f"note: …"), emit("warning: …").
BARE = re.compile(r"""(?:print|emit)\(\s*f?["'](?:note|warning): """)


def test_no_command_prints_a_bare_note_or_warning() -> None:
    sources = [*sorted((ROOT / "idcli" / "cli").glob("*.py")), ROOT / "idcli" / "console.py"]
    bare = [f"{path.name}:{number}: {line.strip()}" for path in sources
            for number, line in enumerate(path.read_text("utf-8").splitlines(), 1) if BARE.search(line)]
    assert bare == []


def test_the_one_style() -> None:
    assert diagnostic("note", "kept") == "idcli: note: kept"
    assert styled("warning: --compile gave up") == "idcli: warning: --compile gave up"
    assert styled("error: a.yaml:3:1: no face") == "idcli: error: a.yaml:3:1: no face"
    assert styled("encoding the selfies of 'mara'") == "encoding the selfies of 'mara'"  # a progress line
    assert styled("idcli: note: said once") == "idcli: note: said once"


def test_render_progress_shows_a_library_note_in_the_one_style() -> None:
    """The library hands its progress ``note: …`` / ``warning: …`` (a Python caller's progress gets them so); the
    command's progress display prints them as the -q path prints report.warnings: ``idcli: warning: …``."""
    stream = io.StringIO()
    progress = PlainProgress(stream)
    progress.note("warning: --compile gave up; the UNet runs uncompiled from here on (reason)")
    progress.note("out of memory; batch size lowered to 2")
    assert stream.getvalue().splitlines() == [
        "idcli: warning: --compile gave up; the UNet runs uncompiled from here on (reason)",
        "out of memory; batch size lowered to 2"]


# What a library's exception may quote of the text it received: a prompt can carry escapes (a shot list's "\e"), a
# file's name or contents anything.
QUOTED = "cannot encode '\x1b]0;owned\x07\x1b[2J\x9b31m'"


def _failed(error: str) -> object:
    from idcli.run_report import JobOutcome, OutputFile

    empty = OutputFile("", "")
    return JobOutcome("idcli-job-v2:k", "sh010", 1, 7, "g1", "failed", empty, empty, error=error, state="new")


def test_a_failed_jobs_error_line_is_escaped_as_received_text_is(monkeypatch: pytest.MonkeyPatch) -> None:
    """render's ``[n/m] failed ... error: ...`` line printed the exception's message raw: a library quoting what it was
    handed could retitle, clear or recolour the terminal. Escaped as every other received text (errors.terminal_safe),
    on a log and on a terminal's progress bar alike."""
    from rich.console import Console

    from idcli.console import RichProgress

    stream = io.StringIO()
    plain = PlainProgress(stream)
    plain.start(1, 0)
    plain.advance(_failed(QUOTED))  # type: ignore[arg-type]
    line = stream.getvalue().splitlines()[-1]
    assert line.startswith("[1/1] failed sh010 take 1 (") and "\x1b" not in line and "\x9b" not in line, repr(line)
    assert line.endswith("error: cannot encode '\\x1b]0;owned\\x07\\x1b[2J\\x9b31m'"), repr(line)

    shown = io.StringIO()  # a terminal's: rich's own colours are escapes, so look for the quoted ones
    terminal = Console(file=shown, force_terminal=True, width=300, highlight=False)
    monkeypatch.setattr("rich.console.Console", lambda **_options: terminal)
    rich = RichProgress()
    rich.start(1, 0)
    rich.advance(_failed(QUOTED))  # type: ignore[arg-type]
    rich.stop()
    assert "\x1b]0;owned" not in shown.getvalue() and "\x9b" not in shown.getvalue()
    assert "cannot encode '\\x1b]0;owned\\x07\\x1b[2J\\x9b31m'" in shown.getvalue(), repr(shown.getvalue())


def test_an_executors_lines_reach_the_progress_display_as_notes(write_shotlist, tmp_path, tiny_engines) -> None:
    """The local executor's "out of memory; batch size lowered to N" (and the Ray executor's "a Ray worker died; …")
    reached the terminal bare, between progress lines, while the docs quote ``idcli: note: …``; a line that says
    its kind (``warning: --compile gave up``) keeps it."""
    import torch

    import idcli

    class Crowded:
        def __init__(self, adapter) -> None:
            self.engine = tiny_engines("tiny-sd", adapter)
            self.adapter_record = self.engine.adapter_record

        def render(self, requests):
            if len(requests) > 1:
                raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
            return self.engine.render(requests)

        def suggest_batch_size(self, request) -> int:
            return 2

    stream = io.StringIO()
    path = write_shotlist("""\
version: 1
project: notes
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, takes: 2}
shots:
  - {id: sh010, prompt: an empty street}
""")
    report = idcli.render(idcli.load_shotlist(path), tmp_path / "out", device="cpu", progress=PlainProgress(stream),
                          engine_factory=lambda m, r, a: Crowded(a))
    assert report.rendered == 2
    assert "idcli: note: out of memory; batch size lowered to 1" in stream.getvalue().splitlines()


def test_a_ray_workers_line_keeps_its_kind_and_names_the_worker() -> None:
    from idcli.diagnostics import kind_of

    assert kind_of("out of memory; batch size lowered to 4") == ("note", "out of memory; batch size lowered to 4")
    assert kind_of("warning: --compile gave up (reason)") == ("warning", "--compile gave up (reason)")
    assert kind_of("note: said") == ("note", "said")
