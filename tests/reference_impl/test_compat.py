"""The reference uses private TensorFlow and Keras APIs through ``reference_impl._compat`` only.

Read from the source (nothing is imported), so a new private import elsewhere is named here.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "reference_impl"
PRIVATE_MODULES = ("tensorflow.python", "keras.src", "tf_keras.src")


def _private_uses(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        elif isinstance(node, ast.Attribute) and node.attr == "__internal__":
            names = ["tf.__internal__"]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            # A module path handed to Keras (a class lookup), not prose that names one.
            names = [node.value] if " " not in node.value else []
        else:
            continue
        found += [
            f"{path.name}:{node.lineno}: {name}"
            for name in names
            if name == "tf.__internal__" or name.startswith(PRIVATE_MODULES)
        ]
    return found


def test_private_apis_only_in_compat():
    others = [path for path in sorted(PACKAGE.glob("*.py")) if path.name != "_compat.py"]
    assert len(others) >= 10
    assert [use for path in others for use in _private_uses(path)] == []


def test_compat_says_why_for_each_private_import():
    source = (PACKAGE / "_compat.py").read_text().splitlines()
    tree = ast.parse("\n".join(source))
    imports = [
        node
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PRIVATE_MODULES)
    ]
    assert imports
    for node in imports:
        assert source[node.lineno - 2].startswith("# "), f"no reason above line {node.lineno}"
