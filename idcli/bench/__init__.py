"""``idcli bench``: idcli's throughput on real-size random-weight models, against a naive baseline.

``run_bench`` renders a generated shot list through ``idcli.run.render`` (the path ``idcli render``
takes) and returns a ``BenchResult``. Importing this package is cheap; torch loads when a bench runs.
"""

from __future__ import annotations

from .invariance import check_batch_invariance, format_invariance
from .result import BenchResult, format_report
from .runner import BenchError, run_bench
from .workload import ARCHS, METHODS, parse_size

__all__ = ["ARCHS", "METHODS", "BenchError", "BenchResult", "check_batch_invariance", "format_invariance",
           "format_report", "parse_size", "run_bench"]
