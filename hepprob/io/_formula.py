"""Combine/RooFit formula strings (``@0*@1/@2``) as JAX functions of named parameters.

Only arithmetic (``+ - * / ** ^``), numbers, the arguments (``@i`` or their
names) and the functions ``exp log sqrt pow abs min max sin cos tan`` are
accepted; anything else is refused before evaluation (the string is parsed with
:mod:`ast`, never ``eval``-ed).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax.numpy as jnp

__all__ = ["compile_formula"]

_FUNCS: dict[str, Callable[..., Any]] = {
    "exp": jnp.exp, "log": jnp.log, "sqrt": jnp.sqrt, "pow": jnp.power, "abs": jnp.abs,
    "min": jnp.minimum, "max": jnp.maximum, "sin": jnp.sin, "cos": jnp.cos, "tan": jnp.tan,
}  # fmt: skip
_BINOPS = {
    ast.Add: jnp.add, ast.Sub: jnp.subtract, ast.Mult: jnp.multiply,
    ast.Div: jnp.divide, ast.Pow: jnp.power,
}  # fmt: skip


def compile_formula(
    formula: str, args: Sequence[str]
) -> Callable[[Mapping[str, Any]], Any]:
    """``f(params) -> value`` for a formula over ``args``.

    Raises:
        ValueError: a syntax error or a construct that is not allowed.
    """
    text = re.sub(r"TMath::(\w+)", lambda m: m.group(1).lower(), formula.strip())
    text = re.sub(r"@(\d+)", r"_arg\1", text).replace("^", "**")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as err:
        msg = f"cannot parse formula {formula!r}: {err.msg}"
        raise ValueError(msg) from None
    names = {f"_arg{i}": a for i, a in enumerate(args)}
    names.update({a: a for a in args})

    def build(node: ast.AST) -> Callable[[Mapping[str, Any]], Any]:
        if isinstance(node, ast.Expression):
            return build(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            value = float(node.value)
            return lambda p: value
        if isinstance(node, ast.Name):
            if node.id not in names:
                msg = f"formula {formula!r}: {node.id.replace('_arg', '@')!r} is not one of its arguments {list(args)}"
                raise ValueError(msg)
            key = names[node.id]
            return lambda p: p[key]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            op, left, right = (
                _BINOPS[type(node.op)],
                build(node.left),
                build(node.right),
            )
            return lambda p: op(left(p), right(p))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner, sign = (
                build(node.operand),
                -1.0 if isinstance(node.op, ast.USub) else 1.0,
            )
            return lambda p: sign * inner(p)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _FUNCS
            and not node.keywords
        ):
            fn, parts = _FUNCS[node.func.id], [build(a) for a in node.args]
            return lambda p: fn(*(q(p) for q in parts))
        msg = f"formula {formula!r}: {ast.dump(node)[:40]}... is not allowed (arithmetic and exp/log/sqrt/pow/abs/min/max only)"
        raise ValueError(msg)

    return build(tree)
