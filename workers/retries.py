"""Every RQ job's options and retries, built in one place; a `Retry-After` honoured by the job.

Notification jobs (enqueued by the receiver's script), transcript re-checks, pushes and
fill-ins all run under the same timeout, result lifetime and retry schedule. When Graph or
Salesforce says how long to wait (`Retry-After` on a 429 or 503 that outlasted the client's
own retries), the job's next retry waits at least that long instead of its fixed interval.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from rq import Retry, get_current_job

from core import defaults
from core.exceptions import UpstreamTransient


def retry() -> Retry:
    intervals = list(defaults.JOB_RETRY_INTERVALS)
    return Retry(max=len(intervals), interval=intervals)


def options() -> dict[str, Any]:
    """Keyword options of `Queue.enqueue` / `enqueue_in` for a product job."""
    return {
        "job_timeout": defaults.JOB_TIMEOUT_SECONDS,
        "result_ttl": defaults.JOB_RESULT_TTL_SECONDS,
        "retry": retry(),
    }


def create_options() -> dict[str, Any]:
    """The same options for `Queue.create_job` (which names the timeout `timeout`)."""
    out = options()
    out["timeout"] = out.pop("job_timeout")
    return out


def honour_retry_after(exc: BaseException) -> None:
    """Make the running job's next retry wait at least the upstream's `Retry-After`."""
    wait = getattr(exc, "retry_after", None) if isinstance(exc, UpstreamTransient) else None
    job = get_current_job()
    if not wait or job is None or not job.retries_left:
        return
    at_least = math.ceil(wait)
    intervals = job.retry_intervals or [0]
    job.retry_intervals = [max(int(i), at_least) for i in intervals]


P = ParamSpec("P")
R = TypeVar("R")


def honoured(job: Callable[P, R]) -> Callable[P, R]:
    """A job function whose transient failures wait their upstream's `Retry-After`."""

    @functools.wraps(job)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return job(*args, **kwargs)
        except UpstreamTransient as exc:
            honour_retry_after(exc)
            raise

    return run
