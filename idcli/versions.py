"""Version numbers that are part of idcli's contracts with files on disk."""

from __future__ import annotations

TOOL_NAME = "idcli"
TOOL_VERSION = "0.1.0"

SIDECAR_SCHEMA = 1
JOB_KEY_TAG = "idcli-job-v1"  # tag of every job key; changing the key material means a new tag
# Bump when the same inputs would give different pixels; it is part of every job key.
ENGINE_ALGORITHM = "idcli-engine/2"  # 2: unconditional rows carry no identity; dual-line
