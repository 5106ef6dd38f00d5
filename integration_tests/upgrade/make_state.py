"""Writes state_written_by_0.1.0.json: the last STATE of every stream after a full read of
``ORG`` (test_state_upgrade.py) by source-kustomer 0.1.0, the version users run before 0.2.0.

    git worktree add /tmp/v010 9193550        # the last commit of 0.1.0
    .venv/bin/python -m integration_tests.upgrade.make_state /tmp/v010

The old package runs from its worktree with this venv (the same airbyte-cdk pin). The sandbox's
contract check is off: 0.1.0 sends requests Kustomer does not document (that is what 0.2.0 changed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from integration_tests.sandbox import Sandbox
from integration_tests.test_state_upgrade import ORG, START_DATE, STATE_FILE

OLD_CLI = [sys.executable, "-c", "import sys; sys.argv[0] = 'source-kustomer'; from source_kustomer.run import run; run()"]


def main(old_tree: str) -> None:
    env = {**os.environ, "PYTHONPATH": old_tree}
    folder = Path(old_tree)
    with Sandbox(**ORG, contract="off") as sandbox:
        (folder / "config.json").write_text(json.dumps({"api_token": "sandbox-token", "api_url": sandbox.url, "start_date": START_DATE}))
        discovered = subprocess.run([*OLD_CLI, "discover", "--config", "config.json"], capture_output=True, text=True, env=env, cwd=folder, check=True)
        catalog = next(json.loads(line)["catalog"] for line in discovered.stdout.splitlines() if '"CATALOG"' in line)
        configured = {"streams": [{"stream": s, "destination_sync_mode": "append",
                                   "sync_mode": "incremental" if "incremental" in s["supported_sync_modes"] else "full_refresh"}
                                  for s in catalog["streams"]]}
        (folder / "catalog.json").write_text(json.dumps(configured))
        read = subprocess.run([*OLD_CLI, "read", "--config", "config.json", "--catalog", "catalog.json"],
                              capture_output=True, text=True, env=env, cwd=folder, check=True)
    states = {}
    for line in read.stdout.splitlines():
        if line.startswith('{"type":"STATE"'):
            message = json.loads(line)["state"]
            states[message["stream"]["stream_descriptor"]["name"]] = message
    STATE_FILE.write_text(json.dumps(list(states.values()), indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
