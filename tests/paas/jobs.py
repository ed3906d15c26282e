"""Jobs for the PaaS tests: one that takes a few seconds and counts its starts and its ends."""

from __future__ import annotations

import time

from rq import get_current_job


def slow(name: str, seconds: float) -> int:
    """Runs `seconds`; a run cut short counts as started but not as done."""
    job = get_current_job()
    assert job is not None
    started = int(job.connection.incr(f"test:started:{name}"))
    time.sleep(seconds)
    job.connection.incr(f"test:done:{name}")
    return started


def slow_first_time(name: str, seconds: float) -> int:
    """Runs `seconds` the first time, at once after; what it catches as its own failure (as
    the product's jobs record a failed push) it counts."""
    job = get_current_job()
    assert job is not None
    started = int(job.connection.incr(f"test:started:{name}"))
    if started == 1:
        try:
            time.sleep(seconds)
        except Exception:
            job.connection.incr(f"test:caught:{name}")
            raise
    job.connection.incr(f"test:done:{name}")
    return started
