"""``--batch-size auto`` through Ray Client: the driver asks every worker for its size before the first batch. A head
gone while they answer made ``ray.wait`` raise ``ConnectionError`` (Ray Client's data channel lost), outside the
handling of a cluster lost mid-run: an OSError, said as exit 5, "output folder unusable". It is now exit 4, in the
words of a head lost mid-run. A Ray Client head cannot be stopped at that moment reliably on two shared cores, so Ray's
``wait`` is a stand-in that raises what Ray Client raises; the head's Ray Client port is one where nothing listens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import idcli
from idcli.errors import ExecutorUnavailableError
from idcli.executors.ray import RayExecutor
from idcli.executors.ray_head import HeadWatch

SHOTS = """\
version: 1
project: sizes
model: {preset: tiny-sd}
defaults: {size: 64x64, steps: 2, takes: 2}
shots:
  - {id: s1, prompt: "a lighthouse in a storm"}
"""


class _Asked:
    """A worker's ``suggest_batch_size``: its ``.remote`` gives a reference, as Ray's does; nothing answers it."""

    def remote(self, *args: Any) -> object:
        return object()


class _Worker:
    suggest_batch_size = _Asked()


class _Sink:
    def __init__(self) -> None:
        self.notes: list[str] = []

    def note(self, text: str) -> None:
        self.notes.append(text)

    def rendered(self, batch: Any) -> None:
        raise AssertionError("nothing was rendered")

    def failed(self, jobs: Any, error: str) -> None:
        raise AssertionError(f"no job failed: {error}")


def test_a_ray_client_head_gone_while_the_workers_size_auto_is_exit_4(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    def wait(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("Failed during this or a previous request. Exception that broke the connection: ...")

    monkeypatch.setattr(ray, "wait", wait)
    monkeypatch.setattr(ray, "kill", lambda *args, **kwargs: None)
    shots = tmp_path / "shots.yaml"
    shots.write_text(SHOTS, "utf-8")
    plan, _ = idcli.plan_shotlist(shots, device="cpu")
    head = HeadWatch("127.0.0.1:1", "ray://127.0.0.1:1")  # nothing listens on port 1: the head is gone
    executor = RayExecutor([_Worker(), _Worker()], head)
    with pytest.raises(ExecutorUnavailableError) as caught:
        executor.run(list(plan.jobs), "auto", False, _Sink())
    assert str(caught.value) == ("the Ray cluster at ray://127.0.0.1:1 went away (its head no longer answers); the "
                                 "images committed so far are kept: run again to resume")
    assert caught.value.exit_code == 4
