"""Salesforce REST errors: an HTTP status plus the `[{"message", "errorCode", "fields"}]` list.

SfError                 one or more errors of one record or request
  └─ RequestError       the whole request is bad (body types, unknown fields, malformed
                        query): a collection fails as a whole instead of item by item
"""

from __future__ import annotations


class SfError(Exception):
    """Errors Salesforce would answer with `status` and a JSON list of error objects."""

    def __init__(
        self, code: str, message: str, fields: list[str] | None = None, status: int = 400
    ) -> None:
        super().__init__(message)
        self.status = status
        self.errors: list[dict[str, object]] = [
            {"message": message, "errorCode": code, "fields": list(fields or [])}
        ]

    @property
    def code(self) -> str:
        return str(self.errors[0]["errorCode"])

    def body(self) -> list[dict[str, object]]:
        """The REST body: `fields` only where Salesforce sends it (record errors)."""
        return [{k: v for k, v in e.items() if k != "fields" or v} for e in self.errors]

    def item_errors(self) -> list[dict[str, object]]:
        """The form used inside sObject Collections results: `statusCode`, not `errorCode`."""
        return [
            {"statusCode": e["errorCode"], "message": e["message"], "fields": e["fields"]}
            for e in self.errors
        ]


class RequestError(SfError):
    """A request-level error: never reported per item."""


def not_found(message: str = "The requested resource does not exist") -> SfError:
    return SfError("NOT_FOUND", message, status=404)


def malformed_query(message: str) -> RequestError:
    return RequestError("MALFORMED_QUERY", message)
