"""A file given where an output folder is expected is named as a file, not as a folder that does not exist.

``idcli qa|review|select|export|evaluate shots.yaml`` (the shot list instead of its output folder, an easy slip)
said "no such output folder" of a file that is right there; every command that reads an output folder now says
"PATH is a file, not an output folder", through one shared check (arguments.check_out_dir_is_folder).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from review_helpers import cli

import idcli
from idcli.delivery import deliver
from idcli.review.selects import select
from idcli.superseded import kept_versions_of
from idcli.verify import verify_folder

COMMANDS = [
    ("qa", []),
    ("review", []),
    ("select", ["sh010=1"]),
    ("export", ["--otio", "cut.otio"]),
    ("evaluate", []),
    ("verify", []),
    ("restore", ["sh010_t1"]),
    ("restore", ["--list"]),
    ("deliver", ["delivered"]),
]


@pytest.mark.parametrize(("command", "extra"), COMMANDS, ids=[" ".join([c, *e]) for c, e in COMMANDS])
def test_each_command_names_a_file_given_as_the_output_folder(command: str, extra: list[str], tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shots = tmp_path / "shots.yaml"
    shots.write_text("version: 1\n")
    result = cli(command, shots, *extra)
    assert result.exit_code == idcli.EXIT_INVALID_INPUT, result.output
    assert f"{shots} is a file, not an output folder" in result.output, result.output
    assert "no such output folder" not in result.output
    assert shots.read_text() == "version: 1\n" and sorted(p.name for p in tmp_path.iterdir()) == ["shots.yaml"]


def test_the_library_names_a_file_given_as_the_output_folder(tmp_path: Path) -> None:
    shots = tmp_path / "shots.yaml"
    shots.write_text("version: 1\n")
    calls = [lambda: idcli.read_results(shots), lambda: select(shots, ["sh010=1"]),
             lambda: verify_folder(shots), lambda: kept_versions_of(shots, "sh010_t1"),
             lambda: deliver(shots, tmp_path / "delivered")]
    for call in calls:
        with pytest.raises(idcli.InputError, match=r"shots\.yaml is a file, not an output folder"):
            call()


def test_a_missing_folder_is_still_no_such_output_folder(tmp_path: Path) -> None:
    missing = tmp_path / "renders"
    result = cli("review", missing)
    assert result.exit_code == idcli.EXIT_INVALID_INPUT
    assert f"{missing}: no such output folder" in result.output, result.output
    with pytest.raises(idcli.InputError, match="no such output folder"):
        idcli.read_results(missing)


INSIDE = [("review", []), ("select", ["sh010=1"]), ("qa", []), ("verify", []), ("export", ["--otio", "cut.otio"]),
          ("restore", ["--list"])]


@pytest.mark.parametrize(("command", "extra"), INSIDE, ids=[" ".join([c, *e]) for c, e in INSIDE])
def test_a_folder_or_file_inside_an_output_folder_names_the_output_folder(review_run: Path, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch,
                                                                         command: str, extra: list[str]) -> None:
    """Director's tour: the folder sent back holds the storyboard page, ``OUT/review/index.html``; given the page's
    folder (or the page, or a shot's folder) instead of OUT, review said "no committed renders found; render a shot
    list into it first (idcli render FILE --out DIR)": rendering into the page's folder, wrong advice. It names the
    output folder the path is inside."""
    import shutil

    out = tmp_path / "out"
    shutil.copytree(review_run, out)
    assert cli("review", out).exit_code == 0
    monkeypatch.chdir(tmp_path)
    for given in (out / "review", out / "review" / "index.html", out / "review" / "thumbs", out / "sh010"):
        result = cli(command, given, *extra)
        assert result.exit_code == idcli.EXIT_INVALID_INPUT, result.output
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.output, result.output
        assert f": it is inside the output folder {out}; give {out} itself" in result.stderr, result.stderr
        assert "render a shot list into it" not in result.stderr
    relative = cli(command, Path("out") / "review", *extra)  # as typed, from the folder above
    assert relative.exit_code == idcli.EXIT_INVALID_INPUT and "; give out itself" in relative.stderr, relative.output
    assert not (tmp_path / "cut.otio").exists()
    # Nothing is left inside OUT by the refusal (qa took the folder's lock first, leaving OUT/review/.idcli/lock).
    assert not [p for p in out.rglob(".idcli") if p.parent != out], sorted(out.rglob(".idcli"))


DELIVERED = [("review", []), ("select", []), ("select", ["sh010=1"]), ("export", ["--edl", "cut.edl"]),
             ("evaluate", []), ("qa", [])]


@pytest.mark.parametrize(("command", "extra"), DELIVERED, ids=[" ".join([c, *e]) for c, e in DELIVERED])
def test_a_delivery_folder_is_named_as_one_and_left_as_it_was(review_run: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch, command: str,
                                                             extra: list[str]) -> None:
    """Editor's tour: what reaches editorial is the delivery (``idcli deliver OUT DEST``), and the editor runs
    ``idcli export DEST --edl cut.edl`` on it. review, select, export and evaluate said "no committed renders found;
    render a shot list into it first (idcli render FILE --out DIR)", advice render itself refuses there (exit 2,
    docs/delivery.md), and ``idcli qa DEST`` left ``DEST/.idcli/lock`` among the files to send on. Each names the
    delivery folder and what to give instead, and writes nothing into it."""
    import shutil

    out, dest = tmp_path / "out", tmp_path / "delivered"
    shutil.copytree(review_run, out)
    deliver(out, dest)
    sent = sorted(p.relative_to(dest) for p in dest.rglob("*"))
    monkeypatch.chdir(tmp_path)
    result = cli(command, dest, *extra)
    assert result.exit_code == idcli.EXIT_INVALID_INPUT, result.output
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output, result.output
    assert f"{dest}: a delivery folder (it holds delivery.json, from idcli deliver)" in result.stderr, result.stderr
    assert "give the output folder the takes were delivered from" in result.stderr, result.stderr
    assert "render a shot list into it" not in result.stderr
    assert sorted(p.relative_to(dest) for p in dest.rglob("*")) == sent
    assert not (tmp_path / "cut.edl").exists()
