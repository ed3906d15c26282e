"""Jobs for the crash-safety tests: the first attempt hangs, later ones finish at once."""

from __future__ import annotations

import time

from rq import get_current_job


def hang_first_time(name: str) -> int:
    job = get_current_job()
    assert job is not None
    attempt = int(job.connection.incr(f"test:attempts:{name}"))
    if attempt == 1:
        time.sleep(120)  # the test kills the worker long before this ends
    job.connection.set(f"test:done:{name}", attempt)
    return attempt
