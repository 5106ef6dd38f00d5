"""A virtualenv holding only ``airbyte-cdk`` (the version uv.lock pins), as a user outside this repository
has it: no source_kustomer, no PyAirbyte, nothing from this checkout.

``fresh_cdk_python(folder)`` makes one with ``.tools/bin/uv`` (``uv venv`` + ``uv pip install
airbyte-cdk==<pinned>``; uv's cache makes that a few seconds) and returns its python; a second call in
the same process returns the same one, so a session fixture of every module that needs it shares it.
``extras="manifest-server"`` adds the CDK's manifest server (the Connector Builder's backend).

Commands run in it with ``isolated_env()`` and a working directory outside the repository (``python -m``
puts the working directory first on sys.path): ``absent(python, "source_kustomer")`` proves the
package cannot be imported there.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Dict

REPO = Path(__file__).resolve().parent.parent
UV = REPO / ".tools" / "bin" / "uv"


def pinned_cdk_version() -> str:
    """The airbyte-cdk version uv.lock pins (what the package runs on)."""
    found = re.search(r'\[\[package\]\]\nname = "airbyte-cdk"\nversion = "([^"]+)"', (REPO / "uv.lock").read_text())
    if not found:
        raise AssertionError("uv.lock pins no airbyte-cdk")
    return found.group(1)


_made: Dict[str, Path] = {}
_lock = threading.Lock()


def isolated_env(**extra: str) -> Dict[str, str]:
    """The environment for a command of the fresh venv: nothing that points at this checkout or its venv."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "AIRBYTE_ENABLE_UNSAFE_CODE", "SOURCE_KUSTOMER_SLEEP_SCALE")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(str(REPO)))
    env.update(extra)
    return env


def fresh_cdk_python(folder: Path, extras: str = "") -> Path:
    """The python of a new virtualenv in ``folder`` with only ``airbyte-cdk[extras]==<pinned>`` installed
    (made once per process and ``extras``)."""
    with _lock:
        if extras in _made:
            return _made[extras]
        venv = folder / f"cdk-{pinned_cdk_version()}{'-' + extras if extras else ''}"
        env = {**isolated_env(), "UV_PYTHON_DOWNLOADS": "never"}
        requirement = f"airbyte-cdk{f'[{extras}]' if extras else ''}=={pinned_cdk_version()}"
        subprocess.run([str(UV), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True, env=env, cwd=folder,
                       capture_output=True, timeout=300)
        python = venv / "bin" / "python"
        done = subprocess.run([str(UV), "pip", "install", "--quiet", "--python", str(python), requirement], env=env, cwd=folder,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"uv pip install {requirement} failed: {done.stderr[-2000:]}"
        _made[extras] = python
        return python


def absent(python: Path, module: str, cwd: Path) -> bool:
    """Whether ``module`` cannot be imported by ``python`` run from ``cwd`` with ``isolated_env()``."""
    done = subprocess.run([str(python), "-c", f"import {module}"], cwd=cwd, env=isolated_env(), capture_output=True, text=True, timeout=120)
    return done.returncode != 0 and "ModuleNotFoundError" in done.stderr
