"""Click's usage errors in idcli's own words: one line, ``idcli: error: WHAT: WHY (HINT)``.

Click printed an unknown option under a usage line with difflib's "Possible options", which matched on the
leading ``--`` alone (``--bogus`` -> ``--out``, ``--steps`` -> ``--help``). Here the nearest option is found
by its name (idcli/suggest.py, as for shot-list keys), and when none is near, the command's options are listed.
"""

from __future__ import annotations

from typing import Any

from ..suggest import closest


def _command_name(ctx: Any) -> str:
    """``idcli render``, ``idcli models list``: the command as typed, whatever the program was started as."""
    names = []
    while ctx is not None:
        names.append(ctx.info_name)
        ctx = ctx.parent
    return " ".join(["idcli", *reversed(names[:-1])])


def _long_options(command: Any) -> list[str]:
    """The command's options as ``--help`` lists them, each by its long name (its short one if it has none)."""
    names = []
    for param in command.params:
        if getattr(param, "param_type_name", "") != "option" or getattr(param, "hidden", False):
            continue
        declared = [*param.opts, *param.secondary_opts]
        names.append(next((o for o in declared if o.startswith("--")), declared[0]))
    return names


def _shot_list_field(word: str) -> str | None:
    """The render parameter of a shot list (``steps``, ``negative_prompt``) an option such as ``--steps`` names."""
    from ..shotlist import RenderParams

    name = word.replace("-", "_")
    return name if name in RenderParams.model_fields else None


def no_such_option(exc: Any) -> str:
    """The message for Click's ``NoSuchOption``: the nearest option, or else all of the command's."""
    ctx = exc.ctx
    options = _long_options(ctx.command) if ctx is not None else []
    if ctx is not None and ctx.command.get_help_option(ctx) is not None:
        options.append("--help")
    by_name = {option.lstrip("-"): option for option in options}
    word = exc.option_name.lstrip("-")
    near = closest(word, by_name, n=1)
    hint = f"did you mean {by_name[near[0]]}?" if near else f"its options: {', '.join(options)}"
    field = _shot_list_field(word) if ctx is not None and any(p.name == "file" for p in ctx.command.params) else None
    if field is not None and not near:  # `render --steps 20`: a render parameter lives in the shot list
        hint = f"{field} is set in the shot list: defaults.{field}, or a shot's {field}"
    command = _command_name(ctx) if ctx is not None else "idcli"
    return f"{exc.option_name}: {command} has no such option ({hint})"


def usage_message(exc: Any) -> str | None:
    """idcli's words for a usage error Click raised, or None to keep Click's own."""
    # Typer vendors Click (typer._click, private): its errors are told apart by what they carry.
    if hasattr(exc, "option_name") and hasattr(exc, "possibilities"):  # NoSuchOption
        return no_such_option(exc)
    return None
