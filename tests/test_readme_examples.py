"""The README's Python examples stay true to the library: every `python` block parses, its `pecft_lib` imports
exist, and each call of a library function (in the blocks and in the methods table) binds to the function's
signature and unpacks what the function returns (a record, or a `RunResult` / `(record, strategy)` pair)."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import typing
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"^```python\n(.*?)^```", README, re.MULTILINE | re.DOTALL)


def _table_examples() -> list[tuple[str, str]]:
    """(module, statement) for every `target = call(...)` in a row of the methods table."""
    examples = []
    for row in README.splitlines():
        module = re.search(r"`(pecft_lib\.methods\.\w+)`", row)
        if row.startswith("|") and module:
            examples += [(module[1], code) for code in re.findall(r"`([^`]+ = \w+\([^`]*\))`", row)]
    return examples


def _namespace(tree: ast.Module) -> dict[str, object]:
    """What the block's `pecft_lib` imports bind, imported for real."""
    names: dict[str, object] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pecft_lib"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                if hasattr(module, alias.name):
                    names[alias.asname or alias.name] = getattr(module, alias.name)
                else:  # a submodule: `from pecft_lib.methods import l2p`
                    names[alias.asname or alias.name] = importlib.import_module(f"{node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("pecft_lib"):
                    names[alias.asname or alias.name] = importlib.import_module(alias.name)
    return names


def _resolve(func: ast.expr, names: dict[str, object]) -> object | None:
    """The library object a call's function names (`f`, `module.f`, `Class.method`), or None if not ours."""
    if isinstance(func, ast.Name):
        return names.get(func.id)
    if isinstance(func, ast.Attribute):
        owner = _resolve(func.value, names)
        if owner is not None and (inspect.ismodule(owner) or inspect.isclass(owner)):
            assert hasattr(owner, func.attr), f"{ast.unparse(func)} does not exist"
            return getattr(owner, func.attr)
    return None


def _check_call(call: ast.Call, target: ast.expr | None, names: dict[str, object]) -> str | None:
    """Assert that ``call`` binds to its function and that ``target`` unpacks its result; its name if checked."""
    function = _resolve(call.func, names)
    if function is None or not callable(function) or not getattr(function, "__module__", "").startswith("pecft_lib"):
        return None
    signature = inspect.signature(function)
    args = [None for a in call.args if not isinstance(a, ast.Starred)]
    kwargs = {k.arg: None for k in call.keywords if k.arg is not None}
    try:
        signature.bind(*args, **kwargs)
    except TypeError as error:
        raise AssertionError(f"{ast.unparse(call)} does not match {function.__qualname__}{signature}: {error}")
    returns = str(signature.return_annotation)
    named = typing.get_type_hints(function).get("return")
    fields = getattr(named, "_fields", None)  # a NamedTuple such as RunResult unpacks into its fields
    if target is not None and not inspect.isclass(function):
        if isinstance(target, ast.Tuple):
            assert returns.startswith("tuple[") or fields, \
                f"{ast.unparse(target)} = {ast.unparse(call)}: it returns {returns}"
            arity = len(fields) if fields else len(ast.parse(returns, mode="eval").body.slice.elts)
            assert len(target.elts) == arity, f"{ast.unparse(target)} unpacks {returns}"
        else:
            assert not returns.startswith("tuple[") and not fields, \
                f"{ast.unparse(target)} = {ast.unparse(call)}: it returns a pair, {returns}"
    return function.__qualname__


def _check_statements(tree: ast.Module, names: dict[str, object]) -> list[str]:
    checked = []
    assigned = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Assign)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            checked.append(_check_call(node.value, node.targets[0], names))
        elif isinstance(node, ast.Call) and id(node) not in assigned:
            checked.append(_check_call(node, None, names))
    return [name for name in checked if name]


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 4 and len(_table_examples()) >= 6


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_a_python_block_matches_the_library(block):
    tree = ast.parse(block)
    checked = _check_statements(tree, _namespace(tree))
    assert checked, "the block calls no library function"


def test_the_methods_table_unpacks_what_the_runners_return():
    checked = []
    for module, statement in _table_examples():
        tree = ast.parse(statement)
        names = vars(importlib.import_module(module))
        checked += _check_statements(tree, names)
    assert {"run_l2p", "run_dualprompt", "run_coda_prompt", "run_inflora", "run_olora", "run_olora_generative",
            "run_baseline"} <= set(checked)


def test_the_readme_says_what_adding_a_method_touches():
    assert "pecft_lib/methods/registry.py" in README and "METHOD" in README


def test_the_readme_tells_where_downloads_go():
    assert "PECFT_CACHE" in README
