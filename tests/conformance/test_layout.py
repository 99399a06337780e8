"""The layout's rules, checked on every import statement of the three packages and bench/.

A reader finds their room by folder name only while dependencies point one way:
strategy -> model -> save -> read files -> compare -> report.
"""

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("conformance", "strategies", "reference_impl", "bench")


def _module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path):
    """Every module name an import statement of ``path`` names, relative ones resolved."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            out.append(base)
            out += [f"{base}.{alias.name}" for alias in node.names]
    return out


def _modules():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield _module_name(path), path


MODULES = dict(_modules())


def _within(name, prefix):
    return name == prefix or name.startswith(prefix + ".")


def _is_clause_module(name):
    return _within(name, "conformance.clauses") and name.rpartition(".")[2].startswith("test_")


def violations(name, imported):
    """The rules ``name`` breaks by importing ``imported`` (a list of reasons)."""
    found = []
    if _within(imported, "tests") or (_is_clause_module(imported) and imported != name):
        found.append("a library module imports a test module")
    if _within(imported, "conformance.plugin") and not _within(name, "conformance.plugin"):
        if not (_is_clause_module(name) and _within(imported, "conformance.plugin.drawing")):
            found.append("only the plugin imports the plugin (clause modules: its drawing)")
    if _within(imported, "conformance.tools") and not (
        _within(name, "conformance.tools") or name == "conformance.__main__"
    ):
        found.append("the tools are imported only by the command line")
    if _within(name, "strategies") and _within(imported, "conformance"):
        found.append("strategies does not import conformance")
    if _within(name, "reference_impl") and (
        _within(imported, "conformance") or _within(imported, "strategies")
    ):
        found.append("reference_impl imports neither conformance nor strategies")
    pair = {name, imported}
    if pair == {"strategies.generate", "strategies.coverage"}:
        found.append("strategies.generate and strategies.coverage do not import each other")
    return found


def test_the_walk_sees_every_package():
    assert {name.split(".")[0] for name in MODULES} == set(PACKAGES)
    assert "conformance.plugin" in MODULES and "conformance.clauses.test_calls" in MODULES


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_follow_the_layout(name):
    broken = [
        f"{name} imports {imported}: {reason}"
        for imported in _imports(MODULES[name])
        for reason in violations(name, imported)
    ]
    assert not broken, "\n".join(broken)


def test_no_module_shadows_the_standard_library():
    shadowing = sorted(
        name for name in MODULES if name.rpartition(".")[2] in sys.stdlib_module_names
    )
    assert not shadowing, f"modules named like standard-library ones: {shadowing}"


def test_clauses_holds_clause_modules_only():
    folder = ROOT / "conformance" / "clauses"
    extra = sorted(
        p.name
        for p in folder.glob("*.py")
        if p.name != "__init__.py" and not p.name.startswith("test_")
    )
    assert not extra, f"conformance/clauses/ holds non-clause modules: {extra}"


@pytest.mark.parametrize(
    "name, imported",
    [
        ("conformance.consumers", "conformance.clauses.test_signatures"),
        ("conformance.clauses.test_calls", "conformance.clauses.test_signatures"),
        ("conformance.corpus", "conformance.plugin"),
        ("conformance.clauses.test_calls", "conformance.plugin.example"),
        ("conformance.consumers", "conformance.tools.matrix"),
        ("strategies.build", "conformance.environment"),
        ("strategies.generate", "strategies.coverage"),
        ("reference_impl.save", "strategies"),
        ("bench.common", "tests.conformance.planted"),
    ],
)
def test_each_rule_catches_its_violation(name, imported):
    assert violations(name, imported)


@pytest.mark.parametrize(
    "name, imported",
    [
        ("conformance.clauses.test_calls", "conformance.plugin.drawing"),
        ("conformance.plugin.example", "conformance.savedmodel.tree"),
        ("conformance.__main__", "conformance.tools.matrix"),
        ("strategies.coverage", "strategies"),
        ("conformance.clauses.test_calls", "conformance.clauses.test_calls"),
    ],
)
def test_allowed_imports_pass(name, imported):
    assert violations(name, imported) == []


def test_relative_imports_are_resolved():
    found = _imports(ROOT / "strategies" / "build.py")
    assert "strategies.catalog" in found and "strategies.spec" in found
