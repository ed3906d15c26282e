"""Durable, deduplicated enqueueing of accepted items as RQ jobs, in one Redis round trip.

RQ builds each job (so workers read exactly what RQ itself would have written), but its
commands are not sent by RQ: they are collected from an unsent pipeline and run by one Lua
script that, item by item, sets the redelivery key (SET NX EX) and only when it was new
writes the job and pushes it. Dedupe and enqueue are therefore atomic: a crash between them
cannot leave a notification marked as seen but never queued. The receiver stays async
end to end; no thread is needed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import redis
import redis.asyncio as aioredis
from rq import Queue, Retry
from rq.serializers import JSONSerializer

from ingest import defaults
from ingest.notifications import Item

JOB_FUNCTIONS = {
    "callRecords": "workers.jobs.handle_notification",
    "transcripts": "workers.jobs.handle_notification",
    "lifecycle": "workers.jobs.handle_lifecycle",
}

# ARGV: ttl, then per item: dedupe key, command count, then per command: arg count, args...
_SCRIPT = """
local ttl = ARGV[1]
local i = 2
local out = {}
while i <= #ARGV do
  local fresh = redis.call('SET', ARGV[i], '1', 'NX', 'EX', ttl)
  local ncmds = tonumber(ARGV[i + 1])
  i = i + 2
  for _ = 1, ncmds do
    local nargs = tonumber(ARGV[i])
    if fresh then redis.call(unpack(ARGV, i + 1, i + nargs)) end
    i = i + 1 + nargs
  end
  out[#out + 1] = fresh and 1 or 0
end
return out
"""


def dedupe_digest(item: Item) -> str:
    """A digest of the item as received (clientState aside): equal only for exact redeliveries."""
    canonical = json.dumps(item.payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{item.kind}|{canonical}".encode()).hexdigest()


class Enqueuer:
    """Turns accepted items into RQ jobs on one queue; one instance per receiver process."""

    def __init__(
        self,
        conn: aioredis.Redis,
        queue_name: str = defaults.QUEUE,
        dedupe_ttl: int = defaults.DEDUPE_TTL_SECONDS,
        redis_version: tuple[int, int, int] = (7, 0, 0),
    ) -> None:
        self.conn = conn
        self.dedupe_ttl = dedupe_ttl
        # A sync client that never connects: RQ needs one to build jobs and pipelines.
        self._builder = redis.Redis()
        self.queue = Queue(queue_name, connection=self._builder, serializer=JSONSerializer)
        self.queue.redis_server_version = redis_version
        self._script = conn.register_script(_SCRIPT)
        self.retry = Retry(max=len(defaults.JOB_RETRY_INTERVALS),
                           interval=list(defaults.JOB_RETRY_INTERVALS))  # fmt: skip

    def _argv_for(self, item: Item, received_at: str) -> tuple[list[Any], str]:
        digest = dedupe_digest(item)
        job_id = f"n-{digest[:40]}"
        payload = dict(item.payload, kind=item.kind, receivedAt=received_at)
        job = self.queue.create_job(
            JOB_FUNCTIONS[item.kind],
            args=[payload],
            job_id=job_id,
            timeout=defaults.JOB_TIMEOUT_SECONDS,
            result_ttl=defaults.JOB_RESULT_TTL_SECONDS,
            retry=self.retry,
            description=f"{item.kind} {item.subscription_id}",
        )
        pipe = self._builder.pipeline(transaction=False)
        self.queue.enqueue_job(job, pipeline=pipe)
        commands = [args for args, _options in pipe.command_stack]
        argv: list[Any] = [f"{defaults.KEY_PREFIX}:seen:{digest}", len(commands)]
        for args in commands:
            argv.append(len(args))
            argv.extend(args)
        return argv, job_id

    async def enqueue(self, items: Sequence[Item]) -> list[str | None]:
        """Store every item durably; per item the job id, or None for a redelivery.

        Raises redis.exceptions.RedisError when Redis cannot take them: then nothing of this
        batch may be acknowledged (the script runs whole or not at all).
        """
        if not items:
            return []
        received_at = datetime.now(UTC).isoformat()
        argv: list[Any] = [self.dedupe_ttl]
        job_ids: list[str] = []
        for item in items:
            part, job_id = self._argv_for(item, received_at)
            argv.extend(part)
            job_ids.append(job_id)
        fresh = await self._script(args=argv)
        return [jid if flag else None for jid, flag in zip(job_ids, fresh, strict=True)]
