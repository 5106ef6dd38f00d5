"""Tests only: a connector process started with this folder on PYTHONPATH sleeps
``SOURCE_KUSTOMER_SLEEP_SCALE`` times as long as it asks to (``Connector.run(..., fast_clock=True)``).

The sandbox shortens Kustomer's rate-limit windows (``time_scale``); this shortens the connector's
waits the same way: its retries back off 5 s, 10 s, 20 s, ... exactly as in production, each taking
a fraction of that, so a test can drive a sync through fault storms, and a fault that never ends
through all ten retries, in seconds. Nothing else in the process changes.
"""

import os
import time

_SCALE = float(os.environ.get("SOURCE_KUSTOMER_SLEEP_SCALE") or 1)

if _SCALE != 1:
    _sleep = time.sleep

    def _scaled_sleep(seconds: float) -> None:
        _sleep(max(0.0, seconds) * _SCALE)

    time.sleep = _scaled_sleep
