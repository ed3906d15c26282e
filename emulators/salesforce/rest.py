"""The REST API under /services/data/vXX.X/: one dispatcher that composite subrequests reuse."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from emulators.salesforce import composite
from emulators.salesforce.errors import SfError, not_found
from emulators.salesforce.pages import Cursors
from emulators.salesforce.query import Runner
from emulators.salesforce.records import Org
from emulators.salesforce.schema import SObject, normalize_id

VERSIONS = [f"{v}.0" for v in range(31, 67)]
MAX_SOQL_LENGTH = 100_000
_VERSION_RE = re.compile(r"^v(\d{2,3}\.\d)$")


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    route: str = ""


def versions_body() -> list[dict[str, str]]:
    return [{"label": f"API {v}", "url": f"/services/data/v{v}", "version": v} for v in VERSIONS]


class Api:
    """Dispatches (method, path under /services/data/, query, JSON body) to a Reply."""

    def __init__(self, org: Org, daily_limit: int) -> None:
        self.org = org
        self.daily_limit = daily_limit
        self.used = 0  # API calls counted today (set by the app)
        self.cursors = Cursors()  # query batches; its batch size is configurable

    def handle(
        self, method: str, path: str, query: Mapping[str, str], body: Any, nested: bool = False
    ) -> Reply:
        parts = [unquote(p) for p in path.strip("/").split("/")]
        m = _VERSION_RE.match(parts[0]) if parts else None
        if m is None or m.group(1) not in VERSIONS:
            return Reply(404, not_found().body(), route="unknown")
        version, rest = m.group(1), parts[1:]
        route = f"{method} {_route_name(rest)}"
        try:
            reply = self._dispatch(method, version, rest, query, body, nested)
        except SfError as exc:
            reply = Reply(exc.status, exc.body())
        reply.route = route
        return reply

    def _dispatch(
        self,
        method: str,
        version: str,
        rest: list[str],
        query: Mapping[str, str],
        body: Any,
        nested: bool,
    ) -> Reply:
        head = rest[0] if rest else ""
        if not rest or rest == [""]:
            names = ("sobjects", "query", "queryAll", "composite", "limits")
            return Reply(200, {n: f"/services/data/v{version}/{n}" for n in names})
        if head in ("query", "queryAll") and method == "GET":
            return self._query(version, head, rest[1:], query)
        if head == "limits" and len(rest) == 1 and method == "GET":
            remaining = max(self.daily_limit - self.used, 0)
            return Reply(
                200, {"DailyApiRequests": {"Max": self.daily_limit, "Remaining": remaining}}
            )
        if head == "composite":
            if nested and len(rest) == 1:
                raise SfError("INVALID_BATCH_REQUEST", "A composite request can't be nested")
            return composite.route(self, method, version, rest[1:], query, body)
        if head == "sobjects":
            return self._sobjects(method, version, rest[1:], query, body)
        raise not_found()

    def _query(self, version: str, head: str, rest: list[str], query: Mapping[str, str]) -> Reply:
        """A query's first batch, or a later one by `query/{locator}-{offset}`."""
        if rest:
            locator, _, start = rest[0].partition("-")
            if len(rest) > 1:
                raise SfError("INVALID_QUERY_LOCATOR", "invalid query locator", status=400)
            return Reply(200, self.cursors.more(version, head, locator, start))
        if "q" not in query:
            raise SfError("MALFORMED_QUERY", "the q parameter is required")
        if len(query["q"]) > MAX_SOQL_LENGTH:
            # "By default, SOQL statements can't exceed 100,000 characters in length. For SOQL
            # statements that exceed this maximum length, the API returns a MALFORMED_QUERY
            # exception code; no result rows are returned." (SOQL and SOSL Reference)
            raise SfError(
                "MALFORMED_QUERY",
                f"SOQL statements cannot be longer than {MAX_SOQL_LENGTH} characters",
            )
        result = Runner(self.org, version).run(query["q"], head == "queryAll")
        return Reply(200, self.cursors.first(version, head, result["totalSize"], result["records"]))

    def _sobjects(
        self, method: str, version: str, rest: list[str], query: Mapping[str, str], body: Any
    ) -> Reply:
        if not rest:
            if method != "GET":
                raise _method_not_allowed(method)
            return Reply(200, self.describe_global(version))
        obj = self.org.sobject(rest[0])
        base = f"/services/data/v{version}/sobjects/{obj.name}"
        if len(rest) == 1:
            if method == "POST":
                rec = self.org.create(obj, body)
                return Reply(
                    201,
                    {"id": rec["Id"], "success": True, "errors": []},
                    {"Location": f"{base}/{rec['Id']}"},
                )
            if method == "GET":
                return Reply(
                    200,
                    {"objectDescribe": self.describe(obj, version, brief=True), "recentItems": []},
                )
            raise _method_not_allowed(method)
        if len(rest) == 2 and rest[1] == "describe" and method == "GET":
            return Reply(200, self.describe(obj, version))
        if len(rest) == 2:
            if method == "GET":
                rec = self.org.get(obj, rest[1])
                return Reply(200, self.shape(obj, rec, version, query.get("fields")))
            if method == "PATCH":
                _not_in_body(body, "Id")
                self.org.update(obj, rest[1], body)
                return Reply(204)
            if method == "DELETE":
                self.org.delete(obj, rest[1])
                return Reply(204)
            raise _method_not_allowed(method)
        if len(rest) == 3:
            return self._by_field(method, version, obj, rest[1], rest[2], query, body)
        raise not_found()

    def _by_field(
        self,
        method: str,
        version: str,
        obj: SObject,
        name: str,
        value: str,
        query: Mapping[str, str],
        body: Any,
    ) -> Reply:
        f = obj.get(name)
        if method == "GET" and f is None and normalize_id(name) is not None:
            rec = self.org.get(obj, name)  # a blob: sobjects/ContentVersion/{id}/VersionData
            blob = obj.get(value)
            if blob is None or blob.type != "base64" or not rec.get(blob.name):
                raise not_found()
            return Reply(
                200, base64.b64decode(rec[blob.name]), {"Content-Type": "application/octet-stream"}
            )
        if f is None or not (f.external_id or f.name == "Id"):
            raise not_found(
                f"Provided external ID field does not exist or is not accessible: {name}"
            )
        matches = self.org.find(obj, f.name, value)
        if len(matches) > 1:
            urls = [f"/services/data/v{version}/sobjects/{obj.name}/{m['Id']}" for m in matches]
            return Reply(300, urls)
        if method == "PATCH":
            # "Do not specify Id or an external ID field in the request body or an error is
            # generated." (sObject Rows by External ID)
            _not_in_body(body, "Id", f.name)
            if query.get("updateOnly") == "true" and not matches:
                raise not_found()
            rec, created = self.org.upsert(obj, f.name, value, body)
            result = {"id": rec["Id"], "success": True, "errors": [], "created": created}
            if created:
                location = f"/services/data/v{version}/sobjects/{obj.name}/{rec['Id']}"
                return Reply(201, result, {"Location": location})
            return Reply(204) if float(version) < 46 else Reply(200, result)
        if not matches:
            raise not_found()
        if method == "GET":
            return Reply(200, self.shape(obj, matches[0], version, query.get("fields")))
        if method == "DELETE":
            self.org.delete(obj, matches[0]["Id"])
            return Reply(204)
        raise _method_not_allowed(method)

    # -- shapes ---------------------------------------------------------------------------

    def shape(
        self, obj: SObject, rec: dict[str, Any], version: str, fields: str | None = None
    ) -> dict[str, Any]:
        names = [obj.get(n) for n in fields.split(",")] if fields else list(obj.fields.values())
        url = f"/services/data/v{version}/sobjects/{obj.name}/{rec['Id']}"
        out: dict[str, Any] = {"attributes": {"type": obj.name, "url": url}}
        for f in names:
            if f is None:
                raise SfError("INVALID_FIELD", f"No such column on entity '{obj.name}'")
            value = rec.get(f.name)
            out[f.name] = f"{url}/{f.name}" if f.type == "base64" and value else value
        return out

    def describe(self, obj: SObject, version: str, brief: bool = False) -> dict[str, Any]:
        base = f"/services/data/v{version}/sobjects/{obj.name}"
        out: dict[str, Any] = {
            "name": obj.name,
            "label": obj.label,
            "labelPlural": obj.label_plural,
            "keyPrefix": obj.key_prefix,
            "custom": obj.custom,
            "createable": obj.createable,
            "updateable": obj.createable,
            "deletable": True,
            "queryable": True,
            "retrieveable": True,
            "searchable": True,
            "layoutable": True,
            "activateable": False,
            "customSetting": False,
            "deprecatedAndHidden": False,
            "feedEnabled": False,
            "mergeable": False,
            "replicateable": True,
            "triggerable": True,
            "undeletable": True,
            "urls": {
                "sobject": base,
                "describe": f"{base}/describe",
                "rowTemplate": f"{base}/{{ID}}",
            },
        }
        if brief:
            return out
        out["fields"] = [f.describe() for f in obj.fields.values()]
        out["childRelationships"] = [
            {
                "childSObject": child.name,
                "field": f.name,
                "relationshipName": f.child_relationship,
                "cascadeDelete": f.cascade_delete,
            }
            for child in self.org.schema.objects.values()
            for f in child.fields.values()
            if f.child_relationship and obj.name in f.reference_to
        ]
        return out

    def describe_global(self, version: str) -> dict[str, Any]:
        objs = sorted(self.org.schema.objects.values(), key=lambda o: o.name)
        return {
            "encoding": "UTF-8",
            "maxBatchSize": 200,
            "sobjects": [self.describe(o, version, brief=True) for o in objs],
        }


def _route_name(rest: list[str]) -> str:
    """A stable label for stats: ids and external id values are replaced by placeholders."""
    if not rest:
        return "resources"
    if rest[0] in ("query", "queryAll") and len(rest) > 1:
        return f"{rest[0]}/{{locator}}"
    if rest[0] == "sobjects" and len(rest) > 1:
        tail = ["{id}", "{value}"] if len(rest) == 4 else ["{id}"] if len(rest) == 3 else []
        if len(rest) == 3 and rest[2] == "describe":
            tail = ["describe"]
        if len(rest) == 4:
            tail = [rest[2], "{value}"]
        return "/".join(["sobjects", rest[1], *tail])
    return "/".join(rest)


def _not_in_body(body: Any, *names: str) -> None:
    """The record's id (and an upsert's key) go in the URL; Salesforce refuses them in the body."""
    sent = {k.lower(): k for k in body} if isinstance(body, dict) else {}
    for name in names:
        if name.lower() in sent:
            raise SfError(
                "INVALID_FIELD",
                f"The {sent[name.lower()]} field should not be specified in the sobject data.",
            )


def _method_not_allowed(method: str) -> SfError:
    return SfError("METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed.", status=405)
