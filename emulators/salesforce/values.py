"""Field values: JSON in, Salesforce's stored form out, with Salesforce's type and range errors."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from typing import Any

from emulators.salesforce.errors import RequestError, SfError
from emulators.salesforce.schema import NUMBER_TYPES, Field

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DATETIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})?$"
)


def format_datetime(value: dt.datetime) -> str:
    """Salesforce's JSON form: 2026-11-20T15:00:00.000+0000 (always UTC)."""
    value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def parse_datetime(text: str) -> dt.datetime | None:
    """An ISO 8601 date-time with an optional offset (UTC when absent), or None."""
    m = _DATETIME_RE.match(text)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    micro = int((m.group(7) or ".0")[1:].ljust(6, "0")[:6])
    tz = dt.UTC
    if m.group(8) and m.group(8) != "Z":
        sign = -1 if m.group(8)[0] == "-" else 1
        digits = m.group(8)[1:].replace(":", "")
        tz = dt.timezone(sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        return dt.datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
    except ValueError:
        return None


def parse_date(text: str) -> dt.date | None:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def _parser_error(f: Field, value: Any) -> RequestError:
    kind = {"datetime": "datetime", "date": "date", "boolean": "boolean"}.get(f.type, f.type)
    return RequestError(
        "JSON_PARSER_ERROR",
        f"Cannot deserialize instance of {kind} from {type(value).__name__} value {value!r}"
        f" or request may be missing a required field (field {f.name})",
    )


def coerce(f: Field, value: Any) -> Any:
    """The stored form of a JSON value for field `f`; a RequestError when the type is wrong."""
    if value is None:
        return False if f.type == "boolean" else None
    if f.type == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _parser_error(f, value)
    if f.type in NUMBER_TYPES:
        if isinstance(value, bool):
            raise _parser_error(f, value)
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise _parser_error(f, value) from None
        if not isinstance(value, int | float):
            raise _parser_error(f, value)
        return int(value) if f.type == "int" else float(value)
    if not isinstance(value, str):
        raise _parser_error(f, value)
    if f.type == "datetime":
        parsed = parse_datetime(value)
        if parsed is None:
            raise _parser_error(f, value)
        return format_datetime(parsed)
    if f.type == "date":
        if parse_date(value[:10]) is None:
            raise _parser_error(f, value)
        return value[:10]
    if f.type == "base64":
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise _parser_error(f, value) from None
    return value


def check(f: Field, value: Any) -> None:
    """Record-level value errors: too long, bad e-mail, number out of range."""
    if value is None:
        return
    if isinstance(value, str) and f.length and f.type != "base64" and len(value) > f.length:
        preview = value[:20] + ("..." if len(value) > 20 else "")
        raise SfError(
            "STRING_TOO_LONG",
            f"{f.label}: data value too large: {preview} (max length={f.length})",
            [f.name],
        )
    if f.restricted and value not in f.picklist:
        raise SfError(
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            f"{f.label}: bad value for restricted picklist field: {value}",
            [f.name],
        )
    if f.type == "email" and not EMAIL_RE.match(value):
        raise SfError(
            "INVALID_EMAIL_ADDRESS", f"{f.label}: invalid email address: {value}", [f.name]
        )
    too_big = f.precision and abs(round(value, f.scale)) >= 10 ** (f.precision - f.scale)
    if f.type in NUMBER_TYPES and too_big:
        raise SfError(
            "NUMBER_OUTSIDE_VALID_RANGE",
            f"{f.label}: value outside of valid range on numeric field: {value}",
            [f.name],
        )
