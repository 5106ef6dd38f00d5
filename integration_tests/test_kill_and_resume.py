"""SIGKILL the read at seeded random moments, resume from the last STATE it emitted, repeat until done:
the union of emitted records equals the ground truth, and each resumed run reads again at most about
one page of each search stream. (More seeds: `make soak`.)"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
from collections import Counter

import pytest

from integration_tests.conftest import CLI, catalog_for, config_for, ground_truth
from integration_tests.sandbox import FAST_KUSTOMER_LIMITS, Sandbox

STREAMS = ["conversations", "customers", "notes", "users"]
SEEDS = range(int(os.environ.get("SOAK_SEEDS", "3")))
KILLS = 5  # kills per seed; the run after them is left to finish
PAGE_SIZE = 100
#: Records yielded after one before its checkpoint may be taken (search.HANDLED_AFTER).
HANDLED_AFTER = 2


def read_until_killed(folder, sandbox, state, kill_after_lines):
    (folder / "config.json").write_text(json.dumps(config_for(sandbox, page_size=PAGE_SIZE)))
    (folder / "catalog.json").write_text(json.dumps(catalog_for(STREAMS)))
    (folder / "state.json").write_text(json.dumps(list(state.values())))
    argv = [CLI, "read", "--config", str(folder / "config.json"), "--catalog", str(folder / "catalog.json"), "--state", str(folder / "state.json")]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    records, lines = [], 0
    for line in process.stdout:
        lines += 1
        message = json.loads(line) if line.startswith("{") else {}
        if message.get("type") == "RECORD":
            data = message["record"]["data"]
            records.append((message["record"]["stream"], data["id"], data.get("updated_at")))
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
            reread = Counter(stream for stream, *_ in set(records) & emitted)
            for stream in SEARCH_STREAMS:
                assert reread[stream] <= rework_bound(stream, emitted | set(records)), (stream, attempts, reread)
            emitted.update(records)

        for stream in STREAMS:
            assert {i for s, i, _ in emitted if s == stream} == ground_truth(sandbox, stream), stream
        assert attempts > 1


SEARCH_STREAMS = [stream for stream in STREAMS if stream != "users"]


def rework_bound(stream, records):
    """What a resumed search stream may read again: the records after its last checkpoint (a page,
    and the two yielded before a checkpoint counts them), and those sharing the checkpoint's instant,
    which its ``gte`` asks for again (a bulk update puts many at one instant)."""
    at_one_instant = Counter(updated_at for s, _, updated_at in records if s == stream)
    return PAGE_SIZE + HANDLED_AFTER + max(at_one_instant.values(), default=0)
