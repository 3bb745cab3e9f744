"""Click's usage errors in idcli's own words: one line, ``idcli: error: WHAT: WHY (HINT)``.

Click printed an unknown option under a usage line with difflib's "Possible options", which matched on the
leading ``--`` alone (``--bogus`` -> ``--out``, ``--steps`` -> ``--help``). Here the nearest option is found
by its name (idcli/suggest.py, as for shot-list keys), and when none is near, the command's options are listed.
An unknown command is answered the same way; a missing argument or option names what it is and the usage; a
value that does not convert says what to give ("give a number", not pydantic's "Input should be a valid number,
unable to parse string as a number"). Every one exits 2, and ``--json`` carries the same line.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import printable
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


def _usage(ctx: Any) -> str:
    """``idcli render [OPTIONS] FILE``: the command's usage line, without Typer's braces."""
    pieces = " ".join(ctx.command.collect_usage_pieces(ctx)).replace("{", "").replace("}", "")
    return f"{_command_name(ctx)} {pieces}"


def _sentence_part(text: str) -> str:
    """A help text as part of a sentence: no trailing full stop, lower case first unless a name (``OTIO``,
    ``OpenTimelineIO``): a first word that is one capital (``A render's``) or a capital then lower case."""
    text = text.strip().rstrip(".")
    first = text.split(maxsplit=1)[0] if text else ""
    return text[0].lower() + text[1:] if first[:1].isupper() and (len(first) == 1 or first[1:].islower()) else text


def _param_name(param: Any) -> str:
    opts = getattr(param, "opts", None) or []
    long = [o for o in opts if o.startswith("--")]
    if getattr(param, "param_type_name", "") == "option" and opts:
        return (long or opts)[0]
    return str(getattr(param, "metavar", None) or str(getattr(param, "name", "") or "?").upper())


def _given_value(param: Any, argv: list[str]) -> str | None:
    """The value typed for option ``param`` (``--fps abc`` or ``--fps=abc``), the last one when repeated."""
    found = None
    for i, word in enumerate(argv):
        for opt in getattr(param, "opts", None) or []:
            if word == opt and i + 1 < len(argv):
                found = argv[i + 1]
            elif word.startswith(opt + "="):
                found = word[len(opt) + 1:]
    return found


def _why_invalid(message: str) -> str:
    """pydantic's words (Typer 0.29 converts values with it) as an instruction: 'Input should be a valid
    integer, unable to parse string as an integer' -> 'give an integer'."""
    valid = re.match(r"Input should be a valid (?P<kind>\w+)", message)
    if valid:
        kind = valid["kind"]
        return f"give {'an' if kind[0] in 'aeiou' else 'a'} {kind}"
    return _sentence_part(message.removeprefix("Input "))


def _bad_parameter(exc: Any, argv: list[str]) -> str:
    param = exc.param
    name = _param_name(param)
    value = _given_value(param, argv)
    what = name if value is None else f'{name} ""' if value == "" else f"{name} {value}"  # `--out ""` as typed
    about = _sentence_part(param.help) if getattr(param, "help", None) else ""
    return f"{what}: {_why_invalid(exc.message)}" + (f" ({about})" if about else "")


def _missing(exc: Any) -> str:
    param = exc.param
    about = f": {_sentence_part(param.help)}" if getattr(param, "help", None) else ""
    return f"{_param_name(param)}: missing{about} (usage: {_usage(exc.ctx)})"


# What an artist types the morning after a stopped render, answered with the command that does it: `resume` was
# offered `restore` (the nearest name), which puts back an earlier take, and `status` listed every command.
_MORNING_WORDS = {
    "status": "what a folder holds and lacks: idcli verify OUT (idcli plan FILE --out OUT: each job's state)",
    **dict.fromkeys(("resume", "continue", "finish"),
                    "idcli render FILE --out OUT again renders only what is not done"),
}


def _no_such_command(exc: Any, name: str) -> str:
    group, ctx = exc.ctx.command, exc.ctx
    commands = [n for n, c in group.commands.items() if not getattr(c, "hidden", False)]
    near = closest(name, commands, n=1)
    hint = f"did you mean {near[0]}?" if near else f"its commands: {', '.join(commands)}"
    if ctx.parent is None and name.lower() in _MORNING_WORDS:  # idcli's own commands, not `idcli models status`
        hint = _MORNING_WORDS[name.lower()]
    return f"{name}: no such command of {_command_name(ctx)} ({hint})"


def usage_message(exc: Any, argv: list[str] | None = None) -> str | None:
    """idcli's words for a usage error Click raised, or None to keep Click's own (the help a bare ``idcli``
    shows). ``argv``: the command line, for the value an option was given. One line, whatever was typed."""
    words = _usage_words(exc, argv or [])
    return None if words is None else printable(words)


def _usage_words(exc: Any, argv: list[str]) -> str | None:
    # Typer vendors Click (typer._click, private): its errors are told apart by their classes' names.
    kinds = {cls.__name__ for cls in type(exc).__mro__}
    ctx = getattr(exc, "ctx", None)
    if "NoArgsIsHelpError" in kinds or "UsageError" not in kinds:
        return None
    if ctx is None:  # raised by the option parser without its command (`render x --only`)
        return _sentence_part(exc.message)
    if "NoSuchOption" in kinds:
        return no_such_option(exc)
    if "MissingParameter" in kinds and getattr(exc, "param", None) is not None:
        return _missing(exc)
    if "BadParameter" in kinds and getattr(exc, "param", None) is not None:
        return _bad_parameter(exc, argv)
    command = re.match(r"No such command '(?P<name>.*?)'\.", exc.message)  # Typer adds "Did you mean ...?"
    if command and hasattr(ctx.command, "commands"):
        return _no_such_command(exc, command["name"])
    return f"{_command_name(ctx)}: {_sentence_part(exc.message)} (usage: {_usage(ctx)})"
