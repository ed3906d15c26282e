"""The worker process's long-lived resources (settings, Redis), shared by every job it runs."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from ingest.exceptions import ConfigurationError
from ingest.settings import Settings


@dataclass
class WorkerContext:
    settings: Settings
    redis: redis.Redis


_current: WorkerContext | None = None


def install(context: WorkerContext) -> None:
    """Make `context` the one jobs in this process use."""
    global _current
    _current = context


def current() -> WorkerContext:
    """The process's context; built from the environment when a job runs outside `ingest worker`
    (for example under plain `rq worker`)."""
    global _current
    if _current is None:
        settings = Settings.from_env()
        _current = WorkerContext(settings, redis.Redis.from_url(settings.redis_url))
    return _current


def reset() -> None:
    """Forget the process's context (tests)."""
    global _current
    _current = None


__all__ = ["ConfigurationError", "WorkerContext", "current", "install", "reset"]
