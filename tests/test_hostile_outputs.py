"""Where idcli writes a file the user names (``encode-identity -o``, ``identity show --contact-sheet``,
``export --otio``): a device, FIFO or socket already at that path is never replaced. ``os.replace`` would
swap it for a regular file — run as root with ``-o /dev/null --force``, the machine's /dev/null became a file.
Tested with FIFOs and sockets (no device node is touched)."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from idcli.cli import app
from idcli.safeio import atomic_write

ROOT = Path(__file__).resolve().parents[1]


def _special(path: Path, kind: str) -> None:
    if kind == "fifo":
        os.mkfifo(path)
    else:
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        sock.close()


@pytest.mark.parametrize("kind", ["fifo", "socket"])
def test_atomic_write_never_replaces_a_special_file(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "out.bin"
    _special(target, kind)
    with pytest.raises(OSError, match="not a regular file"):
        atomic_write(target, b"data")
    mode = os.lstat(target).st_mode
    assert stat.S_ISFIFO(mode) if kind == "fifo" else stat.S_ISSOCK(mode)
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]  # no temporary left


def test_encode_identity_force_never_replaces_a_fifo(tmp_path: Path) -> None:
    target = tmp_path / "mara.idpack"
    os.mkfifo(target)
    result = CliRunner().invoke(app, ["encode-identity", str(ROOT / "recipes" / "selfies" / "mara_1.jpg"),
                                      "--name", "mara", "-o", str(target), "--force"])
    assert result.exit_code != 0 and "internal error" not in result.output
    assert "not a regular file" in result.output and str(target) in result.output
    assert stat.S_ISFIFO(os.lstat(target).st_mode)


def test_a_link_at_the_path_is_replaced_not_written_through(tmp_path: Path) -> None:
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"keep")
    link = tmp_path / "out.bin"
    link.symlink_to(outside)
    atomic_write(link, b"new")
    assert outside.read_bytes() == b"keep" and not link.is_symlink() and link.read_bytes() == b"new"
