"""Names in our source, as raise_analysis reads them: a function (with the types of its locals,
read once), where its names are looked up, what an annotation or a dotted name refers to, and what
a method assigns to `self`."""

from __future__ import annotations

import ast
import builtins
import functools
from collections import ChainMap
from dataclasses import dataclass


@dataclass(eq=False)
class Function:
    module: object
    qualname: str
    node: ast.AST
    cls: type | None = None
    types: dict | None = None  # local name -> type (flow-insensitive); "except e" -> what `e` may be
    imported: dict | None = None  # names a function imports for itself -> the objects


def scope(function: Function) -> ChainMap:
    """Where a function's names are looked up: its own imports, then its module's globals (then builtins)."""
    return ChainMap(function.imported or {}, vars(function.module))


def is_protocol(cls) -> bool:
    return bool(getattr(cls, "_is_protocol", False))


def value_in(module, node):
    """The object a Name or dotted Attribute names in `module` (a module, or a scope())."""
    if isinstance(node, ast.Name):
        namespace = module if isinstance(module, ChainMap) else vars(module)
        return namespace[node.id] if node.id in namespace else getattr(builtins, node.id, None)
    if isinstance(node, ast.Attribute):
        base = value_in(module, node.value)
        return getattr(base, node.attr, None) if base is not None else None
    return None


def annotation_in(module, node):
    """The class an annotation names (`X`, `"X"`, `X | None`), or None."""
    if node is None:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        node = ast.parse(node.value, mode="eval").body
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return annotation_in(module, node.left) or annotation_in(module, node.right)
    if isinstance(node, ast.Subscript):  # dict[str, X]: a dict
        node = node.value
    value = value_in(module, node)
    return value if isinstance(value, type) and value is not type(None) else None


@functools.cache  # asked for each attribute looked up in each class: a walk of the method each time took seconds
def self_assignments(method: ast.AST) -> tuple[tuple[str, ast.AST], ...]:
    """(attribute, value) of each `self.a = v` and `self.a, self.b = v, w` in a method; for
    `self.a: T = v`, (attribute, the annotation T)."""
    return tuple(_self_assignments(method))


def _self_assignments(method: ast.AST):
    for node in ast.walk(method):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Attribute) \
                and isinstance(node.target.value, ast.Name) and node.target.value.id == "self":
            yield node.target.attr, node.annotation
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                pairs = [(target, node.value)]
                if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple) \
                        and len(target.elts) == len(node.value.elts):
                    pairs = list(zip(target.elts, node.value.elts))
                for left, right in pairs:
                    if isinstance(left, ast.Attribute) and isinstance(left.value, ast.Name) and left.value.id == "self":
                        yield left.attr, right
