"""The first import of transformers and diffusers, one thread at a time.

Both packages end their ``__init__`` by putting a lazy module in ``sys.modules`` in place of the one being run. A
second thread importing a name from either while the first is still inside that ``__init__`` got the half-built
module: ``ImportError: cannot import name 'CLIPTokenizer' from 'transformers'`` (or ``'UNet2DConditionModel' from
'diffusers'``). Two ``idcli.render`` or ``plan_shotlist`` calls started at once in a fresh process — what
docs/architecture.md, "Threads and processes", allows — failed so every time, in one of the two threads. idcli imports
them through ``import_packages`` first wherever a run can reach them first: the plan's tokenizer, the engine,
the quieting of their notices (library_quiet.py). Another thread of the host that imports them itself, unguarded,
at that very moment is outside what idcli can hold.
"""

from __future__ import annotations

import importlib
import threading

_FIRST_IMPORT = threading.RLock()  # re-entrant: transformers' import may quiet its notices through idcli's hooks


def import_packages(*names: str) -> None:
    """Import the packages ``names`` completely, one thread at a time; at once when they already are."""
    with _FIRST_IMPORT:
        for name in names:
            importlib.import_module(name)
