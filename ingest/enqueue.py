"""Durable, deduplicated enqueueing of accepted items as RQ jobs, in one Redis round trip.

RQ itself describes the job: at start-up it enqueues a template job (sentinel id, args and
description) into an unsent pipeline, and the commands it would send become a Lua script
in which the per-item values (job id, data, timestamps, description) are parameters. For
each item the script sets the redelivery key (SET NX EX) and, only when it was new, runs
RQ's commands. So:
- dedupe and enqueue are atomic: a crash between them cannot leave a notification marked
  as seen but never queued;
- a request costs one round trip, and the receiver stays async with no thread;
- workers read exactly what RQ would have written (a test compares the two hashes).
"""

from __future__ import annotations

import hashlib
import json
import re
import zlib
from collections.abc import Iterator, Sequence
from enum import Enum
from typing import Any

import redis
import redis.asyncio as aioredis
from rq import Queue
from rq.serializers import JSONSerializer
from rq.utils import now, utcformat

from core import defaults, keys
from ingest.bounded import Slicer
from ingest.notifications import Item
from workers import retries

JOB_FUNCTIONS = {
    "callRecords": keys.JOB_NOTIFICATION,
    "transcripts": keys.JOB_NOTIFICATION,
    "lifecycle": keys.JOB_LIFECYCLE,
}
_JOB_ID = "ingestjobidsentinel"
_DESCRIPTION = "ingestdescriptionsentinel"
_ARGS = "ingestargssentinel"
# Fields of RQ's job hash whose values differ per item, and the script variable for each.
_PER_ITEM_FIELDS = {b"data": "data", b"created_at": "ts", b"enqueued_at": "ts",
                    b"description": "desc"}  # fmt: skip
_SAFE = re.compile(rb"[A-Za-z0-9 _:.,\[\]/+=-]*")
# Items per script call: redis-py packs a call's arguments in one go on the event loop
# (~1 ms per 250 items), and Redis runs the script without serving anyone else meanwhile.
SCRIPT_ITEMS = 256


def _to_bytes(value: Any) -> bytes:
    """A command argument as Redis receives it (as redis-py encodes it)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value).encode()
    if isinstance(value, str):
        return value.encode()
    raise TypeError(f"unexpected argument type {type(value).__name__} in an RQ command")


def _lua_literal(value: bytes) -> str:
    if _SAFE.fullmatch(value):
        return "'" + value.decode() + "'"
    return "'" + "".join(f"\\{b:03d}" for b in value) + "'"


def _lua_arg(raw: Any, per_item: str | None) -> str:
    if per_item is not None:
        return per_item
    value = _to_bytes(raw)
    if _JOB_ID.encode() in value:
        head, _, tail = value.partition(_JOB_ID.encode())
        parts = (
            ([_lua_literal(head)] if head else [])
            + ["jid"]
            + ([_lua_literal(tail)] if tail else [])
        )
        return " .. ".join(parts)
    return _lua_literal(value)


def _script_for(commands: list[tuple[Any, ...]]) -> str:
    """Lua that runs `commands` once per new item; per-item values come from ARGV."""
    body = []
    for args in commands:
        exprs = []
        previous: bytes | None = None
        for raw in args:
            field = previous if previous in _PER_ITEM_FIELDS else None
            exprs.append(_lua_arg(raw, _PER_ITEM_FIELDS[field] if field else None))
            previous = _to_bytes(raw) if isinstance(raw, str | bytes) else None
        body.append("    redis.call(" + ", ".join(exprs) + ")")
    return "\n".join([
        "local ttl = ARGV[1]",
        "local out = {}",
        "for i = 2, #ARGV, 5 do",
        "  local jid, data, ts, desc = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]",
        "  if redis.call('SET', ARGV[i], '1', 'NX', 'EX', ttl) then",
        *body,
        "    out[#out + 1] = 1",
        "  else",
        "    out[#out + 1] = 0",
        "  end",
        "end",
        "return out",
    ])  # fmt: skip


def canonical_json(item: Item) -> str:
    return json.dumps(item.payload, sort_keys=True, separators=(",", ":"))


def dedupe_digest(item: Item, canonical: str | None = None) -> str:
    """A digest of the item as received (clientState aside): equal only for exact redeliveries."""
    text = canonical_json(item) if canonical is None else canonical
    return hashlib.sha256(f"{item.kind}|{text}".encode()).hexdigest()


def job_options() -> dict[str, Any]:
    """The RQ options every notification job gets (workers/retries.py builds them)."""
    return retries.create_options()


def template_commands(queue: Queue, function: str) -> list[tuple[Any, ...]]:
    """The commands RQ sends to enqueue one job of `function`, with sentinel values."""
    job = queue.create_job(function, args=[_ARGS], job_id=_JOB_ID, description=_DESCRIPTION,
                           **job_options())  # fmt: skip
    pipe = queue.connection.pipeline(transaction=False)
    queue.enqueue_job(job, pipeline=pipe)
    return [tuple(args) for args, _options in pipe.command_stack]


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
        self.queue = Queue(queue_name, connection=redis.Redis(), serializer=JSONSerializer)
        self.queue.redis_server_version = redis_version
        self._scripts = {
            function: conn.register_script(_script_for(template_commands(self.queue, function)))
            for function in set(JOB_FUNCTIONS.values())
        }

    def job_data(self, function: str, payload_json: str) -> bytes:
        """RQ's `data` field: the compressed, JSON-serialised (function, instance, args, kwargs),
        written around the payload's JSON (already made for the digest) instead of dumping
        it again: it is what RQ's JSON serializer reads back."""
        data = f"[{json.dumps(function)},null,[{payload_json}],{{}}]".encode()
        # zlib.compress spends ~50 us setting up a 32 KiB window for a ~500-byte job; a
        # 512-byte window with the smallest memory level takes ~8 us. The stream header
        # records the window size, so RQ's plain zlib.decompress reads it as usual.
        packer = zlib.compressobj(1, zlib.DEFLATED, 9, 1)
        return packer.compress(data) + packer.flush()

    async def enqueue(self, items: Sequence[Item]) -> list[str | None]:
        """Store every item durably; per item the job id, or None for a redelivery.

        A large batch is stored by several script calls of at most SCRIPT_ITEMS items, and
        building their arguments yields to the event loop every few ms: a 2,000-item batch
        would otherwise hold the loop for tens of ms. Raises redis.exceptions.RedisError
        when Redis cannot take them: then nothing of this batch may be acknowledged (each
        item is stored whole or not at all; a retry finds the stored ones as redeliveries).
        """
        stamp = utcformat(now())
        received_at = stamp.replace("Z", "+00:00")
        calls: dict[str, list[list[Any]]] = {}  # per job function, the argv of each call
        job_ids: list[str] = []
        slicer = Slicer()
        for item in items:
            canonical = canonical_json(item)
            digest = dedupe_digest(item, canonical)
            job_id = f"n-{digest[:40]}"
            function = JOB_FUNCTIONS[item.kind]
            # The job's payload: the item plus what the worker needs (none of these keys is an
            # item field), spliced in front of the canonical JSON.
            added = {"kind": item.kind, "receivedAt": received_at}
            head = json.dumps(added, separators=(",", ":"))
            payload_json = head if canonical == "{}" else f"{head[:-1]},{canonical[1:]}"
            argvs = calls.setdefault(function, [])
            if not argvs or len(argvs[-1]) >= 1 + 5 * SCRIPT_ITEMS:
                argvs.append([self.dedupe_ttl])
            argvs[-1].extend([
                f"{keys.SEEN}:{digest}", job_id,
                self.job_data(function, payload_json), stamp,
                f"{item.kind} {item.subscription_id}",
            ])  # fmt: skip
            job_ids.append(job_id)
            if slicer.due():
                await slicer.pause()
        fresh: dict[str, Iterator[int]] = {}
        for function, argvs in calls.items():
            flags: list[int] = []
            for args in argvs:
                flags.extend(await self._scripts[function](args=args))
            fresh[function] = iter(flags)
        new = [next(fresh[JOB_FUNCTIONS[item.kind]]) for item in items]
        return [jid if flag else None for jid, flag in zip(job_ids, new, strict=True)]
