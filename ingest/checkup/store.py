"""Redis: that it answers, and that it keeps data across a restart (AOF or RDB snapshots).

Everything the product holds lives there: queued jobs, the subscription registry and its
clientStates, the ECI users, dedupe keys and the ledger. A Redis that persists nothing loses
them all on a restart. `CONFIG GET` says how it is set; managed services that refuse CONFIG
(Heroku's, ACL-restricted users) still answer `INFO persistence`, which is read instead.
"""

from __future__ import annotations

import time
from typing import Any

import redis

from ingest.checkup import Check, failed, passed, safe_url

RDB_WINDOW_SECONDS = 3600  # Redis's default `save 3600 1`: a change is on disk within an hour
FIX_UNREACHABLE = (
    "check REDIS_URL (rediss:// for TLS; add ?ssl_cert_reqs=none for an add-on "
    "with a self-signed certificate) and that Redis runs"
)
FIX_PERSISTENCE = (
    "turn on AOF: `CONFIG SET appendonly yes` and `appendonly yes` in redis.conf (compose.yaml "
    "does); on a managed Redis choose a plan with persistence (Heroku: premium plans keep an "
    "AOF); without it a restart loses queued jobs, subscriptions, ECI users and the ledger"
)


def answers(conn: redis.Redis, url: str) -> list[Check]:
    try:
        conn.ping()
        version = str(_info(conn, "server").get("redis_version", "?"))
    except redis.RedisError as exc:
        detail = f"Redis at {safe_url(url)} does not answer: {type(exc).__name__}: {exc}"
        return [failed("redis", detail[:400], FIX_UNREACHABLE)]
    return [passed("redis", f"Redis {version} answers at {safe_url(url)}")]


def persistence(conn: redis.Redis) -> list[Check]:
    try:
        found = _configured(conn)
    except redis.ResponseError:  # CONFIG refused: a managed service, or an ACL without it
        try:
            found = _inferred(_info(conn, "persistence"), time.time())
        except redis.RedisError as exc:
            return [failed("redis persistence", f"cannot tell: {exc}", FIX_UNREACHABLE)]
    except redis.RedisError as exc:
        return [failed("redis persistence", f"Redis does not answer: {exc}", FIX_UNREACHABLE)]
    ok, detail = found
    return [
        passed("redis persistence", detail)
        if ok
        else failed("redis persistence", detail, FIX_PERSISTENCE)
    ]


def _configured(conn: redis.Redis) -> tuple[bool, str]:
    """From `CONFIG GET appendonly` and `save`."""
    config: dict[str, str] = {}
    for name in ("appendonly", "appendfsync", "save"):
        raw: dict[Any, Any] = conn.config_get(name)
        config.update({_text(k): _text(v) for k, v in raw.items()})
    if config.get("appendonly") == "yes":
        return True, f"AOF on (appendfsync {config.get('appendfsync', '?')})"
    if config.get("save", "").strip():
        return True, f"RDB snapshots on (save {config['save']}); AOF off"
    return False, 'neither AOF nor RDB snapshots: appendonly no, save ""'


def _inferred(info: dict[str, Any], now: float) -> tuple[bool, str]:
    """From `INFO persistence` when CONFIG is refused: AOF on, or RDB snapshots being taken."""
    if int(info.get("aof_enabled", 0)) == 1:
        return True, "AOF on (INFO persistence: aof_enabled 1)"
    saves = int(info.get("rdb_saves", 0))  # snapshots since start (Redis 7)
    pending = int(info.get("rdb_changes_since_last_save", 0))
    age = now - float(info.get("rdb_last_save_time", 0))
    status = str(info.get("rdb_last_bgsave_status", "ok"))
    seen = f"aof_enabled 0, rdb_saves {saves}, {pending} changes unsaved for {age:.0f} s"
    if saves > 0 and status == "ok" and (pending == 0 or age <= RDB_WINDOW_SECONDS):
        return True, f"RDB snapshots taken (INFO persistence: {seen})"
    return False, f"no AOF and no recent RDB snapshot (INFO persistence: {seen})"


def _info(conn: redis.Redis, section: str) -> dict[str, Any]:
    info: dict[str, Any] = conn.info(section)
    return info


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
