"""Jobs for the crash-safety and Redis-outage tests of the worker."""

from __future__ import annotations

import time

from rq import get_current_job

from core.exceptions import UpstreamTransient
from workers import retries


def hang_first_time(name: str) -> int:
    job = get_current_job()
    assert job is not None
    attempt = int(job.connection.incr(f"test:attempts:{name}"))
    if attempt == 1:
        time.sleep(120)  # the test kills the worker long before this ends
    job.connection.set(f"test:done:{name}", attempt)
    return attempt


def count_run(name: str) -> int:
    """Counts its runs; used where a job must run exactly once."""
    job = get_current_job()
    assert job is not None
    runs = int(job.connection.incr(f"test:runs:{name}"))
    job.connection.set(f"test:done:{name}", runs)
    return runs


def stop_redis_first_time(name: str) -> int:
    """The first run shuts Redis down under the worker (RQ's bookkeeping after the job then
    fails); later runs finish."""
    job = get_current_job()
    assert job is not None
    attempt = int(job.connection.incr(f"test:attempts:{name}"))
    if attempt == 1:
        job.connection.shutdown()
        return attempt
    job.connection.set(f"test:done:{name}", attempt)
    return attempt


@retries.honoured
def throttled(name: str) -> int:
    """Fails the first time as Graph does after its own retries: a 429 with Retry-After 7."""
    job = get_current_job()
    assert job is not None
    attempt = int(job.connection.incr(f"test:attempts:{name}"))
    if attempt == 1:
        raise UpstreamTransient("Graph 429 while reading", retry_after=7.0)
    return attempt


def refuse_token(token: str) -> None:
    """Fails naming its argument, as an upstream error quoting a credential would."""
    raise ValueError(f"the upstream refused {token}")
