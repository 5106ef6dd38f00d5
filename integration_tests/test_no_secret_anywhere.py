"""No API key in any output of any runtime: every line a user, a platform or a log file could see.

Each runtime runs with a good key pasted with spaces and a newline around it (as keys often are; the
connector sends it trimmed), with a key Kustomer rejects, and through faults (a sandbox whose answers
number 2, 3, 5, 7, 9, 11 and 12 fail: 5xx, a reset, a garbled page, a 429, an HTML error page, a body
that is not JSON), at debug level where the runtime has one:

- the package's CLI: ``source-kustomer check`` and ``read --debug`` through faults, ``check`` and
  ``read`` with the rejected key;
- the CDK's ``source-declarative-manifest --manifest-path manifest.yaml --debug``: the same, and
  ``discover``;
- the Connector Builder's handler (``python -m airbyte_cdk.connector_builder.main``):
  ``resolve_manifest``, ``full_resolve_manifest`` with the rejected key, ``test_read`` with each key
  and through faults (its answer carries every request and response of the read, headers included;
  the CDK quotes the whole config when a read fails);
- the Builder's backend as Airbyte now runs it, the CDK's manifest server (``resolve``, ``check``,
  ``discover``, ``full_resolve``, ``test_read``), in a virtualenv with only
  ``airbyte-cdk[manifest-server]`` and the uploaded bundle (``make builder-bundle``): this package is
  not installed there;
- PyAirbyte: ``get_source(..., source_manifest=...)`` (the connector inside PyAirbyte's process)
  checks and reads into DuckDB; with the rejected key, ``check`` with ``source_manifest`` and with
  ``local_executable``, its error printed as a notebook shows it. What it prints, and every log file
  it writes.

Each output (stdout and stderr whole, every message: RECORD, LOG, TRACE, CONTROL, the Builder's
answers, PyAirbyte's exceptions and log files) is searched for each key and for two distinctive pieces
of each (a key cut short or wrapped is still a leak).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest
import yaml

from integration_tests.conftest import CLI, FAST_CLOCK, FAST_CLOCK_SCALE, REPO, catalog_for
from integration_tests.fresh_cdk import fresh_cdk_python, isolated_env
from integration_tests.sandbox import ALL_ROLES, DEFAULT_TOKENS, FAST_KUSTOMER_LIMITS, Sandbox

#: A key the sandbox grants every role, and one it has never issued (Kustomer answers 401).
GOOD = "kst1.Pr0beGoodKey7Qx2LmN9vW4.zK8sT3aG5hY0uE6c"
REJECTED = "kst1.Pr0beBadKey4Hf8DpZ2qV7wB.5nM0tL3xS9kJ6y"
#: What no output may hold: each key whole, and a piece of each found nowhere else.
SECRETS = [GOOD, REJECTED, *(key.split(".")[1] for key in (GOOD, REJECTED)), *(key.split(".")[2] for key in (GOOD, REJECTED))]
#: As a key is often pasted: the connector sends it trimmed.
PASTED = f"  {GOOD}\n"

SDM = str(Path(sys.executable).parent / "source-declarative-manifest")
MANIFEST = REPO / "manifest.yaml"
#: The answers of a faulty sandbox that fail, by request number: each read through faults meets them all.
FAULTS = {"fault_at": {2: "503", 3: "reset", 5: "malformed", 7: "429", 9: "502-html", 11: "not-json", 12: "500"}, "fault_reset_s": 0.3}
READ_STREAMS = ["users", "conversations"]
BUILDER_LIMITS = {"max_records": 50, "max_pages_per_slice": 3, "max_slices": 3}


@dataclass
class Output:
    """What one command let anyone see: its stdout, its stderr, and any file it wrote (PyAirbyte's logs)."""

    label: str
    returncode: int
    stdout: str
    stderr: str
    files: Dict[str, str]

    @property
    def messages(self) -> List[Dict[str, Any]]:
        found = []
        for line in self.stdout.splitlines():
            try:
                found.append(json.loads(line)) if line.startswith("{") else None
            except ValueError:
                pass
        return found

    def leaks(self) -> List[str]:
        """Where a key (or a piece of one) shows, with the key itself left out of the report."""
        found = []
        for where, text in [("stdout", self.stdout), ("stderr", self.stderr), *self.files.items()]:
            for secret in SECRETS:
                at = text.find(secret)
                if at >= 0:
                    context = text[max(0, at - 160):at + len(secret) + 40].replace(secret, "<KEY>")
                    found.append(f"{self.label}, {where}: ...{context}...")
        return found


def _write(folder: Path, name: str, content: Any) -> str:
    path = folder / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def _run(label: str, argv: List[str], folder: Path, env: Optional[Dict[str, str]] = None, files_under: Optional[Path] = None) -> Output:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900, cwd=folder, env=env)
    files = {}
    if files_under is not None:
        files = {str(p.relative_to(files_under)): p.read_text(errors="replace") for p in sorted(files_under.rglob("*")) if p.is_file()}
    return Output(label, done.returncode, done.stdout, done.stderr, files)


TOKENS = {**DEFAULT_TOKENS, GOOD: {"roles": ALL_ROLES, "name": "Sandbox: the probe key"}}


@dataclass
class Org:
    """The calm sandbox every runtime reads; a read through faults gets a faulty one of its own
    (``faulty()``), so that its requests meet every fault of ``FAULTS``."""

    calm: Sandbox

    def config(self, token: str, sandbox: Optional[Sandbox] = None) -> Dict[str, Any]:
        return {"api_token": token, "api_url": (sandbox or self.calm).url, "page_size": 20}

    @staticmethod
    def faulty() -> Sandbox:
        return Sandbox(records=120, seed=3, tokens=TOKENS, **FAST_KUSTOMER_LIMITS, **FAULTS)


@pytest.fixture(scope="module")
def org() -> Iterator[Org]:
    with Sandbox(records=120, seed=3, tokens=TOKENS, **FAST_KUSTOMER_LIMITS) as calm:
        yield Org(calm)


def _fast_clock_env(base: Dict[str, str]) -> Dict[str, str]:
    return {**base, "PYTHONPATH": os.pathsep.join(filter(None, [str(FAST_CLOCK), base.get("PYTHONPATH")])),
            "SOURCE_KUSTOMER_SLEEP_SCALE": str(FAST_CLOCK_SCALE)}


def _protocol_runs(org: Org, tmp: Callable[[str], Path], name: str, executable: List[str], extra: List[str],
                   env: Dict[str, str], discover: bool = True) -> List[Callable[[], Output]]:
    """check and discover at debug level with the pasted key, a read with it through faults (retries,
    backoffs, errors), check and read with a rejected key: one runtime of the Airbyte protocol (the CLI or
    source-declarative-manifest)."""

    def command(label: str, verb: str, token: str, faulty: bool = False, streams: Optional[List[str]] = None) -> Callable[[], Output]:
        def go() -> Output:
            folder = tmp(f"{name}-{label}")
            with (org.faulty() if faulty else nullcontext()) as sandbox:
                argv = [*executable, verb, "--debug", "--config", _write(folder, "config.json", org.config(token, sandbox))]
                if streams:
                    argv += ["--catalog", _write(folder, "catalog.json", catalog_for(streams))]
                return _run(f"{name} {label}", argv + extra, folder, _fast_clock_env(env) if faulty else env)
        return go

    return [
        command("check", "check", PASTED),
        *([command("discover", "discover", PASTED)] if discover else []),
        command("check rejected", "check", REJECTED),
        command("read rejected", "read", REJECTED, streams=["users"]),
        command("read through faults", "read", PASTED, faulty=True, streams=READ_STREAMS),
    ]


def _builder_runs(org: Org, tmp: Callable[[str], Path]) -> List[Callable[[], Output]]:
    """The Builder's handler, one process per request, the manifest as shipped (classes from the package)."""
    manifest = yaml.safe_load(MANIFEST.read_text())

    def request(label: str, command: str, token: str, stream: Optional[str] = None, faulty: bool = False) -> Callable[[], Output]:
        def go() -> Output:
            folder = tmp(f"builder-{label}")
            with (org.faulty() if faulty else nullcontext()) as sandbox:
                config = {**org.config(token, sandbox), "__command": command, "__injected_declarative_manifest": manifest,
                          "__test_read_config": BUILDER_LIMITS}
                catalog = catalog_for([stream]) if stream else {"streams": []}
                argv = [sys.executable, "-m", "airbyte_cdk.connector_builder.main", "read",
                        "--config", _write(folder, "config.json", config), "--catalog", _write(folder, "catalog.json", catalog)]
                output = _run(f"builder {label}", argv, folder, {**os.environ, "AIRBYTE_ENABLE_UNSAFE_CODE": "true"})
                if sandbox is not None:
                    assert sandbox.counters["requests"] >= 2 and sum(v for k, v in sandbox.counters.items() if k.startswith("fault:"))
                return output
        return go

    return [
        request("resolve_manifest", "resolve_manifest", PASTED),
        request("full_resolve_manifest rejected", "full_resolve_manifest", REJECTED),
        request("test_read", "test_read", PASTED, "users"),
        request("test_read rejected", "test_read", REJECTED, "users"),
        request("test_read through faults", "test_read", PASTED, "conversations", faulty=True),
    ]


# The manifest server's own route functions, called as its HTTP layer calls them; each answer (or the
# HTTP error it raises) printed as one JSON line.
MANIFEST_SERVER = textwrap.dedent('''
    import json, sys
    from fastapi import HTTPException
    from airbyte_cdk.manifest_server.api_models import (
        CheckRequest, DiscoverRequest, FullResolveRequest, ResolveRequest, StreamTestReadRequest)
    from airbyte_cdk.manifest_server.routers import manifest as routes

    calls = json.load(open(sys.argv[1]))
    for call in calls:
        name, route, request = call["name"], getattr(routes, call["route"]), call["request"]
        model = {"check": CheckRequest, "discover": DiscoverRequest, "full_resolve": FullResolveRequest,
                 "resolve": ResolveRequest, "test_read": StreamTestReadRequest}[call["route"]]
        try:
            answer = route(model(**request))
            print(json.dumps({"name": name, "answer": json.loads(answer.model_dump_json())}), flush=True)
        except HTTPException as error:
            print(json.dumps({"name": name, "status": error.status_code, "detail": error.detail}), flush=True)
''')


def _manifest_server_run(org: Org, tmp: Callable[[str], Path], python: Path, bundle: Path) -> Callable[[], Output]:
    def go() -> Output:
        with org.faulty() as faulty:
            return serve(faulty)

    def serve(faulty: Sandbox) -> Output:
        folder = tmp("manifest-server")
        manifest = yaml.safe_load((bundle / "manifest.yaml").read_text())
        components = (bundle / "components.py").read_text()

        def config(token: str) -> Dict[str, Any]:
            # The Builder sends the uploaded components with the config (check, discover) or beside it (test_read).
            import hashlib

            return {**org.config(token), "__injected_components_py": components,
                    "__injected_components_py_checksums": {"md5": hashlib.md5(components.encode()).hexdigest()}}

        read = {"manifest": manifest, "stream_name": "users", "custom_components_code": components, "page_limit": 3, "slice_limit": 3,
                "record_limit": 50}
        calls = [
            {"name": "resolve", "route": "resolve", "request": {"manifest": manifest}},
            {"name": "check", "route": "check", "request": {"manifest": manifest, "config": config(PASTED)}},
            {"name": "check rejected", "route": "check", "request": {"manifest": manifest, "config": config(REJECTED)}},
            {"name": "discover", "route": "discover", "request": {"manifest": manifest, "config": config(PASTED)}},
            {"name": "discover rejected", "route": "discover", "request": {"manifest": manifest, "config": config(REJECTED)}},
            {"name": "full_resolve rejected", "route": "full_resolve", "request": {"manifest": manifest, "config": config(REJECTED)}},
            {"name": "test_read", "route": "test_read", "request": {**read, "config": org.config(PASTED)}},
            {"name": "test_read rejected", "route": "test_read", "request": {**read, "config": org.config(REJECTED)}},
            {"name": "test_read through faults", "route": "test_read",
             "request": {**read, "stream_name": "conversations", "config": org.config(PASTED, faulty)}},
        ]
        argv = [str(python), _write(folder, "serve.py", MANIFEST_SERVER), _write(folder, "calls.json", calls)]
        return _run("manifest server", argv, folder, isolated_env(AIRBYTE_ENABLE_UNSAFE_CODE="true"))
    return go


# PyAirbyte as a notebook runs it, the connector inside PyAirbyte's process (source_manifest): check and
# a read into DuckDB with the pasted key; then each way in with a rejected key (check, whose error is
# printed as a user sees it; local_executable runs the CLI, whose own outputs are scanned above).
PYAIRBYTE = textwrap.dedent('''
    import json, sys
    from pathlib import Path
    import airbyte as ab
    from airbyte.caches import DuckDBCache

    settings = json.load(open(sys.argv[1]))
    source = ab.get_source("source-kustomer", config=settings["good"], streams=["users"], source_manifest=Path(settings["manifest"]))
    source.check()
    result = source.read(cache=DuckDBCache(db_path="notebook.duckdb", schema_name="kustomer"))
    print(json.dumps({"users": len(result["users"].to_pandas())}), flush=True)
    ways = {"local_executable": {"local_executable": settings["cli"]}, "source_manifest": {"source_manifest": Path(settings["manifest"])}}
    for way, how in ways.items():
        try:
            ab.get_source("source-kustomer", config=settings["rejected"], **how).check()
            print(json.dumps({"way": way, "rejected": "accepted"}), flush=True)
        except Exception as error:
            print(f"{way} rejected: {type(error).__name__}: {error}", flush=True)
            print(repr(error), flush=True)
''')


def _pyairbyte_run(org: Org, tmp: Callable[[str], Path]) -> Callable[[], Output]:
    def go() -> Output:
        folder = tmp("pyairbyte")
        logs = folder / "logs"
        settings = {"cli": CLI, "manifest": str(MANIFEST), "good": org.config(PASTED), "rejected": org.config(REJECTED)}
        env = {**os.environ, "AIRBYTE_OFFLINE_MODE": "1", "DO_NOT_TRACK": "1", "AIRBYTE_LOGGING_ROOT": str(logs),
               "AIRBYTE_ENABLE_UNSAFE_CODE": "true"}
        argv = [sys.executable, _write(folder, "notebook.py", PYAIRBYTE), _write(folder, "settings.json", settings)]
        return _run("pyairbyte", argv, folder, env, files_under=logs)
    return go


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """``make builder-bundle``'s recipe, into a folder of the test's own."""
    out = tmp_path_factory.mktemp("builder-bundle")
    subprocess.run([sys.executable, "-m", "scripts.builder_bundle", "--out", str(out)], cwd=REPO, check=True, capture_output=True, timeout=120)
    return out


@pytest.fixture(scope="session")
def manifest_server_python(tmp_path_factory) -> Path:
    folder = tmp_path_factory.getbasetemp() / "fresh-cdk"
    folder.mkdir(exist_ok=True)
    return fresh_cdk_python(folder, extras="manifest-server")


@pytest.fixture(scope="module")
def outputs(org, bundle, manifest_server_python, tmp_path_factory) -> Dict[str, List[Output]]:
    """Every command of every runtime, a few at a time (each process spends seconds importing the CDK)."""
    tmp = lambda label: tmp_path_factory.mktemp(label.replace(" ", "-"))  # noqa: E731
    unsafe = {**os.environ, "AIRBYTE_ENABLE_UNSAFE_CODE": "true"}
    runtimes: Dict[str, List[Callable[[], Output]]] = {
        # (the CLI's discover requests what its check and read request: SDM's discover stands for both)
        "cli": _protocol_runs(org, tmp, "cli", [CLI], [], dict(os.environ), discover=False),
        "source-declarative-manifest": _protocol_runs(org, tmp, "sdm", [SDM], ["--manifest-path", str(MANIFEST)], unsafe),
        "builder": _builder_runs(org, tmp),
        "manifest-server": [_manifest_server_run(org, tmp, manifest_server_python, bundle)],
        "pyairbyte": [_pyairbyte_run(org, tmp)],
    }
    jobs = [(name, job) for name, jobs in runtimes.items() for job in jobs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        done = list(pool.map(lambda item: (item[0], item[1]()), sorted(jobs, key=lambda item: item[0] not in ("pyairbyte", "manifest-server"))))
    found: Dict[str, List[Output]] = {name: [] for name in runtimes}
    for name, output in done:
        found[name].append(output)
    return found


def _one(outputs: List[Output], label: str) -> Output:
    [output] = [o for o in outputs if o.label == label]
    return output


def _status(output: Output) -> Dict[str, Any]:
    return [m for m in output.messages if m["type"] == "CONNECTION_STATUS"][-1]["connectionStatus"]


@pytest.mark.parametrize("name,executable", [("cli", "cli"), ("source-declarative-manifest", "sdm")])
def test_no_output_of_the_protocol_runtimes_holds_the_key(outputs, name, executable):
    runs = outputs[name]
    leaks = [leak for run in runs for leak in run.leaks()]

    assert not leaks, "\n".join(leaks)
    # What was scanned is what each command is for: requests logged with their (masked) headers, records,
    # the rejected key's explanation, and a read through faults that retried and still finished.
    assert _status(_one(runs, f"{executable} check"))["status"] == "SUCCEEDED"
    rejected = _status(_one(runs, f"{executable} check rejected"))
    assert rejected["status"] == "FAILED" and "Kustomer rejected the API key" in rejected["message"]
    assert _one(runs, f"{executable} read rejected").returncode != 0
    faulty = _one(runs, f"{executable} read through faults")
    assert faulty.returncode == 0 and any(m["type"] == "RECORD" for m in faulty.messages)
    assert "'Authorization': 'Bearer ****'" in faulty.stdout  # each request logged with its headers
    assert "Retrying in" in faulty.stdout


def test_no_answer_of_the_builder_handler_holds_the_key(outputs, org):
    runs = outputs["builder"]
    leaks = [leak for run in runs for leak in run.leaks()]

    assert not leaks, "\n".join(leaks)
    read = _one(runs, "builder test_read").messages[-1]
    assert read["type"] == "RECORD" and read["record"]["data"]["slices"][0]["pages"]
    assert read["record"]["data"]["slices"][0]["pages"][0]["request"]["headers"]["Authorization"] == "Bearer ****"
    rejected = _one(runs, "builder test_read rejected").messages[-1]
    assert rejected["type"] == "TRACE" and "Kustomer rejected the API key" in rejected["trace"]["error"]["message"]
    assert _one(runs, "builder full_resolve_manifest rejected").messages[-1]["type"] == "TRACE"
    assert _one(runs, "builder resolve_manifest").messages[-1]["type"] == "RECORD"


def test_no_answer_of_the_manifest_server_holds_the_key(outputs):
    [server] = outputs["manifest-server"]
    answers = {m["name"]: m for m in server.messages if "name" in m}

    assert not server.leaks(), "\n".join(server.leaks())
    assert server.returncode == 0, server.stderr[-3000:]
    assert answers["check"]["answer"]["success"] is True
    assert answers["check rejected"]["answer"]["success"] is False
    assert "Kustomer rejected the API key" in answers["check rejected"]["answer"]["message"]
    assert answers["discover"]["answer"]["catalog"]["streams"]
    assert "Kustomer rejected the API key" in answers["test_read rejected"]["detail"]
    pages = [page for s in answers["test_read"]["answer"]["slices"] for page in s["pages"]]
    assert pages and all(page["request"]["headers"]["Authorization"] == "Bearer ****" for page in pages)


def test_no_output_or_log_file_of_pyairbyte_holds_the_key(outputs):
    [notebook] = outputs["pyairbyte"]

    assert not notebook.leaks(), "\n".join(notebook.leaks())
    assert notebook.returncode == 0, notebook.stderr[-3000:]
    assert [m["users"] > 0 for m in notebook.messages if "users" in m] == [True]
    assert not [m for m in notebook.messages if "rejected" in m]
    assert "local_executable rejected:" in notebook.stdout and "source_manifest rejected:" in notebook.stdout
    assert notebook.files  # its log files were read too
