"""The container recipe ships the connector the Airbyte way, checked without a Docker engine.

The Dockerfile builds on exactly the base image metadata.yaml declares, copies files that exist (and that
.dockerignore keeps in the build context), installs the project, and runs the ``source-kustomer`` console
script, which the platform also finds through AIRBYTE_ENTRYPOINT. That console script, run as the image
would run it, answers ``spec`` with a SPEC message and refuses a bad command with a non-zero exit. The
icon is a well-formed square SVG, and the README and the docs page show the ``docker run`` commands.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib.metadata
import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "Dockerfile"
CLI = shutil.which("source-kustomer") or str(Path(sys.executable).parent / "source-kustomer")
SVG = "{http://www.w3.org/2000/svg}"


def instructions() -> List[Tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments): comments dropped, continuation lines joined."""
    joined, pending = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    return [(parts[0].upper(), parts[1].strip() if len(parts) > 1 else "") for parts in (j.strip().split(None, 1) for j in joined)]


def arguments(instruction: str) -> List[str]:
    return [args for name, args in instructions() if name == instruction]


def env() -> Dict[str, str]:
    """Every ENV variable the Dockerfile sets (both the ``KEY=value`` and the legacy ``KEY value`` forms)."""
    variables: Dict[str, str] = {}
    for args in arguments("ENV"):
        words = shlex.split(args)
        if "=" in words[0]:
            variables.update(word.split("=", 1) for word in words)
        else:
            variables[words[0]] = " ".join(words[1:])
    return variables


def metadata() -> Dict:
    return yaml.safe_load((REPO / "metadata.yaml").read_text())["data"]


def pyproject() -> Dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def docker_commands(text: str) -> Dict[str, str]:
    """The ``docker build`` / ``docker run`` command lines in a text, by the connector command they run."""
    commands: Dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip().lstrip("#$ ").strip()
        if line.startswith("docker build "):
            commands["build"] = line
        match = re.match(r"docker run .*airbyte/source-kustomer:dev (spec|check|discover|read)\b", line)
        if match:
            commands[match.group(1)] = line
    return commands


def assert_documents_every_docker_command(text: str) -> None:
    commands = docker_commands(text)
    assert set(commands) >= {"build", "spec", "check", "discover", "read"}, f"found only {sorted(commands)}"
    assert "-t airbyte/source-kustomer:dev" in commands["build"]
    for command in ("check", "discover", "read"):
        assert "-v $(pwd)/secrets:/secrets" in commands[command], commands[command]
        assert "--config /secrets/config.json" in commands[command], commands[command]
    assert "--catalog /secrets/" in commands["read"], commands["read"]


# The image's entry point, run as a subprocess. Both runs start together (each pays the CDK's import
# and the manifest's validation, about 3 s of CPU) so that the module stays fast.
@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory) -> Dict[str, subprocess.CompletedProcess]:
    folder = tmp_path_factory.mktemp("cli")
    argv = {"spec": ["spec"], "unknown command": ["sync"], "no command": []}
    started = {
        name: subprocess.Popen([CLI, *args], cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, args in argv.items()
    }
    runs = {}
    for name, process in started.items():
        stdout, stderr = process.communicate(timeout=60)
        runs[name] = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    return runs


def messages(stdout: str) -> List[Dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def test_the_image_is_built_from_the_base_image_metadata_declares():
    (base,) = arguments("FROM")
    assert base == metadata()["connectorBuildOptions"]["baseImage"]
    assert base.startswith("docker.io/airbyte/python-connector-base:")


def test_the_image_runs_the_source_kustomer_command_and_tells_the_platform_so():
    (entrypoint,) = arguments("ENTRYPOINT")
    assert json.loads(entrypoint) == ["source-kustomer"]
    assert env()["AIRBYTE_ENTRYPOINT"] == "source-kustomer"
    assert "source-kustomer" in pyproject()["project"]["scripts"]
    assert arguments("WORKDIR")[-1] == "/airbyte/integration_code"


def test_the_image_labels_carry_the_repository_and_version_of_metadata():
    labels = dict(word.split("=", 1) for args in arguments("LABEL") for word in shlex.split(args))
    assert labels["io.airbyte.name"] == metadata()["dockerRepository"]
    assert labels["io.airbyte.version"] == metadata()["dockerImageTag"] == pyproject()["project"]["version"]


def test_every_file_the_image_copies_exists_and_stays_in_the_build_context():
    ignored = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines() if line.strip() and not line.startswith("#")]
    copied = []
    for args in arguments("COPY"):
        words = [word for word in shlex.split(args) if not word.startswith("--")]
        copied += words[:-1]  # the last word is the destination
    assert {"pyproject.toml", "README.md", "manifest.yaml", "source_kustomer"} <= set(copied)
    for source in copied:
        assert (REPO / source).exists(), f"the Dockerfile copies {source}, which is not in the repository"
        assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), f".dockerignore drops {source}"
    # What must never reach a build context: credentials, environments, history.
    assert {"secrets", ".venv", ".git", ".tools", ".bench", ".cache"} <= set(ignored)


def test_the_image_installs_the_project_it_copied():
    installs = [args for args in arguments("RUN") if re.search(r"\bpip install\b", args)]
    assert installs, "no RUN pip install"
    assert any(shlex.split(args)[-1] == "." for args in installs), installs
    # The copied manifest.yaml is the one the wheel carries (hatchling force-includes it).
    force_included = pyproject()["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert force_included == {"manifest.yaml": "source_kustomer/manifest.yaml"}


def test_the_files_the_image_copies_are_enough_to_build_the_wheel_it_installs(tmp_path, monkeypatch):
    from hatchling.build import build_wheel

    context = tmp_path / "integration_code"  # WORKDIR, filled as the COPY instructions fill it
    for args in arguments("COPY"):
        *sources, destination = [word for word in shlex.split(args) if not word.startswith("--")]
        for source in sources:
            if (REPO / source).is_dir():  # COPY of a folder copies its content
                shutil.copytree(REPO / source, context / destination, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                target = context / destination / source if destination.endswith("/") else context / destination
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(REPO / source, target)
    monkeypatch.chdir(context)

    wheel = zipfile.ZipFile(tmp_path / build_wheel(str(tmp_path)))

    assert wheel.read("source_kustomer/manifest.yaml") == (REPO / "manifest.yaml").read_bytes()
    assert {f"source_kustomer/{module.name}" for module in (REPO / "source_kustomer").glob("*.py")} <= set(wheel.namelist())
    entry_points = next(name for name in wheel.namelist() if name.endswith(".dist-info/entry_points.txt"))
    assert "source-kustomer = source_kustomer.run:run" in wheel.read(entry_points).decode()


def test_the_console_script_resolves_to_the_run_function():
    declared = pyproject()["project"]["scripts"]["source-kustomer"]
    assert declared == "source_kustomer.run:run"
    (installed,) = importlib.metadata.entry_points(group="console_scripts", name="source-kustomer")
    assert installed.value == declared
    module, function = declared.split(":")
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin
    tree = ast.parse(Path(spec.origin).read_text())
    assert function in {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert Path(CLI).is_file()


def test_the_command_answers_spec_with_a_spec_message(cli_runs):
    run = cli_runs["spec"]
    assert run.returncode == 0, run.stderr
    (spec,) = [m["spec"] for m in messages(run.stdout) if m["type"] == "SPEC"]
    assert spec["connectionSpecification"]["required"] == ["api_token"]
    assert "Traceback" not in run.stdout + run.stderr


def test_an_unknown_command_exits_non_zero_with_a_usage_message_not_a_traceback(cli_runs):
    run = cli_runs["unknown command"]
    assert run.returncode == 2
    assert run.stderr.startswith("usage: source-kustomer")
    assert "invalid choice: 'sync'" in run.stderr and "spec" in run.stderr and "read" in run.stderr
    assert "Traceback" not in run.stdout + run.stderr


def test_the_image_run_without_a_command_prints_its_usage(cli_runs):
    """`docker run airbyte/source-kustomer:dev` with no command."""
    run = cli_runs["no command"]
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.startswith("usage: source-kustomer {spec,check,discover,read}")



def test_the_icon_is_a_well_formed_square_svg_with_nothing_external():
    path = REPO / "icon.svg"
    assert path.stat().st_size < 10_000
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG}svg"
    x, y, width, height = (float(n) for n in root.attrib["viewBox"].replace(",", " ").split())
    assert (x, y) == (0, 0) and width == height > 0
    if "width" in root.attrib or "height" in root.attrib:
        assert root.attrib["width"] == root.attrib["height"]
    for element in root.iter():
        assert element.tag not in {f"{SVG}script", f"{SVG}image", f"{SVG}foreignObject"}, element.tag
        for name, value in element.attrib.items():
            if name.endswith("href"):
                assert value.startswith("#"), f"external reference {value}"
            assert "url(http" not in value.replace(" ", "")


def test_the_dockerfile_header_shows_every_docker_command():
    assert_documents_every_docker_command(DOCKERFILE.read_text())


@pytest.mark.parametrize("document", ["README.md", "docs/integrations/sources/kustomer.md"])
def test_the_docs_show_how_to_run_the_image_for_spec_check_discover_and_read(document):
    assert_documents_every_docker_command((REPO / document).read_text())
