"""A non-editable install works on its own: the wheel carries the manifest, the console script runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # PEP 517 build through hatchling, the project's build backend (the locked venv has no pip).
    build = "import os, sys; from hatchling.build import build_wheel; os.chdir(sys.argv[1]); print(build_wheel(sys.argv[2]))"
    subprocess.run([sys.executable, "-c", build, str(REPO), str(out)], check=True, capture_output=True)
    return next(out.glob("airbyte_source_kustomer-*.whl"))


def test_the_wheel_ships_the_manifest_and_the_entry_point(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "source_kustomer/manifest.yaml" in names
    assert {f"source_kustomer/{module.name}" for module in (REPO / "source_kustomer").glob("*.py")} <= set(names)  # every component module
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "source-kustomer = source_kustomer.run:run" in zipfile.ZipFile(wheel).read(entry_points).decode()
    packaged = zipfile.ZipFile(wheel).read("source_kustomer/manifest.yaml").decode()
    assert packaged == (REPO / "manifest.yaml").read_text()


def test_the_installed_package_runs_from_anywhere_without_the_repository(wheel, tmp_path):
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)  # a pure-Python wheel installs by unpacking
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = "import source_kustomer, sys; from source_kustomer.run import run; sys.argv = ['source-kustomer', 'spec']; run()"

    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True)

    spec = next(json.loads(line) for line in result.stdout.splitlines() if '"SPEC"' in line)
    properties = spec["spec"]["connectionSpecification"]["properties"]
    assert set(properties) == {"api_token", "org_name", "region", "start_date", "page_size", "lookback_window", "include_deleted",
                               "requests_per_minute", "rate_limit_share", "num_workers", "api_url"}
    located = subprocess.run(
        [sys.executable, "-c", "from source_kustomer.source import manifest_path; print(manifest_path())"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert located.startswith(str(target))
