"""C2PA credentials named by the environment (IDCLI_C2PA_CERT / IDCLI_C2PA_KEY) are not checked by the
shot list's file checks: a FIFO there made `render --sign` wait forever for a writer before printing
anything, and a device was read as a key. Each is now one SigningError naming the file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hang_watchdog import no_hang

pytest.importorskip("c2pa")
pytest.importorskip("cryptography")

from idcli.signing import SigningError, load_credentials


@pytest.mark.parametrize("kind", ["fifo", "device", "folder", "missing"])
def test_credentials_that_are_not_files_are_one_clear_error(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "cert.pem"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path = Path("/dev/zero")
    elif kind == "folder":
        path.mkdir()
    with no_hang(20), pytest.raises(SigningError, match=rf"C2PA certificate {path}: (is not a regular file|cannot read "
                                                          r"it \(no such file\)|is a folder)"):
        load_credentials(path, path)
