"""``python -m idcli``: the same entry as the ``idcli`` console script (idcli/command_entry.py)."""

from .command_entry import main

main()
