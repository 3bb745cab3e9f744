"""``--dist loadgroup`` (pyproject's addopts) under pytest 9: the tests of one ``xdist_group`` on one worker again.

pytest-xdist's worker puts a test in its group by appending ``@GROUP`` to the test's id (its controller schedules
the tests of a suffix together), and it does that by setting ``item._nodeid``. pytest 9 reads a test's id from
``item._id`` (a structured ``NodeId``), so the assignment changes nothing: under pytest 9.2 and xdist 3.8 no test
was grouped, and the Ray tests ran on both workers, each starting its module's local cluster (two Rays that each
think they have the machine's 2 CPUs), while test_compile.py's shared trace was traced on each worker that ran one
of its tests. This sets the id xdist means to set, where xdist's own setting did not take.
"""

from __future__ import annotations

import pytest


def group_names(item: pytest.Item) -> list[str]:
    """The item's ``xdist_group`` names, as xdist reads them (a mark with no name is the group "default")."""
    return sorted({str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                   for mark in item.iter_markers("xdist_group")})


def apply_groups(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On an xdist worker running ``--dist loadgroup``: each grouped test's id ends in ``@GROUP``, as xdist's
    LoadGroupScheduling reads it. Nothing elsewhere (``-n0``, the controller, another --dist), nor where the id
    already ends so (pytest before 9, or an xdist that sets it the new way)."""
    if not getattr(config.option, "loadgroup", False):
        return
    try:
        from _pytest.nodeid import NodeId  # pytest 9's structured ids
    except ImportError:
        return  # an older pytest: xdist's own item._nodeid is the id
    for item in items:
        names = group_names(item)
        if not names:
            continue
        suffix = "@" + "_".join(names)
        if not item.nodeid.endswith(suffix):
            item._id = NodeId.parse(item.nodeid + suffix)
