"""Notes and warnings read one way whichever command prints them: ``idcli: note: …`` / ``idcli: warning: …``,
as errors read ``idcli: error: …`` (docs/README quote that form). ``select`` and ``plan`` said ``idcli: note:``
and ``idcli: warning:``, while ``deliver``, ``restore``, ``models fetch``, ``encode-identity``, ``validate`` and
render's folder notes said a bare ``note:``."""

from __future__ import annotations

import io
import re

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
