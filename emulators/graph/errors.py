"""Error bodies as Graph and Entra ID send them: Graph's OData error and AADSTS token errors."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from aiohttp import web


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def graph_error_body(
    status: int, code: str, message: str, client_request_id: str | None = None
) -> dict[str, Any]:
    """Graph's JSON error object: `{"error": {"code", "message", "innerError": {...}}}`."""
    request_id = str(uuid.uuid4())
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": _now_iso(),
                "request-id": request_id,
                "client-request-id": client_request_id or request_id,
            },
        }
    }


def graph_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    """A Graph error response (`application/json`) with the given status, code and message."""
    return web.json_response(
        graph_error_body(status, code, message), status=status, headers=headers
    )


class GraphHTTPError(web.HTTPException):
    """Raise from a handler to answer with a Graph JSON error; `status` is set per instance."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        self.status_code = status
        super().__init__(
            text=json.dumps(graph_error_body(status, code, message)),
            content_type="application/json",
            headers=headers,
        )
        self.code = code


def bad_request(message: str, code: str = "BadRequest") -> GraphHTTPError:
    return GraphHTTPError(400, code, message)


def not_found(message: str, code: str = "ResourceNotFound") -> GraphHTTPError:
    return GraphHTTPError(404, code, message)


def forbidden(message: str, code: str = "Forbidden") -> GraphHTTPError:
    return GraphHTTPError(403, code, message)


def throttled_body(status: int) -> web.Response:
    """The body of an injected 429 or 503, shaped like Graph's."""
    if status == 429:
        return graph_error(429, "TooManyRequests", "Too many requests.")
    return graph_error(503, "ServiceUnavailable", "The service is temporarily unavailable.")


# Entra ID (AADSTS) errors of the token and authorize endpoints.
AADSTS_CODES = {
    "invalid_client": 7000215,  # invalid client secret provided
    "invalid_grant": 70000,
    "unauthorized_client": 700016,
    "unsupported_grant_type": 70003,
    "invalid_request": 900144,
    "invalid_scope": 70011,
    "tenant_not_found": 90002,
}


def identity_error(
    status: int, error: str, description: str, aadsts: int | None = None
) -> web.Response:
    """An Entra ID OAuth error: `{"error", "error_description": "AADSTS…: …", "error_codes", …}`."""
    code = aadsts if aadsts is not None else AADSTS_CODES.get(error, 90000)
    trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
    body = {
        "error": error,
        "error_description": (
            f"AADSTS{code}: {description} Trace ID: {trace_id} "
            f"Correlation ID: {correlation_id} Timestamp: {_now_iso()}Z"
        ),
        "error_codes": [code],
        "timestamp": _now_iso() + "Z",
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": "https://login.microsoftonline.com/error?code=" + str(code),
    }
    return web.json_response(body, status=status)
