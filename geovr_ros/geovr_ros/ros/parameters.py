"""Declaring every parameter once, with its type, default and description."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import ParameterDescriptor, ParameterType
from rclpy.exceptions import ParameterException

_TYPES = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
          float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}
_ARRAY_TYPES = {float: ParameterType.PARAMETER_DOUBLE_ARRAY,
                int: ParameterType.PARAMETER_INTEGER_ARRAY,
                str: ParameterType.PARAMETER_STRING_ARRAY,
                bool: ParameterType.PARAMETER_BOOL_ARRAY}


@dataclass(frozen=True)
class Param:
    """One parameter: name, default (its Python type is the parameter type), description.

    For array parameters the default is a list and `item_type` names the element type (an
    empty list has none to infer from).
    """

    name: str
    default: Any
    description: str
    item_type: type | None = None
    read_only: bool = False


def parameter_type(param: Param) -> int:
    if isinstance(param.default, list):
        item = param.item_type or type(param.default[0])
        return _ARRAY_TYPES[item]
    return _TYPES[type(param.default)]


def declare_all(node, params: list[Param]) -> dict[str, Any]:
    """Declares `params` on `node` (each once) and returns {name: value}; raises ValueError
    naming the parameter when an override has the wrong type."""
    values = {}
    for p in params:
        descriptor = ParameterDescriptor(name=p.name, type=parameter_type(p),
                                         description=p.description, read_only=p.read_only)
        try:
            values[p.name] = node.declare_parameter(p.name, p.default, descriptor).value
        except ParameterException as error:  # e.g. -p name:=abc for an integer parameter
            raise ValueError(f'parameter {p.name}: {error}') from None
    return values


@dataclass(frozen=True)
class Rule:
    """What values a parameter allows: a number range (`low`/`high`, open ends with
    `low_open`/`high_open`), a set of `choices`, a list `length` (each item in the range),
    or `nonempty` for a string."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple | None = None
    length: int | None = None
    nonempty: bool = False

    def allowed(self) -> str:
        """The allowed values in words, e.g. 'a number > 0' or "one of ('a', 'b')"."""
        if self.choices is not None:
            return f'one of {self.choices}'
        if self.nonempty:
            return 'a non-empty string'
        parts = []
        if self.low is not None:
            parts.append(f'{">" if self.low_open else ">="} {self.low:g}')
        if self.high is not None:
            parts.append(f'{"<" if self.high_open else "<="} {self.high:g}')
        what = 'a finite number' + (' ' + ' and '.join(parts) if parts else '')
        return f'a list of {self.length} items, each {what}' if self.length else what

    def check(self, value: Any) -> bool:
        """True when `value` is allowed."""
        if self.choices is not None:
            return value in self.choices
        if self.nonempty:
            return isinstance(value, str) and bool(value)
        if self.length is not None:
            values = list(value) if isinstance(value, (list, tuple)) else None
            return values is not None and len(values) == self.length and all(
                self._in_range(v) for v in values)
        return self._in_range(value)

    def _in_range(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)


def parameter_problem(name: str, value: Any, rules: dict[str, Rule]) -> str | None:
    """None when `value` is allowed for parameter `name` (or it has no rule), else one line
    naming the parameter, the value and what is allowed."""
    rule = rules.get(name)
    if rule is None or rule.check(value):
        return None
    shown = repr(value if not isinstance(value, str) else value[:80])
    if hasattr(value, '__len__') and not isinstance(value, str):
        shown = repr(list(value))[:120]
    return f'parameter {name} = {shown} is not allowed: use {rule.allowed()}'


def check_parameters(values: dict[str, Any], rules: dict[str, Rule]) -> None:
    """Raises ValueError with `parameter_problem`'s line for the first bad value."""
    for name, value in values.items():
        problem = parameter_problem(name, value, rules)
        if problem:
            raise ValueError(problem)
