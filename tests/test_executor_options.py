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


@pytest.mark.parametrize("auth_mode", [None, "token"])
def test_a_cluster_that_refuses_this_driver_points_at_token_authentication(
        monkeypatch: pytest.MonkeyPatch, auth_mode: str | None) -> None:
    """The farm tour: `ray start --head` on a machine holding ``~/.ray/auth_token`` starts a cluster with token
    authentication, and a driver given its address (``--ray-address`` or ``$RAY_ADDRESS``) never turns token
    authentication on by itself (Ray 2.60: only ``RAY_AUTH_MODE=token`` does, even with the token file at hand).
    Ray refused it for 20 s, then idcli said only "Failed to connect to Ray cluster at ...", as if the address
    were wrong. The port answers (idcli checked it), so the message says what else it is. Ray's own ``ray.init`` is
    replaced by the ConnectionError it raised then: no cluster is started for this."""
    import socket

    import ray

    from idcli.errors import ExecutorUnavailableError
    from idcli.executors.ray import RayBackend

    def refused(**kwargs: object) -> None:
        raise ConnectionError("Failed to connect to Ray cluster at 192.0.2.2:6393")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", refused)
    if auth_mode is None:
        monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    else:
        monkeypatch.setenv("RAY_AUTH_MODE", auth_mode)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(ExecutorUnavailableError, match=f"cannot connect to the Ray cluster at {address}: Failed "
                           "to connect to Ray cluster at 192.0.2.2:6393; its port answers") as err:
            RayBackend(address=address).connect()
    assert err.value.exit_code == 4
    if auth_mode is None:
        assert "set RAY_AUTH_MODE=token here and give this machine the cluster's token" in str(err.value)
    else:
        assert "check that this machine's token (RAY_AUTH_TOKEN or ~/.ray/auth_token) is the cluster's" in str(
            err.value)
