"""Where idcli writes a file the user names (``encode-identity -o``, ``identity show --contact-sheet``,
``export --otio``): a device node already at that path is never replaced. ``os.replace`` swaps it for a
regular file — run as root with ``-o /dev/null --force``, the machine's /dev/null became a file. Tested
with a character-device node made in the test's own folder (a copy of /dev/null's numbers; needs root)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from idcli.cli import app
from idcli.safeio import atomic_write

ROOT = Path(__file__).resolve().parents[1]


def _device(path: Path) -> Path:
    try:
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("making a device node needs root")
    return path


def test_atomic_write_never_replaces_a_device(tmp_path: Path) -> None:
    target = _device(tmp_path / "out.bin")
    with pytest.raises(OSError, match="is a device, not a regular file"):
        atomic_write(target, b"data")
    assert stat.S_ISCHR(os.lstat(target).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]  # no temporary left


def test_encode_identity_force_never_replaces_a_device(tmp_path: Path) -> None:
    target = _device(tmp_path / "mara.idpack")
    result = CliRunner().invoke(app, ["encode-identity", str(ROOT / "recipes" / "selfies" / "mara_1.jpg"),
                                      "--name", "mara", "-o", str(target), "--force"])
    assert result.exit_code != 0 and "internal error" not in result.output
    assert f"{target}: is a device, not a regular file" in result.output
    assert stat.S_ISCHR(os.lstat(target).st_mode)


def test_a_link_or_a_fifo_at_the_path_is_replaced_not_written_through(tmp_path: Path) -> None:
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"keep")
    link = tmp_path / "out.bin"
    link.symlink_to(outside)
    atomic_write(link, b"new")
    assert outside.read_bytes() == b"keep" and not link.is_symlink() and link.read_bytes() == b"new"
    fifo = tmp_path / "pipe.bin"
    os.mkfifo(fifo)  # as a FIFO planted at a final path of an output folder: replaced, never opened
    atomic_write(fifo, b"new")
    assert fifo.read_bytes() == b"new"
