"""The API reference (book/api/) covers the public API: every name of a documented package's ``__all__`` is
rendered by some autodoc directive, every method package has a section, and every page is in _toc.yml.

Read from the pages' ``{eval-rst}`` blocks, without building the book. A name counts as covered when a directive
names it (``autoclass``/``autofunction``/``autodata``/... of the object itself, at any module path) or when an
``automodule`` of its package with ``:members:`` selects it *and* autodoc will render it there: ``:undoc-members:``
is off, so a function or class needs its own docstring, and a constant needs a docstring after its assignment in
the package's own source (a constant imported from a sub-module has none there and needs a directive). A
sub-module listed in ``__all__`` needs its own ``automodule``.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
API = ROOT / "book" / "api"
# Packages that must be documented besides every method package; their pages may document more.
REQUIRED = ["pecft_lib.benchmarks", "pecft_lib.backbones", "pecft_lib.evaluation", "pecft_lib.training"]

DIRECTIVE = re.compile(r"^\.\. (auto\w+):: (\S+)\n((?:[ \t]+:[\w-]+:.*\n)*)", re.MULTILINE)
OPTION = re.compile(r"^[ \t]+:([\w-]+):[ \t]*(.*)$", re.MULTILINE)


def rst_blocks(text: str) -> list[str]:
    return [block + "\n" for block in re.findall(r"```\{eval-rst\}\n(.*?)```", text, re.DOTALL)]


def directives() -> list[tuple[str, str, dict[str, str], str]]:
    """(directive, target, options, page) of every autodoc directive of the API pages."""
    found = []
    for page in sorted(API.glob("*.md")):
        for block in rst_blocks(page.read_text()):
            for kind, target, options in DIRECTIVE.findall(block):
                found.append((kind, target, dict(OPTION.findall(options)), page.name))
    return found


def names(value: str) -> set[str]:
    return {name.strip() for name in value.split(",") if name.strip()}


def documented_constants(module) -> set[str]:
    """Module-level names assigned in ``module``'s own source and followed by a docstring (what autodoc finds)."""
    tree = ast.parse(inspect.getsource(module))
    body = tree.body
    found = set()
    for statement, following in zip(body, body[1:]):
        is_docstring = (isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
                        and isinstance(following.value.value, str))
        if not is_docstring:
            continue
        targets = statement.targets if isinstance(statement, ast.Assign) else (
            [statement.target] if isinstance(statement, ast.AnnAssign) else [])
        found |= {target.id for target in targets if isinstance(target, ast.Name)}
    return found


def has_own_docstring(obj) -> bool:
    doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else getattr(obj, "__doc__", None)
    # a dataclass without a docstring gets "Name(field: type, ...)" from the dataclass machinery
    return bool(doc) and not (inspect.isclass(obj) and doc.startswith(f"{obj.__name__}("))


def rendered_by_automodule(module, name: str) -> bool:
    obj = getattr(module, name)
    if inspect.ismodule(obj):
        return False
    if inspect.isclass(obj) or inspect.isroutine(obj):
        return has_own_docstring(obj)
    return name in documented_constants(module)


def resolve(target: str):
    """The object a directive's dotted target names."""
    parts = target.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            obj = getattr(obj, attribute)
        return obj
    raise ImportError(target)


def method_packages() -> list[str]:
    methods = importlib.import_module("pecft_lib.methods")
    return [f"pecft_lib.methods.{info.name}" for info in pkgutil.iter_modules(methods.__path__) if info.ispkg]


def uncovered(package: str, found) -> list[str]:
    module = importlib.import_module(package)
    automodules = [options for kind, target, options, _ in found if kind == "automodule" and target == package]
    explicit = [(target.rsplit(".", 1)[-1], resolve(target)) for kind, target, _, _ in found if kind != "automodule"]
    documented_modules = {target for kind, target, _, _ in found if kind == "automodule"}
    missing = []
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.ismodule(obj):
            if obj.__name__ not in documented_modules:
                missing.append(f"{package}.{name} (a module: needs `.. automodule:: {obj.__name__}`)")
            continue
        if any(name == other_name and obj is other for other_name, other in explicit):
            continue
        selected = any(
            "members" in options and (not options["members"] or name in names(options["members"]))
            and name not in names(options.get("exclude-members", ""))
            for options in automodules)
        if not (selected and rendered_by_automodule(module, name)):
            missing.append(f"{package}.{name}")
    return missing


@pytest.fixture(scope="module")
def found():
    return directives()


def test_pages_exist_and_use_autodoc(found):
    pages = {page for _, _, _, page in found}
    assert {"benchmarks.md", "backbones.md", "methods.md", "evaluation.md"} <= pages, pages


@pytest.mark.parametrize("target", sorted({target for _, target, _, _ in directives()}))
def test_directive_targets_import(target):
    resolve(target)


@pytest.mark.parametrize("package", REQUIRED + method_packages())
def test_package_is_documented(found, package):
    assert any(kind == "automodule" and target == package for kind, target, _, _ in found), (
        f"no `.. automodule:: {package}` in book/api/*.md")


def test_public_names_are_documented(found):
    packages = sorted({target for kind, target, _, _ in found
                       if kind == "automodule" and hasattr(importlib.import_module(target), "__all__")})
    missing = [name for package in packages for name in uncovered(package, found)]
    assert not missing, ("public names the API reference does not render (give them a docstring, or an "
                         "explicit autodoc directive): " + ", ".join(missing))


def toc_files(node) -> set[str]:
    """Every ``file:`` entry of a _toc.yml node, at any depth."""
    if isinstance(node, list):
        return set().union(*map(toc_files, node)) if node else set()
    if isinstance(node, dict):
        own = {node["file"].removesuffix(".md")} if "file" in node else set()
        return own.union(*(toc_files(node.get(key, [])) for key in ("parts", "chapters", "sections")))
    return set()


def test_every_api_page_is_in_the_toc():
    listed = toc_files(yaml.safe_load((ROOT / "_toc.yml").read_text()))
    pages = {f"book/api/{page.stem}" for page in API.glob("*.md")}
    assert pages - listed == set(), f"pages of book/api/ missing from _toc.yml: {sorted(pages - listed)}"
