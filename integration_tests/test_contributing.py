"""CONTRIBUTING.md maps each Kustomer quirk to the code that handles it: every name it gives is in the code."""

from __future__ import annotations

import ast
import re

import yaml

from integration_tests.conftest import REPO

GUIDE = (REPO / "CONTRIBUTING.md").read_text()


def test_every_class_and_function_the_guide_names_is_in_the_module_it_names():
    defined = {}
    for module in (REPO / "source_kustomer").glob("*.py"):
        tree = ast.parse(module.read_text())
        defined[module.name] = {node.name for node in ast.walk(tree) if isinstance(node, (ast.ClassDef, ast.FunctionDef))}
    named = re.findall(r"`source_kustomer/(\w+\.py)` `(\w+)`", GUIDE)
    assert len(named) > 40
    assert [f"{module} {name}" for module, name in named if name not in defined.get(module, set())] == []


def test_every_manifest_definition_the_guide_names_exists():
    definitions = yaml.safe_load((REPO / "manifest.yaml").read_text())["definitions"]
    named = set(re.findall(r"`definitions\.(\w+)`", GUIDE))
    assert len(named) > 15
    assert named - set(definitions) == set()


def test_the_guide_lists_every_module_of_the_package():
    modules = {path.name for path in (REPO / "source_kustomer").glob("*.py")} - {"__init__.py"}
    assert {module for module in modules if f"source_kustomer/{module}" not in GUIDE} == set()
