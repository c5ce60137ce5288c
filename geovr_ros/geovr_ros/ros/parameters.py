"""Declaring every parameter once, with its type, default and description."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import ParameterDescriptor, ParameterType

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
    """Declares `params` on `node` (each once) and returns {name: value}."""
    values = {}
    for p in params:
        descriptor = ParameterDescriptor(name=p.name, type=parameter_type(p),
                                         description=p.description, read_only=p.read_only)
        values[p.name] = node.declare_parameter(p.name, p.default, descriptor).value
    return values
