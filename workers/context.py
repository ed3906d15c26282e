"""The worker process's long-lived resources (settings, Redis), shared by every job it runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import redis

from core.exceptions import ConfigurationError
from core.settings import Settings

T = TypeVar("T")


@dataclass
class WorkerContext:
    """Settings, Redis, and the long-lived clients a worker process builds once."""

    settings: Settings
    redis: redis.Redis
    resources: dict[str, Any] = field(default_factory=dict)

    def resource(self, name: str, factory: Callable[[WorkerContext], T]) -> T:
        """The process's one `name` (a Graph client, a Salesforce session), built once."""
        if name not in self.resources:
            self.resources[name] = factory(self)
        value: T = self.resources[name]
        return value

    def close(self) -> None:
        """Close every resource that can be closed (tests and worker shutdown)."""
        for value in self.resources.values():
            closer = getattr(value, "close", None)
            if callable(closer):
                closer()
        self.resources.clear()


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
    """Close and forget the process's context (tests)."""
    global _current
    if _current is not None:
        _current.close()
    _current = None


__all__ = ["ConfigurationError", "WorkerContext", "current", "install", "reset"]
