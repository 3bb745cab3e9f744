"""The executor options at the command line, checked before anything runs (no Ray cluster needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from idcli.cli import app

SHOTS = """\
version: 1
project: options
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2}
shots:
  - {id: s1, prompt: "a lighthouse in a storm"}
"""


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["--executor", "dask"], 2, "allowed: local, ray"),
    (["--workers", "2"], 2, "need --executor ray"),
    (["--ray-address", "127.0.0.1:6379"], 2, "need --executor ray"),
    (["--executor", "ray", "--workers", "0"], 2, "--workers 0: give a whole number, 1 or more"),
    # Nothing listens on port 1: an error at once (Ray's own client would retry for minutes), exit 4.
    (["--executor", "ray", "--ray-address", "127.0.0.1:1"], 4, "cannot reach the Ray cluster at 127.0.0.1:1"),
])
def test_executor_options_are_checked(write_shotlist, tmp_path: Path, argv: list[str], code: int,
                                      message: str) -> None:
    path = write_shotlist(SHOTS)
    result = CliRunner().invoke(app, ["render", str(path), "--out", str(tmp_path / "o"), "--device", "cpu", *argv])
    assert result.exit_code == code and message in result.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("worker_cpus", [-1, "1", True, float("nan")])
def test_ray_backend_worker_cpus_is_checked(worker_cpus: object) -> None:
    """``RayBackend(worker_cpus=-1)`` got as far as starting the actors: Ray's ``ValueError`` ("The quantity of
    resource num_cpus cannot be negative") escaped ``idcli.render`` after the output folder was made."""
    import idcli
    from idcli.executors.ray import RayBackend

    with pytest.raises(idcli.InputError, match=r"worker_cpus .*: give a number of CPUs, 0 or more"):
        RayBackend(worker_cpus=worker_cpus)  # type: ignore[arg-type]
