"""Ray imported for ``--executor ray``, or the error that says why it cannot be (exit 4): not installed here (install
idcli's ``ray`` extra), or installed but not importing (a dependency missing or of another version, a wheel for another
Python: reinstall it). Imported lazily, each time it is needed: a local render never imports Ray. Split from ray.py."""

from __future__ import annotations

from typing import Any

from ..errors import ExecutorUnavailableError
from ..option_words import Option
from .ray_failure_words import first_line


def import_ray() -> Any:
    """The ``ray`` module, or ``ExecutorUnavailableError`` saying what to install."""
    try:
        import ray
    except ImportError as exc:
        if isinstance(exc, ModuleNotFoundError) and exc.name == "ray":
            raise ExecutorUnavailableError(Option("executor", "ray"), " needs Ray, which is not installed here: pip "
                                           "install 'idcli[ray]' (from a source checkout: pip install -e '.[ray]'; Ray "
                                           "2.60 or later)") from None
        # Ray is there but does not import (a dependency missing or of another version, a wheel for another Python):
        # "pip install" would change nothing, so what failed is said.
        raise ExecutorUnavailableError(Option("executor", "ray"), f" needs Ray, which is installed but does not import "
                                       f"here ({type(exc).__name__}: {first_line(exc)}); reinstall it: pip install "
                                       "--force-reinstall 'ray>=2.60'") from None
    return ray
