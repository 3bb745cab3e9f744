"""The GCS reads' deadline (idcli/executors/gcs_deadline.py), without Ray: a read function that blocks on an Event
stands for a read of a head that stopped answering (docs/scale-out.md, "Faults")."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from idcli.executors import gcs_deadline
from idcli.executors.gcs_deadline import within


@pytest.fixture
def head() -> Iterator[threading.Event]:
    """The head's answer to the reads given up: set at the end, so that no thread of the test is left stuck."""
    answer = threading.Event()
    yield answer
    answer.set()
    for thread in threading.enumerate():
        if thread.name == "idcli-gcs-read":
            thread.join(5)


def test_a_read_that_never_returns_does_not_shut_out_reads_for_good(head: threading.Event,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A read given up that never returns (its connection to the head lost in Ray's core while the head answers the
    next ones) refused every later read until the process ended, as "Ray cannot say": a worker Ray never placed was
    never dropped after PLACEMENT_WAIT_SECONDS (each check's read of the actor table refused), and the run waited for
    ever. Now a read given up holds the others back for STUCK_READ_SECONDS (the one-deadline cost of a freeze kept:
    far longer than the head watch's grace), then it is left to its daemon thread and reads are asked again."""
    with pytest.raises(TimeoutError, match="did not answer"):
        within(0.05, head.wait)
    asked: list[int] = []
    with pytest.raises(TimeoutError, match="has not answered an earlier read yet"):
        within(5, lambda: asked.append(1))  # within the bound: not asked, the freeze costs one deadline
    assert asked == []
    monkeypatch.setattr(gcs_deadline, "STUCK_READ_SECONDS", 0.0, raising=False)  # the bound is out
    assert within(5, lambda: 42) == 42  # the head answers again: this read is asked, and answered
    assert within(5, lambda: 43) == 43


def test_a_read_left_to_its_thread_that_is_given_up_again_holds_the_reads_back_again(
        head: threading.Event, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the bound the read asked is given up too, when the head still does not answer: then it holds the reads
    back in its turn (one deadline per STUCK_READ_SECONDS, not one per read)."""
    with pytest.raises(TimeoutError, match="did not answer"):
        within(0.05, head.wait)
    monkeypatch.setattr(gcs_deadline, "STUCK_READ_SECONDS", 0.0, raising=False)
    with pytest.raises(TimeoutError, match="did not answer"):
        within(0.05, head.wait)
    monkeypatch.setattr(gcs_deadline, "STUCK_READ_SECONDS", 3600.0, raising=False)
    asked: list[int] = []
    with pytest.raises(TimeoutError, match="has not answered an earlier read yet"):
        within(5, lambda: asked.append(1))
    assert asked == []
