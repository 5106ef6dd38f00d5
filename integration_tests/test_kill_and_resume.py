"""SIGKILL the read at seeded random moments, resume from the last STATE it emitted, repeat until done:
the union of emitted records equals the ground truth. (More seeds: `make soak`.)"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess

import pytest

from integration_tests.conftest import CLI, catalog_for, config_for, ground_truth
from integration_tests.sandbox import FAST_KUSTOMER_LIMITS, Sandbox

STREAMS = ["conversations", "customers", "notes", "users"]
SEEDS = range(int(os.environ.get("SOAK_SEEDS", "3")))
KILLS = 5  # kills per seed; the run after them is left to finish


def read_until_killed(folder, sandbox, state, kill_after_lines):
    (folder / "config.json").write_text(json.dumps(config_for(sandbox, page_size=100)))
    (folder / "catalog.json").write_text(json.dumps(catalog_for(STREAMS)))
    (folder / "state.json").write_text(json.dumps(list(state.values())))
    argv = [CLI, "read", "--config", str(folder / "config.json"), "--catalog", str(folder / "catalog.json"), "--state", str(folder / "state.json")]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    records, lines = [], 0
    for line in process.stdout:
        lines += 1
        message = json.loads(line) if line.startswith("{") else {}
        if message.get("type") == "RECORD":
            records.append((message["record"]["stream"], message["record"]["data"]["id"]))
        elif message.get("type") == "STATE":
            state[message["state"]["stream"]["stream_descriptor"]["name"]] = message["state"]
        if lines >= kill_after_lines:
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    return records, process.returncode == 0


@pytest.mark.parametrize("seed", SEEDS)
def test_killed_syncs_resume_from_their_last_state_without_loss(tmp_path, seed):
    chance = random.Random(seed)
    with Sandbox(records=2000, seed=100 + seed, latency_ms=1, **FAST_KUSTOMER_LIMITS) as sandbox:
        state, emitted, finished, attempts = {}, set(), False, 0
        while not finished:
            attempts += 1
            assert attempts <= KILLS + 1, "the sync did not finish once left alone"
            kill_after = chance.randint(20, 600) if attempts <= KILLS else 10**9  # a full read prints over 1,000 lines
            records, finished = read_until_killed(tmp_path, sandbox, state, kill_after)
            emitted.update(records)

        for stream in STREAMS:
            assert {i for s, i in emitted if s == stream} == ground_truth(sandbox, stream), stream
        assert attempts > 1
