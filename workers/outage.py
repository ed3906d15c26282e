"""Redis outages, for the worker: wait for Redis to come back, and recover stranded jobs.

RQ's work loop retries a lost connection only while it waits for a job; a connection error
anywhere else (the heartbeat right after a dequeue, starting the job, maintenance) ends the
worker with exit 1. `until_redis` wraps those steps: it retries with backoff until Redis
answers again.

A job that a worker had moved into RQ's intermediate list (BLMOVE) but not yet started when
Redis went away or the worker died stays there: RQ fails it after a fixed minute, which
spends one of its retries and waits the retry interval. `recover_intermediate` moves such a
job back to the head of its queue instead, once two maintenance passes at least `min_age`
apart have seen it there unstarted: no retry is spent, and it runs within the worker
heartbeat bound.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import redis
from rq import Queue

from core import logs

T = TypeVar("T")
log = logs.get_logger("workers.worker")

FIRST_WAIT_SECONDS = 0.5
MAX_WAIT_SECONDS = 5.0  # a worker resumes at most this long after Redis is back
# The errors that mean "Redis is not there right now" (redis-py's TimeoutError is not a
# ConnectionError subclass).
OUTAGE = (redis.ConnectionError, redis.TimeoutError)

# Move a stranded job back to the head of its queue, unless a worker has since started it (RQ
# removes a job from the intermediate list as it starts it) or another worker's maintenance
# moved it already: LREM is the arbiter, one caller wins.
_REQUEUE = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then
  redis.call('LPUSH', KEYS[2], ARGV[1])
  redis.call('DEL', KEYS[3])
  return 1
end
return 0
"""


def until_redis(step: str, fn: Callable[[], T], stopping: Callable[[], bool]) -> T:
    """`fn()`, retried with backoff while Redis cannot be reached (one WARNING a try)."""
    wait = FIRST_WAIT_SECONDS
    while True:
        try:
            return fn()
        except OUTAGE as exc:
            if stopping():
                raise
            log.warning("worker_redis_unavailable", step=step, error=type(exc).__name__,
                        retry_in_s=wait)  # fmt: skip
            time.sleep(wait)
            wait = min(wait * 2, MAX_WAIT_SECONDS)


def recover_intermediate(queue: Queue, min_age: float) -> list[str]:
    """Requeue the jobs stranded in `queue`'s intermediate list; returns their ids."""
    conn = queue.connection
    iq = queue.intermediate_queue
    requeue = conn.register_script(_REQUEUE)
    moved = []
    for job_id in iq.get_job_ids():
        if job_id in queue.started_job_registry or iq.set_first_seen(job_id):
            continue  # running, or seen for the first time: look again next pass
        first = iq.get_first_seen(job_id)
        if first is None or time.time() - first.timestamp() < min_age:
            continue
        if requeue(keys=[iq.key, queue.key, iq.get_first_seen_key(job_id)],
                   args=[job_id]):  # fmt: skip
            moved.append(job_id)
            log.info("stranded_job_requeued", job_id=job_id, queue=queue.name)
    return moved
