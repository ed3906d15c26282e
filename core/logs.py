"""Structured logging: JSON off a TTY, console on one, secrets and transcript text redacted."""

from __future__ import annotations

import functools
import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog
from structlog.tracebacks import ExceptionDictTransformer

# Keys whose values never reach a log line, compared case-insensitively without '_' or '-'.
_SECRET_KEYS = frozenset(
    {
        "clientstate", "secret", "clientsecret", "password", "token", "accesstoken",
        "refreshtoken", "idtoken", "validationtoken", "validationtokens", "authorization",
        "assertion", "clientassertion", "authcode", "codeverifier", "secretkey", "sessionid",
        "privatekey", "datakey", "encryptedcontent", "transcript", "text", "vtt", "content",
        "cookie", "setcookie",
    }
)  # fmt: skip
_REDACTED = "[redacted]"
# Bearer tokens and JWTs that slip into free text (error messages, URLs).
_TOKEN_PATTERNS = (
    re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]+"),
    re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
    re.compile(r"(?i)(validationToken|client_secret|code|access_token|refresh_token)=[^&\s]+"),
)


@functools.lru_cache(maxsize=4096)
def _is_secret_key(key: str) -> bool:
    return key.lower().replace("_", "").replace("-", "") in _SECRET_KEYS


def scrub_text(text: str) -> str:
    """`text` with bearer tokens, JWTs and secret query values replaced (free text: errors)."""
    # Cheap pre-checks first: this runs on every string of every log line.
    if "=" not in text and "eyJ" not in text and "earer" not in text:
        return text
    for pattern in _TOKEN_PATTERNS:
        text = pattern.sub(lambda m: m.group(0).split("=")[0] + "=" + _REDACTED
                           if "=" in m.group(0) else _REDACTED, text)  # fmt: skip
    return text


def _scrub(value: Any, depth: int = 0) -> Any:
    if depth > 6:
        return value
    if isinstance(value, dict):
        return {
            k: (_REDACTED if isinstance(k, str) and _is_secret_key(k) else _scrub(v, depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrub(v, depth + 1) for v in value]
    if isinstance(value, str):
        return scrub_text(value)
    return value


def redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Mask secret keys anywhere in the event, and tokens inside free text."""
    for key, value in event_dict.items():
        if _is_secret_key(key):
            event_dict[key] = _REDACTED
        elif isinstance(value, str | dict | list | tuple):
            event_dict[key] = _scrub(value)
    return event_dict


def configure(level: str = "INFO", stream: TextIO | None = None, json: bool | None = None) -> None:
    """Configure structlog once per process; JSON unless writing to a terminal."""
    out = stream or sys.stderr
    use_json = (not out.isatty()) if json is None else json
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if use_json:
        renderer: list[Any] = [
            structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False)),
            redact,
            structlog.processors.JSONRenderer(),
        ]
    else:
        renderer = [
            structlog.processors.format_exc_info,
            redact,
            structlog.dev.ConsoleRenderer(colors=False),
        ]
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    structlog.configure(
        processors=shared + renderer,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=True,
    )
    _route_stdlib(out, shared, renderer)


class _StdlibHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The root handler `configure` installs (its class marks it, to be replaced on reconfig)."""


def _route_stdlib(out: TextIO, shared: list[Any], renderer: list[Any]) -> None:
    """Libraries log through stdlib logging (RQ: job arguments, exception text; msal, azure,
    aiohttp): their lines take the same processors, redaction included, to the same stream.
    RQ adds no handler of its own when the root logger has one, and then propagates."""
    handler = _StdlibHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StdlibHandler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)  # libraries stay quiet unless something is wrong
    # RQ gives its loggers handlers of their own (and stops propagation) when it finds none
    # above them; any it gave before this call would write unredacted lines: take them back.
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if (name == "rq" or name.startswith("rq.")) and isinstance(logger, logging.Logger):
            for own in list(logger.handlers):
                logger.removeHandler(own)
            logger.propagate = True
    for noisy in ("azure", "msal", "httpx", "aiohttp.access", "kiota_http"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
