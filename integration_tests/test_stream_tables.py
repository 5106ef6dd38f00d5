"""One place to add a stream: the manifest entry and its schema, and every table beside the manifest
either derived from it (unit_tests/manifest_streams.py) or checked against it here, with a message
that says what to add. The last test follows README.md's "Add a stream" steps for a throw-away
stream, through the CDK's own ``source-declarative-manifest`` on the edited manifest."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

from integration_tests.conftest import REPO, TOKEN, assert_no_secret, catalog_for, ground_truth
from unit_tests.manifest_streams import DOCS_PAGE, README, load, reads_table, table_problems

SDM = str(Path(sys.executable).parent / "source-declarative-manifest")
NEW = "throwaway_teams"  # a stream of the list family on an endpoint the sandbox serves


def test_every_table_beside_the_manifest_names_its_streams(sandbox):
    problems = table_problems(serves=sandbox.api.serves)

    assert problems == [], "\n".join(problems)


def test_the_readme_says_how_to_add_a_stream_in_the_steps_this_file_follows():
    readme = (REPO / README).read_text()
    section = readme[readme.index("### Add a stream"):]
    section = section[: section.index("\n## ") if "\n## " in section else len(section)]
    for place in ("streams:", "schemas:", "reads", "Roles per stream", "source_kustomer/contract.py",
                  "integration_tests/sandbox/api.py", "stream tables", "unit_tests/manifest_streams.py"):
        assert place in section, place
    families = {name for name in re.findall(r"`(\w+_stream)`", section)}
    assert families == {s.family for s in load().values() if s.family}, "the README names every family a stream can $ref"


# --- a throw-away stream, added as README.md says ----------------------------------------------------


def _edit(path: Path, after: str, insert: str) -> None:
    """Puts ``insert`` on the line after the first line of ``path`` that contains ``after``."""
    lines = path.read_text().split("\n")
    at = next(n for n, line in enumerate(lines) if after in line)
    path.write_text("\n".join(lines[: at + 1] + insert.split("\n") + lines[at + 1:]))


def _copy(root: Path) -> None:
    for name in ("manifest.yaml", README, DOCS_PAGE):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, root / name)


def _step_1_and_2_manifest_entry_and_schema(root: Path) -> None:
    manifest = root / "manifest.yaml"
    _edit(manifest, "schema_loader: {type: InlineSchemaLoader, schema: \"#/schemas/teams\"}",
          f'  - $ref: "#/definitions/list_stream"\n'
          f"    $parameters: {{name: {NEW}, endpoint: teams, max_page_size: 500}}\n"
          f'    schema_loader: {{type: InlineSchemaLoader, schema: "#/schemas/{NEW}"}}')
    text = manifest.read_text()
    teams_schema = re.search(r"\n  teams:\n((?:    .*\n)+)", text[text.index("\nschemas:"):]).group(1)
    _edit(manifest, "\nschemas:".strip(), f"  {NEW}:\n{teams_schema.rstrip()}")


def _step_3_roles(root: Path) -> None:
    manifest = root / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("GET /v1/teams: [teams, team_members]", f"GET /v1/teams: [teams, team_members, {NEW}]"))
    docs = root / DOCS_PAGE
    docs.write_text(docs.read_text().replace("| `GET /v1/teams` | `teams`, `team_members` |", f"| `GET /v1/teams` | `teams`, `team_members`, `{NEW}` |"))


def _step_4_rows(root: Path) -> None:
    row = f"| `{NEW}` | `GET /v1/teams` | full refresh, incremental (client-side) | `updated_at` | `id` |"
    for document in (README, DOCS_PAGE):
        _edit(root / document, "| `teams` | `GET /v1/teams` |", row)


def _declarative_manifest(command: str, root: Path, config: Dict[str, Any], streams: List[str] = ()) -> List[Dict[str, Any]]:
    """``source-declarative-manifest <command>`` on the manifest in ``root``: the CDK runs the edited manifest
    itself (its classes from the installed package), as it runs any manifest-only connector."""
    (root / "config.json").write_text(json.dumps(config))
    argv = [SDM, command, "--config", str(root / "config.json"), "--manifest-path", str(root / "manifest.yaml")]
    if streams:
        (root / "catalog.json").write_text(json.dumps(catalog_for(streams)))
        argv += ["--catalog", str(root / "catalog.json")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env={**os.environ, "AIRBYTE_ENABLE_UNSAFE_CODE": "true"})
    assert_no_secret(done.stdout + done.stderr, config)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_a_stream_added_as_the_readme_says_is_checked_at_each_step_then_discovered_and_read(tmp_path, sandbox):
    _copy(tmp_path)
    _step_1_and_2_manifest_entry_and_schema(tmp_path)

    assert set(load((tmp_path / "manifest.yaml").read_text())) == set(load()) | {NEW}
    assert table_problems(tmp_path, serves=sandbox.api.serves) == [
        f"{README}: add a row for `{NEW}` to the stream table (| `{NEW}` | <endpoint> | <sync modes> | <cursor> | `id` |)",
        f"{DOCS_PAGE}: add a row for `{NEW}` to the stream table (| `{NEW}` | <endpoint> | <sync modes> | <cursor> | `id` |)",
        f"manifest.yaml, api_key_roles' reads: add `{NEW}` under `GET /v1/teams` (check names the roles it needs)",
    ]

    _step_3_roles(tmp_path)
    assert reads_table((tmp_path / "manifest.yaml").read_text())["GET /v1/teams"][-1] == NEW
    assert [p for p in table_problems(tmp_path) if "Roles per stream" in p or "reads" in p] == []

    _step_4_rows(tmp_path)
    assert table_problems(tmp_path, serves=sandbox.api.serves) == []

    config = {"api_token": TOKEN, "api_url": sandbox.url}
    catalog = next(m["catalog"] for m in _declarative_manifest("discover", tmp_path, config) if m["type"] == "CATALOG")
    assert NEW in {stream["name"] for stream in catalog["streams"]}
    read = _declarative_manifest("read", tmp_path, config, [NEW])
    assert {m["record"]["data"]["id"] for m in read if m["type"] == "RECORD"} == ground_truth(sandbox, "teams")
