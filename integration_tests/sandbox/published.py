"""``source_kustomer.contract`` (Kustomer's published API contract), as the sandbox reads it.

The module is read from its file without running ``source_kustomer/__init__.py``, which imports the
Airbyte CDK: two seconds a sandbox process (the sandbox is standard library only) would spend for
nothing. When the package is already imported, its own module is used.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

_NAME = "source_kustomer.contract"


def _load() -> ModuleType:
    loaded = sys.modules.get(_NAME)
    if loaded is not None:
        return loaded
    spec = importlib.util.find_spec("source_kustomer")  # a top-level name: found, not imported
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("source_kustomer is not installed: the sandbox needs source_kustomer/contract.py")
    path = Path(list(spec.submodule_search_locations)[0]) / "contract.py"
    name = f"{__name__}.contract"
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    module_spec.loader.exec_module(module)
    return module


contract = _load()
