"""Version numbers that are part of idcli's contracts with files on disk."""

from __future__ import annotations

TOOL_NAME = "idcli"
TOOL_VERSION = "0.1.0"

SIDECAR_SCHEMA = 1
# Tag of every job key; changing the key material means a new tag. v2: identities are keyed by what made
# them (selfie and face-model hashes, encoder version), not by the embedding's float bits; a framing phrase
# the prompt already says is not added again.
JOB_KEY_TAG = "idcli-job-v2"
# Bump when the same inputs would give different pixels; it is part of every job key.
ENGINE_ALGORITHM = "idcli-engine/2"  # 2: unconditional rows carry no identity; dual-line
# Engine versions whose sidecars ``idcli reproduce`` can re-render (the current one and any older one
# whose pixels this code still makes).
SUPPORTED_ENGINES = (ENGINE_ALGORITHM,)
