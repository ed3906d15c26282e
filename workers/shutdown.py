"""A job still running when the platform's shutdown grace runs out is put back on its queue.

A PaaS stops a worker with SIGTERM and kills it 30 s later (Heroku, dyno-shutdown-behavior:
"Have them finish their current requests, or put jobs back on the queue for other worker
processes to handle"; what remains after 30 s gets SIGKILL). RQ's warm shutdown lets the running job
finish; most end in seconds. One that is still running GRACE_SECONDS after the SIGTERM (a
Salesforce or Graph throttle it waits out, say) is interrupted in the worker's own process,
where its locks are released as the exception unwinds, and goes back to the front of its
queue with its retries untouched. Killed instead, it would wait out the heartbeat TTL in
the started registry and spend a retry (crash safety, workers/worker.py).

The interruption rides on RQ's own job timeout: the SIGALRM that RQ arms for a job's
timeout is moved earlier to the grace, and the handler tells the two apart by the clock.
"""

from __future__ import annotations

import signal
import time
from types import FrameType
from typing import Any, ClassVar

from rq import Queue
from rq.job import Job
from rq.timeouts import UnixSignalDeathPenalty
from rq.worker import BaseWorker

from core import logs

GRACE_SECONDS = 20  # then the put-back itself and the exit, well within the platform's 30 s

log = logs.get_logger("workers.shutdown")


class PutBack(BaseException):
    """Raised in a job that outlived the shutdown grace: the worker requeues it. A
    BaseException, as KeyboardInterrupt is: a job's `except Exception` (which records a
    failed push, say) must not take the shutdown for the job's own failure."""


class GraceDeathPenalty(UnixSignalDeathPenalty):
    """RQ's job timeout, that also ends a job at the shutdown grace (one worker a process,
    so the state is the class's)."""

    put_back_at: ClassVar[float | None] = None  # monotonic time of the grace's end
    fired_for: ClassVar[str | None] = None  # the job id that PutBack was raised in

    def __init__(self, timeout: int, exception: type[Exception], **kwargs: object) -> None:
        super().__init__(timeout, exception, **kwargs)  # type: ignore[no-untyped-call]
        self._job_id = kwargs.get("job_id")

    def handle_death_penalty(self, signum: int, frame: FrameType | None) -> None:
        due = GraceDeathPenalty.put_back_at
        if due is not None and time.monotonic() >= due - 0.5 and isinstance(self._job_id, str):
            GraceDeathPenalty.fired_for = self._job_id
            raise PutBack(f"the worker is shutting down; job {self._job_id} goes back")
        super().handle_death_penalty(signum, frame)  # type: ignore[no-untyped-call]


def arm(grace: float = GRACE_SECONDS) -> bool:
    """On SIGTERM with a job running: end it at the grace unless its own timeout comes first.
    False when no job's timeout alarm is set (the job is past its end already)."""
    handler = signal.getsignal(signal.SIGALRM)
    if not isinstance(getattr(handler, "__self__", None), GraceDeathPenalty):
        return False
    remaining = signal.alarm(0)
    GraceDeathPenalty.put_back_at = time.monotonic() + grace
    whole = max(1, int(grace))
    signal.alarm(remaining if 0 < remaining <= whole else whole)
    log.info("job_has_until", seconds=whole)
    return True


def putting_back(job_id: str) -> bool:
    """Whether `job_id` just ended by the put-back (nothing failed: RQ logs no error)."""
    return GraceDeathPenalty.fired_for == job_id


def fired(job_id: str) -> bool:
    """Whether the failure of `job_id` is the put-back (and forget it)."""
    if GraceDeathPenalty.fired_for != job_id:
        return False
    GraceDeathPenalty.fired_for = None
    return True


def put_back(worker: BaseWorker, job: Job, queue: Queue, execution: Any) -> None:
    """The interrupted job back at the front of its queue, its retries untouched."""
    with worker.connection.pipeline() as pipe:
        worker.cleanup_execution(job, pipeline=pipe, execution=execution)
        # Out of the started registry and onto the queue in one transaction: no moment when a
        # crash could lose it. (enqueue_job would open a second MULTI for the job's
        # dependencies; a job that ran has none left to check.)
        queue._enqueue_job(job, pipeline=pipe, at_front=True)
        pipe.execute()
    log.warning("job_put_back", job_id=job.id, reason="worker shutting down")
