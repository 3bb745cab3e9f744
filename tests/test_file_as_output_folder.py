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
