"""The requests bench/fuzz.py sends: genuine notifications, their mutations, and broken HTTP.

`Cases(material, rng).complete()` makes one whole request (head and body as framed: the
receiver must answer it); `.unfinished()` one whose body never ends. Each `Case` says whether
it is well-formed HTTP (its head and framing valid, whatever its body), so that a well-formed
request closed without an answer can be told from a malformed one that aiohttp may drop.
"""

from __future__ import annotations

import gzip
import json
import random
import uuid
import zlib
from dataclasses import dataclass
from typing import Any

from core.defaults import MAX_BODY_BYTES

PATHS = ("/graph/notifications", "/graph/lifecycle")
OTHER_PATHS = ("/healthz", "/readyz", "/metrics", "/", "/graph", "/graph/notifications/",
               "//graph/notifications", "/graph/%6Eotifications", "/GRAPH/NOTIFICATIONS",
               "/graph/notifications;x=1", "/graph/../graph/notifications")  # fmt: skip
CONTENT_TYPES = (b"application/json", b"application/json; charset=utf-8", b"APPLICATION/JSON",
                 b"application/vnd.ms+json", b"application/json; charset=latin-1",
                 b"application/json;;;", b"text/plain", b"application/xml", b"",
                 b"multipart/form-data; boundary=x", b"application/x-www-form-urlencoded",
                 b"json", b"application/json\x00", b"application/\xffjson")  # fmt: skip
ENCODINGS = (b"gzip", b"deflate", b"br", b"zstd", b"identity", b"x-gzip", b"gzip, deflate",
             b"compress", b"bogus", b"")  # fmt: skip
FIELDS = ("id", "subscriptionId", "subscriptionExpirationDateTime", "changeType", "clientState",
          "tenantId", "resource", "resourceData", "encryptedContent", "lifecycleEvent",
          "organizationId", "sequenceNumber", "validationTokens", "value")  # fmt: skip
TOKENS = (b'"', b"\\", b"{", b"}", b"[", b"]", b",", b":", b"\x00", b"\xff", b"\xc3", b"\\ud800",
          b"\\u0000", b"1e999999", b"-", b"NaN", b"Infinity", b"null", b"true", b" " * 64,
          b"\xef\xbb\xbf", b"\r\n", b'"value"', b'"subscriptionId"')  # fmt: skip


@dataclass(frozen=True)
class Case:
    kind: str  # which generator made it, for the counts
    data: bytes  # every byte that is sent
    complete: bool  # the request is whole: it must be answered
    well_formed: bool  # its head and framing are valid HTTP/1.1
    pipelined: bool = False  # a genuine request follows it on the same connection
    # Over the size limit on the wire: the receiver may answer 413 and close before it is all
    # sent, and a client still sending then gets a reset that can swallow the answer.
    oversized: bool = False


@dataclass(frozen=True)
class Material:
    """What a genuine notification needs: a known subscription, its clientState, the tenant."""

    sub: str
    state: str
    tenant: str

    def item(self, kind: str = "callRecord") -> dict[str, Any]:
        cr = str(uuid.uuid4())
        if kind == "lifecycle":
            return {"subscriptionId": self.sub, "clientState": self.state, "tenantId": self.tenant,
                    "lifecycleEvent": "reauthorizationRequired",
                    "subscriptionExpirationDateTime": "2026-12-03T00:00:00+00:00"}  # fmt: skip
        return {
            "id": str(uuid.uuid4()), "subscriptionId": self.sub, "clientState": self.state,
            "changeType": "created", "resource": f"communications/callRecords/{cr}",
            "subscriptionExpirationDateTime": "2026-12-03T00:00:00+00:00",
            "resourceData": {"@odata.type": "#Microsoft.Graph.callRecord",
                             "@odata.id": f"communications/callRecords/{cr}", "id": cr},
            "tenantId": self.tenant,
        }  # fmt: skip


class Cases:
    def __init__(self, material: Material, rng: random.Random) -> None:
        self.m = material
        self.rng = rng

    # -- bodies ----------------------------------------------------------------------------
    def genuine_doc(self) -> dict[str, Any]:
        r = self.rng
        kind = r.choice(("callRecord", "callRecord", "lifecycle"))
        doc: dict[str, Any] = {"value": [self.m.item(kind) for _ in range(r.choice((1, 1, 2, 50)))]}
        if r.random() < 0.2:
            doc["validationTokens"] = [
                self.text(r.randrange(1, 400)) for _ in range(r.randrange(3))
            ]
        return doc

    def text(self, length: int) -> str:
        r = self.rng
        pools = ("abcdefghijklmnopqrstuvwxyz0123456789-", "\x00\x1f\"\\/\u2028\ud800\udfff\uffff",
                 "éü中文🙂", "'()%+=_.~:@!$&*;,?#[]")  # fmt: skip
        pool = "".join(r.sample(pools, r.randrange(1, len(pools) + 1)))
        return "".join(r.choice(pool) for _ in range(length))

    def value(self, depth: int = 0) -> Any:
        r = self.rng
        pick = r.randrange(12 if depth < 3 else 8)
        if pick == 0:
            return None
        if pick == 1:
            return r.random() < 0.5
        if pick == 2:
            return r.choice((0, -1, 2**63, -(2**64), 10**400, r.randrange(-(10**9), 10**9)))
        if pick == 3:
            return r.choice((0.5, -0.0, 1e308, float("nan"), float("inf"), float("-inf")))
        if pick in (4, 5, 6):
            return self.text(r.choice((0, 1, 10, 100, 5000)))
        if pick == 7:
            return r.choice((self.m.sub, self.m.state, self.m.tenant, self.m.tenant.upper(),
                             "communications/callRecords/" + str(uuid.uuid4()),
                             f"communications/callRecords('{uuid.uuid4()}')",
                             "users/x/onlineMeetings('a')/transcripts('b')",
                             "communications/callRecords/../../me?$select=x", "created",
                             "updated", "deleted", "reauthorizationRequired", "missed",
                             "subscriptionRemoved"))  # fmt: skip
        if pick in (8, 9):
            return [self.value(depth + 1) for _ in range(r.randrange(4))]
        keys = [self.field_name() for _ in range(r.randrange(5))]
        return {k: self.value(depth + 1) for k in keys}

    def field_name(self) -> str:
        r = self.rng
        name = r.choice(FIELDS) if r.random() < 0.8 else self.text(r.randrange(1, 20))
        if r.random() < 0.3:
            name = "".join(c.upper() if r.random() < 0.5 else c.lower() for c in name)
        return name

    def mutate_doc(self, doc: Any) -> Any:
        """Replace, delete or add a value somewhere inside `doc`, a few times."""
        r = self.rng
        for _ in range(r.randrange(1, 5)):
            if not isinstance(doc, dict | list):
                return self.value()
            node: dict[Any, Any] | list[Any] = doc
            while node:  # down to a random container; `key` is one of its keys
                key = r.choice(list(node)) if isinstance(node, dict) else r.randrange(len(node))
                child = node[key]
                if not (isinstance(child, dict | list) and child and r.random() < 0.7):
                    break
                node = child
            op = r.randrange(3)
            if node and op == 0:
                node[key] = self.value()
            elif node and op == 1:
                del node[key]
            elif isinstance(node, dict):
                node[self.field_name()] = self.value()
            else:
                node.append(self.value())
        return doc

    def dumps(self, doc: Any) -> bytes:
        r = self.rng
        text = json.dumps(doc, ensure_ascii=r.random() < 0.7, indent=r.choice((None, None, 1)))
        return text.encode("utf-8", "surrogatepass")

    def mutate_bytes(self, data: bytes) -> bytes:
        r = self.rng
        buf = bytearray(data)
        for _ in range(r.randrange(1, 8)):
            at = r.randrange(len(buf) + 1)
            op = r.randrange(6)
            if op == 0 and buf:
                buf[min(at, len(buf) - 1)] ^= 1 << r.randrange(8)
            elif op == 1:
                buf[at:at] = r.choice(TOKENS)
            elif op == 2:
                del buf[at : at + r.randrange(1, 32)]
            elif op == 3:
                end = r.randrange(at, len(buf) + 1)
                buf[at:at] = buf[at:end]
            elif op == 4:
                buf[at:at] = r.randbytes(r.randrange(1, 16))
            else:
                del buf[at:]
        return bytes(buf)

    def body(self) -> tuple[str, bytes]:
        r = self.rng
        pick = r.randrange(10)
        if pick <= 1:
            return "genuine", self.dumps(self.genuine_doc())
        if pick <= 4:
            return "json mutation", self.dumps(self.mutate_doc(self.genuine_doc()))
        if pick <= 6:
            return "byte mutation", self.mutate_bytes(self.dumps(self.genuine_doc()))
        if pick == 7:
            return "random bytes", r.randbytes(r.choice((0, 1, 16, 1000, 70_000)))
        if pick == 8:
            depth = r.choice((100, 1000, 100_000))
            opener, closer = r.choice(((b"[", b"]"), (b'{"a":', b"}")))
            return "deep nesting", b'{"value":' + opener * depth + b"0" + closer * depth + b"}"
        count = r.choice((1000, 4096, 4097, 20_000))
        item = json.dumps(self.m.item() if r.random() < 0.5 else 0).encode()
        return "many items", b'{"value":[' + b",".join([item] * count) + b"]}"

    # -- requests --------------------------------------------------------------------------
    def head(self, path: bytes, headers: list[tuple[bytes, bytes]], method: bytes = b"POST",
             version: bytes = b"HTTP/1.1") -> bytes:  # fmt: skip
        lines = [method + b" " + path + b" " + version]
        lines += [name + b": " + value for name, value in headers]
        return b"\r\n".join(lines) + b"\r\n\r\n"

    def target(self) -> tuple[bytes, bool]:
        r = self.rng
        path = r.choice(PATHS) if r.random() < 0.85 else r.choice(OTHER_PATHS)
        pick = r.randrange(10)
        if pick < 6:
            return path.encode(), True
        if pick < 9:
            token = r.choice((
                "Validation%3A%20Testing%20client%20application%20reachability",
                "".join(f"%{b:02X}" for b in r.randbytes(r.randrange(1, 64))),
                "%zz%", "%", "", "a+b%2Bc", "x" * 8193, "x" * r.randrange(1, 8192),
                self.text(20).encode("utf-8", "surrogatepass").hex(),
            ))  # fmt: skip
            name = r.choice(("validationToken", "validationtoken", "VALIDATIONTOKEN"))
            extra = "&validationToken=again" if r.random() < 0.2 else ""
            return f"{path}?{name}={token}{extra}".encode(), True
        raw = path.encode() + b"?" + r.randbytes(r.randrange(1, 40)).replace(b" ", b"")
        return raw, False

    def complete(self) -> Case:
        r = self.rng
        kind, body = self.body()
        path, path_ok = self.target()
        content_type = r.choice(CONTENT_TYPES) if r.random() < 0.3 else b"application/json"
        headers: list[tuple[bytes, bytes]] = [(b"Host", b"fuzz")]
        if content_type:
            headers.append((b"Content-Type", content_type))
        well_formed = path_ok and b"\x00" not in content_type
        if r.random() < 0.15:
            encoding = r.choice(ENCODINGS)
            if encoding in (b"gzip", b"x-gzip") and r.random() < 0.7:
                body = gzip.compress(body)
            elif encoding == b"deflate" and r.random() < 0.7:
                body = zlib.compress(body)
            elif r.random() < 0.3:
                body = gzip.compress(b"\0" * (2 * 1024 * 1024))  # 2 MiB once decoded
            headers.append((b"Content-Encoding", encoding))
            kind += ", encoded"
        if r.random() < 0.1:
            headers.append((b"Expect", b"100-continue"))
        framing = r.randrange(12)
        if framing < 7:
            headers.append((b"Content-Length", str(len(body)).encode()))
            payload = body
        elif framing < 9:
            headers.append((b"Transfer-Encoding", b"chunked"))
            payload = self.chunked(body, terminated=True)
            kind += ", chunked"
        else:
            kind += ", bad framing"
            well_formed = False
            payload, extra = self.bad_framing(body)
            headers += extra
        pipelined = False
        data = self.head(path, headers) + payload
        if r.random() < 0.15:
            kind += ", bad head"
            well_formed = False
            data = self.bad_head(data)
        elif well_formed and r.random() < 0.15:
            follow = self.dumps({"value": [self.m.item()]})
            data += self.head(b"/graph/notifications", [
                (b"Host", b"fuzz"), (b"Content-Type", b"application/json"),
                (b"Content-Length", str(len(follow)).encode())]) + follow  # fmt: skip
            pipelined = True
            kind += ", pipelined"
        complete = not (kind.endswith("bad framing") and self.declares_more(headers, payload))
        oversized = len(payload) > MAX_BODY_BYTES
        return Case(kind, data, complete, well_formed, pipelined, oversized)

    @staticmethod
    def declares_more(headers: list[tuple[bytes, bytes]], payload: bytes) -> bool:
        """A Content-Length that a lenient parser reads as more than the payload: then the
        request never ends (the body deadline closes it)."""
        for name, value in headers:
            if name == b"Content-Length":
                try:
                    if int(value.strip().split(b",")[0]) > len(payload):
                        return True
                except ValueError:
                    pass
        return False

    def chunked(self, body: bytes, terminated: bool) -> bytes:
        r = self.rng
        out, at = [], 0
        while at < len(body):
            size = min(len(body) - at, r.choice((1, 7, 100, 4096, 65536)))
            ext = b";name=value" if r.random() < 0.05 else b""
            out.append(f"{size:x}".encode() + ext + b"\r\n" + body[at : at + size] + b"\r\n")
            at += size
        if terminated:
            out.append(b"0\r\n\r\n")
        return b"".join(out)

    def bad_framing(self, body: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        r = self.rng
        n = len(body)
        pick = r.randrange(7)
        if pick == 0:  # shorter than the body: the rest reads as the next request
            return body, [(b"Content-Length", str(r.randrange(n + 1)).encode())]
        if pick == 1:
            value = r.choice((b"-1", b"abc", b"+5", b" 5", b"0x10", b"1" * 30, b"", b"5, 5"))
            return body, [(b"Content-Length", value)]
        if pick == 2:
            return body, [(b"Content-Length", str(n).encode()),
                          (b"Content-Length", str(n + r.randrange(2)).encode())]  # fmt: skip
        if pick == 3:
            return self.chunked(body, True), [(b"Content-Length", str(n).encode()),
                                              (b"Transfer-Encoding", b"chunked")]  # fmt: skip
        if pick == 4:
            size = r.choice((b"zz", b"-1", b"fffffffffffffffff", b"", b"1 1", b"0x10"))
            return size + b"\r\n" + body + b"\r\n0\r\n\r\n", [(b"Transfer-Encoding", b"chunked")]
        if pick == 5:
            te = r.choice((b"gzip", b"chunked, gzip", b"identity", b"chunked, chunked", b"bogus"))
            return self.chunked(body, True), [(b"Transfer-Encoding", te)]
        return body, []  # no framing at all: the body reads as the next request

    def bad_head(self, data: bytes) -> bytes:
        r = self.rng
        head, sep, rest = data.partition(b"\r\n\r\n")
        pick = r.randrange(8)
        if pick == 0:
            head += b"\r\nX-Folded: a\r\n continued"
        elif pick == 1:
            head += b"\r\nNo colon here"
        elif pick == 2:
            head += b"\r\nX-Big: " + b"a" * r.choice((8000, 9000, 70_000))
        elif pick == 3:
            head += b"".join(b"\r\nX-H%d: v" % i for i in range(r.choice((100, 200, 1000))))
        elif pick == 4:
            head = head.replace(b"\r\n", b"\n")
            sep = b"\n\n"
        elif pick == 5:
            head = head.replace(b"POST", r.choice((b"GET", b"PUT", b"post", b"P0ST", b"HEAD",
                                                   b"OPTIONS", b"DELETE", b"\xff")), 1)  # fmt: skip
        elif pick == 6:
            head = head.replace(b"HTTP/1.1", r.choice((b"HTTP/1.0", b"HTTP/2.0", b"HTTP/9.9",
                                                       b"HTTX/1.1", b"")), 1)  # fmt: skip
        else:
            head += b"\r\nX-Bytes: " + r.randbytes(20).replace(b"\r", b"").replace(b"\n", b"")
        return head + sep + rest

    def unfinished(self) -> Case:
        r = self.rng
        body = self.dumps(self.genuine_doc())
        if r.random() < 0.5:
            declared = len(body) + r.randrange(1, 1000)
            headers = [(b"Host", b"fuzz"), (b"Content-Type", b"application/json"),
                       (b"Content-Length", str(declared).encode())]  # fmt: skip
            return Case("unfinished, short body", self.head(b"/graph/notifications", headers)
                        + body, False, True)  # fmt: skip
        headers = [(b"Host", b"fuzz"), (b"Content-Type", b"application/json"),
                   (b"Transfer-Encoding", b"chunked")]  # fmt: skip
        data = self.head(b"/graph/notifications", headers) + self.chunked(body, terminated=False)
        return Case("unfinished, chunked", data, False, True)
