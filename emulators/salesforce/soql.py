"""A SOQL subset parser: anything outside the subset is a MALFORMED_QUERY, never a guess.

Supported: SELECT fields (dotted parent paths) or COUNT(), and parent-to-child sub-selects
`(SELECT fields FROM ChildRelationship [WHERE ...] [ORDER BY ...] [LIMIT n])` one level
deep; FROM one object; WHERE with
= != <> < > <= >=, [NOT] IN (...), LIKE, AND/OR/NOT and parentheses (AND and OR are not
mixed without parentheses, as in SOQL); semi-joins and anti-joins `field [NOT] IN (SELECT
field FROM Object [WHERE ...])` within Salesforce's limits (at most two, never under OR or
NOT, never nested, one unqualified field selected, no ORDER BY or LIMIT inside); string,
number, true/false, null, date, datetime and a few date literals (TODAY, YESTERDAY,
TOMORROW, LAST_N_DAYS:n, NEXT_N_DAYS:n, N_DAYS_AGO:n); ORDER BY with ASC/DESC and NULLS
FIRST/LAST; LIMIT; OFFSET.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from emulators.salesforce.errors import malformed_query

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
    | (?P<date>\d{4}-\d{2}-\d{2})
    | (?P<number>-?\d+(?:\.\d+)?)
    | (?P<string>'(?:[^'\\]|\\.)*')
    | (?P<op>!=|<>|<=|>=|=|<|>)
    | (?P<punct>[(),:])
    | (?P<word>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
    )""",
    re.VERBOSE,
)
_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "b": "\b",
    "f": "\f",
    '"': '"',
    "'": "'",
    "\\": "\\",
    "%": "\\%",
    "_": "\\_",
}
DATE_FUNCTIONS = ("TODAY", "YESTERDAY", "TOMORROW")
DATE_FUNCTIONS_N = ("LAST_N_DAYS", "NEXT_N_DAYS", "N_DAYS_AGO")
_UNSUPPORTED = (
    "GROUP",
    "HAVING",
    "WITH",
    "FOR",
    "USING",
    "TYPEOF",
    "UPDATE",
    "INCLUDES",
    "EXCLUDES",
)


@dataclass(frozen=True)
class Literal:
    """kind: string, number, boolean, null, date, datetime or function (a date literal)."""

    kind: str
    value: Any


@dataclass(frozen=True)
class Condition:
    """op: and/or (children), not (one child), or a comparison on `path`."""

    op: str
    path: str = ""
    values: tuple[Literal, ...] = ()
    children: tuple[Condition, ...] = ()
    subquery: Query | None = None  # a semi-join (op "in") or anti-join (op "not in")


@dataclass(frozen=True)
class Order:
    path: str
    descending: bool
    nulls_last: bool


@dataclass
class Query:
    sobject: str
    fields: list[str] = field(default_factory=list)
    count: bool = False
    where: Condition | None = None
    order: list[Order] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0
    children: list[Query] = field(default_factory=list)  # parent-to-child sub-selects


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise malformed_query(
                f"unexpected character at position {pos}: {text[pos : pos + 10]!r}"
            )
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.pos = 0
        self.joins = 0  # semi- and anti-joins seen in the outer WHERE
        self.depth = 0  # 1 while parsing a semi-join's sub-select
        self.nested = False  # True while parsing a parent-to-child sub-select

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ("eof", "")

    def next(self) -> tuple[str, str]:
        tok = self.peek()
        self.pos += 1
        return tok

    def keyword(self, *words: str) -> bool:
        """Consume the keyword sequence `words` if it comes next."""
        toks = self.tokens[self.pos : self.pos + len(words)]
        if len(toks) == len(words) and all(
            k == "word" and v.upper() == w for (k, v), w in zip(toks, words, strict=True)
        ):
            self.pos += len(words)
            return True
        return False

    def expect(self, kind: str, value: str | None = None) -> str:
        k, v = self.next()
        if k != kind or (value is not None and v.upper() != value):
            raise malformed_query(f"unexpected token: '{v or 'end of query'}'")
        return v

    def ident(self) -> str:
        k, v = self.next()
        if k != "word" or v.upper() in _UNSUPPORTED:
            raise malformed_query(f"unexpected token: '{v or 'end of query'}'")
        return v

    def query(self) -> Query:
        q = self.select()
        if self.peek()[0] != "eof":
            raise malformed_query(f"unexpected token: '{self.peek()[1]}'")
        return q

    def select(self) -> Query:
        """SELECT ... up to the end of the statement or of a parent-to-child sub-select."""
        self.expect("word", "SELECT")
        fields: list[str] = []
        children: list[Query] = []
        count = False
        if self.peek()[1].upper() == "COUNT" and self.tokens[self.pos + 1 : self.pos + 3] == [
            ("punct", "("),
            ("punct", ")"),
        ]:
            self.pos += 3
            count = True
        else:
            while True:
                if self.peek() == ("punct", "("):
                    children.append(self.child_select())
                else:
                    name = self.ident()
                    if self.peek() == ("punct", "("):
                        raise malformed_query(f"{name}(...) is not supported by the emulator")
                    fields.append(name)
                if self.peek() != ("punct", ","):
                    break
                self.next()
        self.expect("word", "FROM")
        q = Query(self.ident(), fields, count, children=children)
        if self.keyword("WHERE"):
            q.where = self.condition()
            _check_joins(q.where, under="")
        if self.keyword("ORDER", "BY"):
            q.order = self.order_list()
        if self.keyword("LIMIT"):
            q.limit = self.integer()
        if self.keyword("OFFSET"):
            q.offset = self.integer()
        return q

    def child_select(self) -> Query:
        """`(SELECT fields FROM ChildRelationship ...)` in an outer SELECT list."""
        if self.nested or self.depth:
            raise malformed_query(
                "nested parent-to-child sub-selects are not supported by the emulator"
            )
        self.expect("punct", "(")
        self.nested = True
        child = self.select()
        self.nested = False
        if child.count or child.offset:
            raise malformed_query("a parent-to-child sub-select takes fields, without OFFSET")
        self.expect("punct", ")")
        return child

    def integer(self) -> int:
        v = self.expect("number")
        if not v.isdigit():
            raise malformed_query(f"expected a non-negative integer, got {v}")
        return int(v)

    def condition(self) -> Condition:
        first = self.unary()
        joiner = ""
        parts = [first]
        while self.peek()[0] == "word" and self.peek()[1].upper() in ("AND", "OR"):
            word = self.next()[1].upper()
            if joiner and word != joiner:
                raise malformed_query(
                    "unexpected token: 'OR' (mix AND and OR only with parentheses)"
                    if word == "OR"
                    else "unexpected token: 'AND'"
                )
            joiner = word
            parts.append(self.unary())
        return first if not joiner else Condition(joiner.lower(), children=tuple(parts))

    def unary(self) -> Condition:
        if self.keyword("NOT"):
            return Condition("not", children=(self.unary(),))
        if self.peek() == ("punct", "("):
            self.next()
            inner = self.condition()
            self.expect("punct", ")")
            return inner
        path = self.ident()
        for words, op in ((("NOT", "IN"), "not in"), (("IN",), "in")):
            if self.keyword(*words):
                if [v.upper() for _, v in self.tokens[self.pos : self.pos + 2]] == ["(", "SELECT"]:
                    return Condition(op, path, subquery=self.subquery())
                return Condition(op, path, self.value_list())
        if self.keyword("LIKE"):
            value = self.value()
            if value.kind != "string":
                raise malformed_query("LIKE needs a string literal")
            return Condition("like", path, (value,))
        op = self.expect("op")
        return Condition("!=" if op == "<>" else op, path, (self.value(),))

    def value_list(self) -> tuple[Literal, ...]:
        self.expect("punct", "(")
        values = [self.value()]
        while self.peek() == ("punct", ","):
            self.next()
            values.append(self.value())
        self.expect("punct", ")")
        return tuple(values)

    def subquery(self) -> Query:
        """`(SELECT field FROM Object [WHERE ...])` as Salesforce allows it in a semi-join."""
        if self.nested:
            raise malformed_query(
                "semi join sub-selects in a parent-to-child sub-select are not supported "
                "by the emulator"
            )
        if self.depth:
            raise malformed_query(
                "Semi join sub-selects are only allowed at top level WHERE expressions "
                "and not in other semi join sub-selects"
            )
        self.joins += 1
        if self.joins > 2:
            raise malformed_query("Maximum of 2 semi join sub-selects are allowed")
        self.expect("punct", "(")
        self.expect("word", "SELECT")
        column = self.ident()
        if self.peek() == ("punct", ","):
            raise malformed_query("semi join sub-selects can only select one field")
        if "." in column or self.peek() == ("punct", "("):
            raise malformed_query(
                "The selected field in a semi join sub-select cannot traverse relationships"
            )
        self.expect("word", "FROM")
        sub = Query(self.ident(), [column])
        if self.keyword("WHERE"):
            self.depth += 1
            sub.where = self.condition()
            self.depth -= 1
        if self.peek() != ("punct", ")"):
            # ORDER BY, LIMIT, OFFSET and the rest are refused inside semi-joins
            raise malformed_query(f"unexpected token: '{self.peek()[1] or 'end of query'}'")
        self.next()
        return sub

    def value(self) -> Literal:
        kind, text = self.next()
        if kind == "string":
            return Literal("string", _unescape(text[1:-1]))
        if kind == "number":
            return Literal("number", float(text))
        if kind in ("date", "datetime"):
            return Literal(kind, text)
        upper = text.upper()
        if kind == "word" and upper in ("TRUE", "FALSE"):
            return Literal("boolean", upper == "TRUE")
        if kind == "word" and upper == "NULL":
            return Literal("null", None)
        if kind == "word" and upper in DATE_FUNCTIONS:
            return Literal("function", (upper, 0))
        if kind == "word" and upper in DATE_FUNCTIONS_N:
            self.expect("punct", ":")
            return Literal("function", (upper, self.integer()))
        raise malformed_query(f"unexpected token: '{text or 'end of query'}'")

    def order_list(self) -> list[Order]:
        out = []
        while True:
            path = self.ident()
            descending = self.keyword("DESC")
            if not descending:
                self.keyword("ASC")
            nulls_last = descending
            if self.keyword("NULLS", "FIRST"):
                nulls_last = False
            elif self.keyword("NULLS", "LAST"):
                nulls_last = True
            out.append(Order(path, descending, nulls_last))
            if self.peek() != ("punct", ","):
                return out
            self.next()


def _check_joins(cond: Condition, under: str) -> None:
    """Salesforce refuses semi- and anti-joins below OR and NOT."""
    if cond.subquery is not None and under:
        raise malformed_query(
            "Semi join sub-selects are not allowed with the 'OR' operator"
            if under == "or"
            else "NOT cannot be applied to a semi join sub-select: use NOT IN or IN instead"
        )
    for child in cond.children:
        _check_joins(child, under if cond.op == "and" else under or cond.op)


def _unescape(body: str) -> str:
    out, i = [], 0
    while i < len(body):
        if body[i] == "\\":
            nxt = body[i + 1] if i + 1 < len(body) else ""
            if nxt not in _ESCAPES:
                raise malformed_query(f"invalid escape sequence \\{nxt} in string literal")
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


def parse(text: str) -> Query:
    """Parse one SOQL statement or raise a MALFORMED_QUERY RequestError."""
    return _Parser(text).query()
