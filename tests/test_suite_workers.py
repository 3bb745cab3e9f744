"""How many pytest-xdist workers ``pytest -q`` starts (tests/conftest.py, docs/testing.md "Running the suite"):
every core on a 2-vCPU CI machine, never more than 8, never more than one per 2 GB of memory."""

from __future__ import annotations

import os

import pytest
from conftest import pytest_xdist_auto_num_workers


@pytest.mark.parametrize(("cores", "memory_gb", "workers"), [
    (2, 8, 2),  # a CI machine: both cores (xdist's own count, psutil's physical cores, may say 1)
    (1, 4, 1),
    (64, 512, 8),  # a workstation: memory, not cores, runs out past 8
    (16, 8, 4),  # cores to spare, 8 GB: one worker per 2 GB
    (4, 1, 1),  # never none
])
def test_workers_follow_cores_and_memory(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest,
                                         cores: int, memory_gb: int, workers: int) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    pages = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": memory_gb * (1 << 30) // 4096}
    monkeypatch.setattr(os, "sysconf", lambda name: pages[name], raising=False)
    assert pytest_xdist_auto_num_workers(request.config) == workers
