"""$filter text to a syntax tree: a tokenizer and a recursive-descent parser (pure).

Supported: ``eq ne gt ge lt le``, ``in (...)``, ``and or not``, parentheses; literals null,
true/false, integers, decimals, doubles, 'strings' ('' escapes a quote), dates (2026-01-05) and
date-times with an offset (2026-01-05T10:00:00Z, ...+01:00); function calls by name. Operator
precedence is the spec's: ``not`` binds to its operand, then comparison, ``and``, ``or``.
Errors name a position, never the client's text (except a plain identifier).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final, Literal

from maintainpro.analytics.odata.errors import bad_request

MAX_LENGTH: Final = 4096
MAX_DEPTH: Final = 40
MAX_NODES: Final = 800
MAX_IN_ITEMS: Final = 500
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
MAX_DECIMAL_DIGITS: Final = 18

LiteralKind = Literal["null", "bool", "int", "decimal", "double", "string", "date", "datetime"]
CompareOp = Literal["eq", "ne", "gt", "ge", "lt", "le"]
COMPARE_OPS: Final[frozenset[str]] = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})
KEYWORDS: Final[frozenset[str]] = COMPARE_OPS | {"and", "or", "not", "in", "true", "false", "null"}


@dataclass(frozen=True)
class Lit:
    """A literal value."""

    value: object
    kind: LiteralKind


@dataclass(frozen=True)
class Prop:
    """A property (column) of the entity set."""

    name: str


@dataclass(frozen=True)
class Call:
    """A function call, e.g. contains(name,'pump')."""

    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Compare:
    """A comparison of two operands."""

    op: CompareOp
    left: Node
    right: Node


@dataclass(frozen=True)
class In:
    """``operand in (literal, ...)``."""

    operand: Node
    items: tuple[Lit, ...]


@dataclass(frozen=True)
class Logical:
    """``and`` / ``or`` of two boolean expressions."""

    op: Literal["and", "or"]
    left: Node
    right: Node


@dataclass(frozen=True)
class Not:
    """``not`` of a boolean expression."""

    operand: Node


Node = Lit | Prop | Call | Compare | In | Logical | Not

TokenKind = Literal["(", ")", ",", "ident", "keyword", "string", "number", "date", "datetime"]


@dataclass(frozen=True)
class Token:
    """One token and where it starts (0-based)."""

    kind: TokenKind
    text: str
    at: int


_TOKEN: Final = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<punct>[(),])
  | (?P<string>'(?:[^']|'')*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,12})?)?(?:[Zz]|[+\- ]\d{2}:\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\w:.]))
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w.]))
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    """,
    re.VERBOSE,
)


def tokenize(text: str) -> list[Token]:
    """The tokens of a $filter; 400 at the first character that starts no token."""
    if len(text) > MAX_LENGTH:
        raise bad_request(f"$filter is longer than {MAX_LENGTH} characters")
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise bad_request(f"$filter: unexpected character at position {position}")
        group = match.lastgroup
        chunk = match.group()
        if group == "punct":
            tokens.append(Token(chunk, chunk, position))  # type: ignore[arg-type]
        elif group == "word":
            lowered = chunk.lower()
            if lowered in KEYWORDS:
                tokens.append(Token("keyword", lowered, position))
            else:
                tokens.append(Token("ident", chunk, position))
        elif group in ("string", "number", "date", "datetime"):
            tokens.append(Token(group, chunk, position))  # type: ignore[arg-type]
        position = match.end()
    return tokens


def _number(text: str, at: int) -> Lit:
    if re.fullmatch(r"-?\d+", text):
        value = int(text)
        if INT64_MIN <= value <= INT64_MAX:
            return Lit(value, "int")
    elif re.fullmatch(r"-?\d+\.\d+", text):
        digits = len(text.replace("-", "").replace(".", "").lstrip("0"))
        if digits <= MAX_DECIMAL_DIGITS:
            try:
                return Lit(Decimal(text), "decimal")
            except InvalidOperation:  # pragma: no cover - the pattern is a valid decimal
                pass
    number = float(text)
    if not math.isfinite(number):
        raise bad_request(f"$filter: number out of range at position {at}")
    return Lit(number, "double")


def _datetime(text: str, at: int) -> Lit:
    body, offset = text[:-6], text[-6:]
    if text[-1] in "Zz":
        body, offset = text[:-1], "+00:00"
    elif offset[0] == " ":
        # A "+" sent unencoded arrives as a space (form decoding); nothing else can stand there.
        offset = "+" + offset[1:]
    if "." in body:
        head, fraction = body.split(".", 1)
        body = f"{head}.{fraction[:6].ljust(6, '0')}"
    try:
        moment = dt.datetime.fromisoformat(body + offset)
    except ValueError:
        raise bad_request(f"$filter: invalid date-time at position {at}") from None
    # The warehouse keeps naive UTC.
    return Lit(moment.astimezone(dt.UTC).replace(tzinfo=None), "datetime")


def _date(text: str, at: int) -> Lit:
    try:
        return Lit(dt.date.fromisoformat(text), "date")
    except ValueError:
        raise bad_request(f"$filter: invalid date at position {at}") from None


class _Parser:
    def __init__(self, tokens: list[Token], length: int) -> None:
        self.tokens = tokens
        self.index = 0
        self.depth = 0
        self.nodes = 0
        self.length = length

    def peek(self) -> Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def where(self) -> int:
        token = self.peek()
        return token.at if token else self.length

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise bad_request("$filter ends too early")
        self.index += 1
        return token

    def expect(self, kind: TokenKind, text: str | None = None) -> Token:
        at = self.where()
        token = self.take()
        if token.kind != kind or (text is not None and token.text != text):
            raise bad_request(f"$filter: expected {text or kind} at position {at}")
        return token

    def at_keyword(self, *words: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "keyword" and token.text in words

    def count(self) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise bad_request(f"$filter has more than {MAX_NODES} terms")

    def nested(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise bad_request(f"$filter nests deeper than {MAX_DEPTH} levels")

    def parse(self) -> Node:
        node = self.or_expr()
        if self.peek() is not None:
            raise bad_request(f"$filter: unexpected text at position {self.where()}")
        return node

    def or_expr(self) -> Node:
        node = self.and_expr()
        while self.at_keyword("or"):
            self.take()
            self.count()
            node = Logical("or", node, self.and_expr())
        return node

    def and_expr(self) -> Node:
        node = self.comparison()
        while self.at_keyword("and"):
            self.take()
            self.count()
            node = Logical("and", node, self.comparison())
        return node

    def comparison(self) -> Node:
        left = self.unary()
        token = self.peek()
        if token is not None and token.kind == "keyword" and token.text in COMPARE_OPS:
            self.take()
            self.count()
            op: CompareOp = token.text  # type: ignore[assignment]
            return Compare(op, left, self.unary())
        if self.at_keyword("in"):
            self.take()
            return In(left, self.literal_list())
        return left

    def literal_list(self) -> tuple[Lit, ...]:
        self.expect("(")
        items = [self.literal()]
        while self.peek() is not None and self.peek().kind == ",":  # type: ignore[union-attr]
            self.take()
            items.append(self.literal())
            if len(items) > MAX_IN_ITEMS:
                raise bad_request(f"$filter: an in list holds at most {MAX_IN_ITEMS} values")
        self.expect(")")
        return tuple(items)

    def literal(self) -> Lit:
        at = self.where()
        node = self.primary()
        if not isinstance(node, Lit):
            raise bad_request(f"$filter: expected a literal at position {at}")
        return node

    def unary(self) -> Node:
        if self.at_keyword("not"):
            self.take()
            self.nested()
            self.count()
            node: Node = Not(self.unary())
            self.depth -= 1
            return node
        return self.primary()

    def primary(self) -> Node:
        at = self.where()
        token = self.take()
        self.count()
        if token.kind == "(":
            self.nested()
            node = self.or_expr()
            self.expect(")")
            self.depth -= 1
            return node
        if token.kind == "string":
            return Lit(token.text[1:-1].replace("''", "'"), "string")
        if token.kind == "number":
            return _number(token.text, token.at)
        if token.kind == "date":
            return _date(token.text, token.at)
        if token.kind == "datetime":
            return _datetime(token.text, token.at)
        if token.kind == "keyword" and token.text in ("true", "false"):
            return Lit(token.text == "true", "bool")
        if token.kind == "keyword" and token.text == "null":
            return Lit(None, "null")
        if token.kind == "ident":
            following = self.peek()
            if following is not None and following.kind == "(":
                return self.call(token)
            return Prop(token.text)
        raise bad_request(f"$filter: unexpected token at position {at}")

    def call(self, name: Token) -> Call:
        self.expect("(")
        self.nested()
        args: list[Node] = []
        if self.peek() is not None and self.peek().kind != ")":  # type: ignore[union-attr]
            args.append(self.or_expr())
            while self.peek() is not None and self.peek().kind == ",":  # type: ignore[union-attr]
                self.take()
                args.append(self.or_expr())
        self.expect(")")
        self.depth -= 1
        return Call(name.text.lower(), tuple(args))


def parse_filter(text: str) -> Node:
    """The syntax tree of a $filter expression; 400 (ODataError) for anything malformed."""
    tokens = tokenize(text)
    if not tokens:
        raise bad_request("$filter is empty")
    return _Parser(tokens, len(text)).parse()
