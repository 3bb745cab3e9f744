"""idcli: identity-consistent previs renders from YAML shot lists.

The library the ``idcli`` command is a thin layer over::

    import idcli

    shots = idcli.load_shotlist("shots.yaml")          # validate (raises idcli.ShotListError)
    plan, runtime = idcli.plan_shotlist(shots)          # content-keyed jobs, no rendering
    report = idcli.render(shots, "renders/scene12")     # render what is not done yet
    for record in idcli.read_results("renders/scene12"):
        print(record["shot_id"], record["take"], record["image"]["path"])

Importing idcli is cheap: torch and diffusers load only when something renders.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

from .errors import (
    EXIT_CHECK_FAILED,
    EXIT_INTERNAL_ERROR,
    EXIT_INTERRUPTED,
    EXIT_INVALID_INPUT,
    EXIT_JOBS_FAILED,
    EXIT_MODEL_UNAVAILABLE,
    EXIT_OK,
    EXIT_OUTPUT_BUSY,
    EXIT_OUTPUT_UNUSABLE,
    EXIT_TERMINATED,
    ExecutorUnavailableError,
    IdcliError,
    InputError,
    Interrupted,
    ModelUnavailableError,
    OutputBusyError,
    OutputError,
    ProjectMismatchError,
    ShotListError,
)
from .versions import TOOL_VERSION as __version__

if TYPE_CHECKING:
    # The lazy names as type checkers see them (at run time __getattr__ imports them on first use): without
    # this, ``idcli.render`` was ``Any`` to a pipeline's mypy or pyright and no call of it was checked.
    from .delivery import deliver as deliver
    from .plan_document import plan_folder as plan_folder
    from .planning import plan_shotlist as plan_shotlist
    from .reproduce import reproduce as reproduce
    from .results import read_results as read_results
    from .run import render as render
    from .run_report import RenderReport as RenderReport
    from .shotlist import load_shotlist as load_shotlist
    from .shotlist import loads_shotlist as loads_shotlist
    from .verify import verify_folder as verify_folder

_LAZY = {
    "load_shotlist": ("shotlist", "load_shotlist"),
    "loads_shotlist": ("shotlist", "loads_shotlist"),
    "plan_shotlist": ("planning", "plan_shotlist"),
    # The plan against an output folder, each job's state and why it is stale: the `idcli plan --json` document.
    "plan_folder": ("plan_document", "plan_folder"),
    "render": ("run", "render"),
    "RenderReport": ("run_report", "RenderReport"),
    "read_results": ("results", "read_results"),
    # Provenance (docs/provenance.md): re-render a committed image; check a folder's images and signatures.
    "reproduce": ("reproduce", "reproduce"),
    "verify_folder": ("verify", "verify_folder"),
    # Delivery (docs/delivery.md): copies to send out without local paths, as `idcli deliver`.
    "deliver": ("delivery", "deliver"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(f".{module}", __name__), attr)
    raise AttributeError(f"module 'idcli' has no attribute '{name}'")


def __dir__() -> list[str]:
    # The lazy names exist only through __getattr__; without this, dir() and REPL completion missed them.
    return sorted(set(globals()) | set(_LAZY))


class _Package(types.ModuleType):
    """idcli itself, keeping its public names when a submodule of the same name is imported.

    Python's import system sets ``idcli.reproduce`` to the module idcli/reproduce.py when that is first
    imported (by ``__getattr__`` above, the CLI, or a script), which hid the function ``idcli.reproduce``.
    ``from idcli.reproduce import ...`` still reads the module from ``sys.modules``.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType) and value.__name__ == f"{__name__}.{name}":
            return  # the public name stays __getattr__'s: the function, not its module
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


__all__ = ["EXIT_CHECK_FAILED", "EXIT_INTERNAL_ERROR",
           "EXIT_INTERRUPTED", "EXIT_INVALID_INPUT", "EXIT_JOBS_FAILED", "EXIT_MODEL_UNAVAILABLE", "EXIT_OK",
           "EXIT_OUTPUT_BUSY", "EXIT_OUTPUT_UNUSABLE", "EXIT_TERMINATED", "ExecutorUnavailableError", "IdcliError",
           "InputError", "Interrupted", "ModelUnavailableError", "OutputBusyError", "OutputError",
           "ProjectMismatchError", "ShotListError", "__version__", *_LAZY]
