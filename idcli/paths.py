"""Where idcli keeps its own state (caches). One variable, IDCLI_HOME, moves all of it."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    """``$IDCLI_HOME``, else ``$XDG_CACHE_HOME/idcli``, else ``~/.cache/idcli``."""
    if home := os.environ.get("IDCLI_HOME"):
        return Path(home).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "idcli"
