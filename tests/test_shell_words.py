"""A command a note suggests names its paths as the person typed them from the current folder (idcli/shell_words.py):
``idcli render shots.yaml --out renders/x``, not the absolute paths the run manifest records."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from idcli.review.order import ShotOrder
from idcli.review.runs import Run
from idcli.shell_words import shell_path


def test_a_path_under_the_current_folder_is_written_relative_and_quoted(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert shell_path(tmp_path / "shots.yaml") == "shots.yaml"
    assert shell_path(tmp_path / "ana's film" / "shots.yaml") == "'ana'\"'\"'s film/shots.yaml'"
    assert shell_path(Path("/")) == "/"  # shorter absolute than '../../..'
    # Beside the current folder, not under it: absolute, though '../other/shots.yaml' is shorter. It was written
    # relative where that was shorter, so a note's command changed with where the folders sat (a clean clone under
    # /tmp wrote '../pytest-of-root/…/shots.yaml' where the development checkout wrote the absolute path).
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    assert shell_path(tmp_path / "other" / "shots.yaml") == str(tmp_path / "other" / "shots.yaml")
    assert shell_path(tmp_path / "here" / "shots.yaml") == "shots.yaml"


def test_the_render_a_review_note_suggests_names_the_shot_list_as_typed(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The manifest records the shot list's absolute path; the render that export's and deliver's notes suggest
    said ``idcli render /abs/path/shots.yaml --out /abs/path/renders/x`` where the user typed relative paths."""
    monkeypatch.chdir(tmp_path)
    order = ShotOrder("film", "shots.yaml", (), path=tmp_path / "shots.yaml")
    run = Run(tmp_path / "renders" / "film", [], order)
    assert run.render_command == "idcli render shots.yaml --out renders/film"
    assert Run(tmp_path / "out dir", [], None).render_command == "idcli render SHOTS.yaml --out 'out dir'"


def test_every_note_that_builds_a_command_names_the_folder_as_typed(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """plan's `restore` line and qa's "--json lists every one" wrote the output folder as the absolute path idcli had
    resolved (``idcli qa /abs/path/renders/x --json``) where ``renders/x`` was typed."""
    from idcli.cli.shotlist_commands import restore_folder
    from idcli.review.qa_findings import flagged_lines

    monkeypatch.chdir(tmp_path)
    out = tmp_path / "renders" / "x"
    assert restore_folder(out) == "renders/x"
    images = [{"image": f"sh{i}_t1.png", "findings": ["no face"], "flags": []} for i in range(3)]
    assert flagged_lines(images, out, limit=2)[-1] == \
        "  … and 1 more flagged images (idcli qa renders/x --json lists every one)"


def test_a_note_still_prints_when_the_current_folder_was_deleted(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """os.getcwd() raises FileNotFoundError once the folder the shell sits in is removed (a render folder deleted
    by another terminal): relpath raised it out of every note that suggests a command, a traceback in place of
    the note. The absolute path is the one that still works from anywhere."""
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    assert shell_path(tmp_path / "renders" / "x") == str(tmp_path / "renders" / "x")
    assert shell_path("renders/x") == "renders/x"  # relative to a folder that cannot be resolved: kept as given


def test_a_path_under_a_current_folder_reached_through_a_link_is_written_relative(tmp_path: Path,
                                                                                  monkeypatch: pytest.MonkeyPatch
                                                                                  ) -> None:
    """``cd`` through a symlink: the shell's $PWD is the link's path, os.getcwd() the folder's real one. A path the
    person typed absolute (``--out $PWD/renders/x``) was compared with the real path only, so every suggested path
    came out absolute. $PWD is used when it names the current folder; a path spelled either way is relative."""
    real = tmp_path / "disks" / "film"
    real.mkdir(parents=True)
    (tmp_path / "film").symlink_to(real)
    monkeypatch.chdir(tmp_path / "film")
    monkeypatch.setenv("PWD", str(tmp_path / "film"))
    assert shell_path(tmp_path / "film" / "renders" / "x") == "renders/x"
    assert shell_path(real / "renders" / "x") == "renders/x"
    assert shell_path("renders/x") == "renders/x"
    assert shell_path(tmp_path / "other" / "x") == str(tmp_path / "other" / "x")
    # A $PWD that names another folder (left by a program that changed folder without updating it) is not used.
    monkeypatch.setenv("PWD", str(tmp_path / "other"))
    (tmp_path / "other").mkdir()
    assert shell_path(tmp_path / "other" / "x") == str(tmp_path / "other" / "x")
    assert shell_path(real / "renders" / "x") == "renders/x"


@pytest.mark.skipif(shutil.which("bash") is None, reason="the quoting is bash's")
@pytest.mark.parametrize("name", [b"caf\xe9", b"-sc\xff01 d'\xc3\xa9t\xc3\xa9\n\\x41"])
def test_a_name_that_is_not_utf8_is_quoted_so_bash_receives_its_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      name: bytes) -> None:
    """A folder named in Latin-1 (``caf\\xe9``, from an old Windows share) reaches Python surrogate-escaped; the note
    printed that escape (or a replacement character), so the suggested command, pasted, named another folder. The
    path is quoted in bash's $'\\xNN' form and printable as UTF-8; bash given the command gets the very bytes."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / os.fsdecode(name)).mkdir()
    printed = shell_path(tmp_path / os.fsdecode(name)).encode("utf-8")  # strict: as a terminal shows it, pasted
    received = subprocess.run([b"bash", b"-c", b"printf %s " + printed], capture_output=True, check=True).stdout
    assert received == (b"./" if name.startswith(b"-") else b"") + name, printed
    subprocess.run([b"bash", b"-c", b"test -d " + printed], check=True)  # the folder there, not another name


@pytest.mark.skipif(shutil.which("bash") is None, reason="the quoting is bash's")
@pytest.mark.parametrize("name", ["a\tb", "red\x1b[31m", "two\nlines", "no\u00a0break", "zero\u200bwidth"])
def test_a_name_with_a_character_a_terminal_does_not_show_pastes_as_printed(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch,
                                                                          name: str) -> None:
    """A UTF-8 name with a tab, an escape or another character a terminal does not show as itself was quoted in
    plain quotes: idcli prints every note terminal-safe, so the escape came out as the text ``\\x1b`` and, pasted
    inside ``'…'``, named another file; a tab showed as spaces and a newline split the note. Such a name is written
    in bash's $'\\xNN' form, every character of the printed line shown as itself."""
    from idcli.errors import terminal_safe

    monkeypatch.chdir(tmp_path)
    (tmp_path / name).mkdir()
    printed = terminal_safe(shell_path(tmp_path / name))  # as a note prints it (idcli/cli/output.py's emit)
    assert printed.isprintable(), printed
    received = subprocess.run([b"bash", b"-c", b"printf %s " + printed.encode("utf-8")], capture_output=True,
                              check=True).stdout
    assert received == os.fsencode(name), printed
    subprocess.run([b"bash", b"-c", b"test -d " + printed.encode("utf-8")], check=True)
