"""A shot-list field's allowed range in words ('more than 0 and at most 3600'), read from the schema's own bounds
(``Field(gt=..., le=...)``), so that a hint naming a number can say at once whether it is allowed."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any

import annotated_types

_WORDS = ((annotated_types.Gt, "gt", "more than"), (annotated_types.Ge, "ge", "at least"),
          (annotated_types.Lt, "lt", "less than"), (annotated_types.Le, "le", "at most"))


def _number(bound: Any) -> str:
    return str(int(bound)) if isinstance(bound, float) and bound.is_integer() else str(bound)


def _bounds(annotation: Any, *, item: bool) -> list[tuple[type, Any]]:
    """The bounds of the number ``annotation`` holds (through ``X | None``, and into ``list[X]`` for an item)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        if args[0] not in (int, float):
            return _bounds(args[0], item=item)
        constraints = [c for meta in annotation.__metadata__ for c in (meta, *getattr(meta, "metadata", ()))]
        return [(kind, getattr(c, name)) for c in constraints for kind, name, _ in _WORDS if isinstance(c, kind)]
    if origin is list:
        return _bounds(args[0], item=False) if item and args else []
    for arg in args:  # a union: X | None
        if arg is not type(None) and (bounds := _bounds(arg, item=item)):
            return bounds
    return []


@dataclass(frozen=True)
class FieldRange:
    """A number field's bounds: ``words`` ('more than 0 and at most 3600', '' when unbounded), ``outside()``."""

    bounds: tuple[tuple[type, Any], ...] = ()

    @property
    def words(self) -> str:
        return " and ".join(f"{word} {_number(value)}" for kind, _, word in _WORDS
                            for k, value in self.bounds if k is kind)

    def outside(self, number: float) -> bool:
        """Whether ``number`` breaks one of the bounds."""
        return any((kind is annotated_types.Gt and not number > value)
                   or (kind is annotated_types.Ge and not number >= value)
                   or (kind is annotated_types.Lt and not number < value)
                   or (kind is annotated_types.Le and not number <= value) for kind, value in self.bounds)


def field_range(annotation: Any, *, item: bool = False) -> FieldRange:
    """The range of ``Annotated[float, Field(gt=0, le=3600)] | None``; ``item``: of one item of a list field
    (``seeds``)."""
    return FieldRange(tuple(_bounds(annotation, item=item)))


def number_kind(annotation: Any, *, item: bool = False) -> str | None:
    """Whether the number field ``annotation`` takes whole numbers (``"int_type"``, pydantic's name for the error of
    a value that is not one) or decimals (``"float_type"``), through ``X | None`` and, for an ``item``, into
    ``list[X]``; None for a field that takes no number."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation in (int, float):
        return "int_type" if annotation is int else "float_type"
    if origin is typing.Annotated:
        return number_kind(args[0], item=item)
    if origin is list:
        return number_kind(args[0], item=False) if item and args else None
    for arg in args:  # a union: X | None
        if arg is not type(None) and (kind := number_kind(arg, item=item)):
            return kind
    return None
