"""Durable, deduplicated enqueueing of accepted items as RQ jobs, in one Redis round trip.

RQ itself describes the job: at start-up it enqueues a template job (sentinel id, args and
description) into an unsent pipeline, and the commands it would send become a Lua script
in which the per-item values (job id, data, timestamps, description) are parameters. For
each item the script sets the redelivery key (SET NX EX) and, only when it was new, runs
RQ's commands. So:
- dedupe and enqueue are atomic: a crash between them cannot leave a notification marked
  as seen but never queued;
- a request costs one round trip, and the receiver stays async with no thread; requests
  that arrive while a round trip is in Redis share the next one (one script call for all
  their items), so that under load the receiver makes fewer, larger calls, on one
  connection, instead of one connection per request (redis-py's pool refused the 101st);
- workers read exactly what RQ would have written (a test compares the two hashes).

The work per item is what bounds the receiver's rate on batches, so each item costs one
canonical JSON dump, one digest, and three script arguments; what is the same for every
item (timestamps, the job's function, what the worker needs besides the item) is made once
per request.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
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
# A call's arguments: the dedupe TTL and the timestamp, then per item its digest (the script
# makes the redelivery key and the job id of it), RQ's `data` and the description.
ITEM_ARGS = 3
JOB_ID_PREFIX = "n-"
JOB_ID_DIGEST_CHARS = 40
# The canonical form of an item: one encoder for every call (json.dumps with options builds
# a new one each time).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


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


def _commands(commands: list[tuple[Any, ...]]) -> tuple[list[list[str]], list[list[str]]]:
    """RQ's commands as Lua argument lists, split into those run for each new item and those
    run once per call when any item was new. Two changes make the same keys with less work
    for Redis (the script's run is most of Redis's time per item): the HSETs of one key are
    merged into one (RQ sets `status`, then the whole hash again with it), and a constant
    SADD (the queue into RQ's set of queues) is run once, not once per item."""
    per_item: list[list[str]] = []
    once: list[list[str]] = []
    hsets: dict[str, list[str]] = {}  # key expression -> the merged HSET's arguments
    for args in commands:
        exprs = []
        previous: bytes | None = None
        for raw in args:
            field = previous if previous in _PER_ITEM_FIELDS else None
            exprs.append(_lua_arg(raw, _PER_ITEM_FIELDS[field] if field else None))
            previous = _to_bytes(raw) if isinstance(raw, str | bytes) else None
        name = exprs[0].strip("'").upper()
        constant = not any("jid" in e or e in _PER_ITEM_FIELDS.values() for e in exprs)
        if name == "SADD" and constant:
            once.append(exprs)
        elif name == "HSET" and len(exprs) % 2 == 0:
            merged = hsets.get(exprs[1])
            if merged is None:
                hsets[exprs[1]] = exprs
                per_item.append(exprs)
            else:
                pairs = dict(zip(merged[2::2], merged[3::2], strict=True))
                pairs.update(zip(exprs[2::2], exprs[3::2], strict=True))
                merged[2:] = [x for pair in pairs.items() for x in pair]
        else:
            per_item.append(exprs)
    return per_item, once


def _script_for(commands: list[tuple[Any, ...]]) -> str:
    """Lua that runs `commands` once per new item; per-item values come from ARGV."""
    per_item, once = _commands(commands)
    return "\n".join([
        "local ttl, ts = ARGV[1], ARGV[2]",
        "local out = {}",
        "local any = false",
        f"for i = 3, #ARGV, {ITEM_ARGS} do",
        "  local digest, data, desc = ARGV[i], ARGV[i + 1], ARGV[i + 2]",
        f"  local jid = '{JOB_ID_PREFIX}' .. string.sub(digest, 1, {JOB_ID_DIGEST_CHARS})",
        f"  if redis.call('SET', {_lua_literal(f'{keys.SEEN}:'.encode())} .. digest, '1', 'NX', "
        "'EX', ttl) then",
        *("    redis.call(" + ", ".join(exprs) + ")" for exprs in per_item),
        "    out[#out + 1] = 1",
        "    any = true",
        "  else",
        "    out[#out + 1] = 0",
        "  end",
        "end",
        "if any then",
        *("  redis.call(" + ", ".join(exprs) + ")" for exprs in once),
        "end",
        "return out",
    ])  # fmt: skip


def canonical_json(item: Item) -> str:
    return _CANONICAL.encode(item.payload)


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
        # RQ's `data` up to the payload: `[function, instance, [args...`.
        self._heads = {f: f"[{json.dumps(f)},null,[" for f in set(JOB_FUNCTIONS.values())}
        # Requests whose items wait to be stored, and the task storing them: requests that
        # arrive while a round is in Redis go in the next round together (ingest/app.py).
        self._waiting: list[_Waiting] = []
        self._writer: asyncio.Task[None] | None = None
        self._scripts = {
            function: conn.register_script(_script_for(template_commands(self.queue, function)))
            for function in set(JOB_FUNCTIONS.values())
        }

    def job_data(self, function: str, payload_json: str) -> bytes:
        """RQ's `data` field: the zlib stream of the JSON-serialised (function, instance, args,
        kwargs), written around the payload's JSON (already made for the digest) instead of
        dumping it again: it is what RQ's JSON serializer reads back."""
        data = f"{self._heads[function]}{payload_json}],{{}}]".encode()
        # Stored, not compressed (level 0): deflating a ~500-byte job took ~18 us, a fifth of
        # the receiver's time per item, to save ~140 bytes of Redis memory per queued job.
        # It is still a zlib stream, so RQ's plain zlib.decompress reads it as usual.
        packer = zlib.compressobj(0, zlib.DEFLATED, 9, 1)
        return packer.compress(data) + packer.flush()

    async def enqueue(self, items: Sequence[Item]) -> list[str | None]:
        """Store every item durably; per item the job id, or None for a redelivery.

        Building a large batch's arguments yields to the event loop every few ms (a
        2,000-item batch would otherwise hold it for tens of ms). Raises
        redis.exceptions.RedisError when Redis cannot take them: then nothing of this batch
        may be acknowledged (each item is stored whole or not at all; a retry finds the
        stored ones as redeliveries).
        """
        received_at = utcformat(now()).replace("Z", "+00:00")
        # What the worker needs besides the item (none of these keys is an item field),
        # spliced in front of each item's canonical JSON: the same for every item of a kind.
        heads = {
            kind: json.dumps({"kind": kind, "receivedAt": received_at}, separators=(",", ":"))
            for kind in {item.kind for item in items}
        }
        args: dict[str, list[Any]] = {}  # per job function, ITEM_ARGS arguments per item
        job_ids: list[str] = []
        slicer = Slicer()
        for item in items:
            canonical = canonical_json(item)
            digest = dedupe_digest(item, canonical)
            function = JOB_FUNCTIONS[item.kind]
            head = heads[item.kind]
            payload_json = head if canonical == "{}" else f"{head[:-1]},{canonical[1:]}"
            args.setdefault(function, []).extend([
                digest, self.job_data(function, payload_json),
                f"{item.kind} {item.subscription_id}",
            ])  # fmt: skip
            job_ids.append(f"{JOB_ID_PREFIX}{digest[:JOB_ID_DIGEST_CHARS]}")
            if slicer.due():
                await slicer.pause()
        if not items:
            return []
        waiting = _Waiting(args, asyncio.get_running_loop().create_future())
        self._waiting.append(waiting)
        if self._writer is None:
            self._writer = asyncio.create_task(self._write())
        flags = await waiting.done
        fresh = {function: iter(values) for function, values in flags.items()}
        new = [next(fresh[JOB_FUNCTIONS[item.kind]]) for item in items]
        return [jid if flag else None for jid, flag in zip(job_ids, new, strict=True)]

    async def _write(self) -> None:
        """Store the waiting requests' items, a round at a time, until none wait."""
        batch: list[_Waiting] = []
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    results = await self._store(batch)
                except Exception as exc:  # Redis failed, or a bug: each request of the round
                    # raises it as if it had made the call (a RedisError answers 503).
                    for waiting in batch:
                        if not waiting.done.done():
                            waiting.done.set_exception(exc)
                    continue
                for waiting, flags in zip(batch, results, strict=True):
                    if not waiting.done.done():
                        waiting.done.set_result(flags)
                batch = []
        except BaseException:  # cancelled (shutdown): no request may wait forever
            for waiting in batch + self._waiting:
                waiting.done.cancel()
            self._waiting = []
            raise
        finally:
            self._writer = None

    async def _store(self, batch: list[_Waiting]) -> list[dict[str, list[int]]]:
        """One round: per job function, every item of `batch` in script calls of at most
        SCRIPT_ITEMS items; per request, per function, each item's flag (1: new)."""
        stamp = utcformat(now())
        out: list[dict[str, list[int]]] = [{} for _ in batch]
        step = ITEM_ARGS * SCRIPT_ITEMS
        for function, script in self._scripts.items():
            mine = [(n, w.args[function]) for n, w in enumerate(batch) if function in w.args]
            if not mine:
                continue
            flat = [arg for _, args in mine for arg in args]
            flags: list[int] = []
            for at in range(0, len(flat), step):
                flags.extend(await script(args=[self.dedupe_ttl, stamp, *flat[at : at + step]]))
            at = 0
            for n, args in mine:
                count = len(args) // ITEM_ARGS
                out[n][function] = flags[at : at + count]
                at += count
        return out


@dataclass
class _Waiting:
    """A request's items waiting for the next round: per job function, their arguments; and
    the future that gets, per function, each item's flag."""

    args: dict[str, list[Any]]
    done: asyncio.Future[dict[str, list[int]]]
