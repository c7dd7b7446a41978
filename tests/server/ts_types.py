"""A small, strict reader of the TypeScript declarations in ``labextension/src/types.ts``, and a checker of
JSON values against them, so a test can hold the extension's interfaces to what the routes really send.

It reads only what that file may hold: ``export interface``, ``export type``, ``export const X = [...] as
const`` and ``export const X = 365;`` (a whole number), with primitive, literal, array, union, object and
named types; anything else is an error, never skipped, so a declaration the test cannot read fails the test
instead of escaping it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

PRIMITIVES = ("string", "number", "boolean", "null")
_TOKEN = re.compile(
    r"\s+|//[^\n]*|/\*.*?\*/|(?P<string>'(?:[^'\\\n]|\\.)*')|(?P<word>[A-Za-z_$][\w$]*)|(?P<number>\d+)|(?P<mark>[{}()\[\];:?|,=])",
    re.DOTALL,
)


class TypeScriptError(ValueError):
    """The file holds something this reader does not understand."""


@dataclass(frozen=True)
class Primitive:
    name: str


@dataclass(frozen=True)
class Literal:
    value: str | bool


@dataclass(frozen=True)
class Array:
    element: Type


@dataclass(frozen=True)
class Union:
    members: tuple[Type, ...]


@dataclass(frozen=True)
class Named:
    name: str


@dataclass(frozen=True)
class ElementOf:
    """``(typeof NAME)[number]``: any element of a constant list."""

    name: str


@dataclass(frozen=True)
class Member:
    type: Type
    optional: bool


@dataclass(frozen=True, eq=False)
class Object:
    """An interface or an inline object type; ``where`` names it in messages."""

    where: str
    members: dict[str, Member]


Type = Primitive | Literal | Array | Union | Named | ElementOf | Object


@dataclass
class Declarations:
    types: dict[str, Type] = field(default_factory=dict)
    constants: dict[str, tuple[str, ...]] = field(default_factory=dict)
    numbers: dict[str, int] = field(default_factory=dict)

    def resolve(self, kind: Type) -> Type:
        while isinstance(kind, Named):
            if kind.name not in self.types:
                raise TypeScriptError(f"{kind.name} is not declared")
            kind = self.types[kind.name]
        if isinstance(kind, ElementOf):
            return Union(tuple(Literal(value) for value in self.constants[kind.name]))
        return kind

    def literals(self, name: str) -> set[str | bool]:
        """The values of a union of literals (such as ``BucketStatus``)."""
        kind = self.resolve(Named(name))
        members = kind.members if isinstance(kind, Union) else (kind,)
        if not all(isinstance(member, Literal) for member in members):
            raise TypeScriptError(f"{name} is not a union of literals")
        return {member.value for member in members if isinstance(member, Literal)}


def _tokens(source: str) -> Iterator[str]:
    position = 0
    while position < len(source):
        match = _TOKEN.match(source, position)
        if match is None:
            line = source.count("\n", 0, position) + 1
            raise TypeScriptError(f"line {line}: cannot read {source[position : position + 30]!r}")
        position = match.end()
        token = match.group("string") or match.group("word") or match.group("number") or match.group("mark")
        if token:
            yield token


class _Parser:
    def __init__(self, source: str) -> None:
        self.tokens = list(_tokens(source))
        self.at = 0
        self.declarations = Declarations()

    def peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, *expected: str) -> str:
        token = self.peek()
        if token is None or (expected and token not in expected):
            raise TypeScriptError(
                f"expected {' or '.join(expected) or 'more'}, found {token!r} (token {self.at})"
            )
        self.at += 1
        return token

    def name(self) -> str:
        token = self.take()
        if not re.fullmatch(r"[A-Za-z_$][\w$]*", token) or token in PRIMITIVES:
            raise TypeScriptError(f"expected a name, found {token!r}")
        return token

    def file(self) -> Declarations:
        while self.peek() is not None:
            self.take("export")
            kind = self.take("interface", "type", "const")
            name = self.name()
            if (
                name in self.declarations.types
                or name in self.declarations.constants
                or name in self.declarations.numbers
            ):
                raise TypeScriptError(f"{name} is declared twice")
            if kind == "interface":
                self.take("{")
                self.declarations.types[name] = self.members(name)
            elif kind == "type":
                self.take("=")
                self.declarations.types[name] = self.type(name)
                self.take(";")
            elif self.tokens[self.at + 1 : self.at + 2] == ["["]:
                self.declarations.constants[name] = self.constant_list()
            else:
                self.declarations.numbers[name] = self.number()
        return self.declarations

    def constant_list(self) -> tuple[str, ...]:
        self.take("=")
        self.take("[")
        values = []
        while self.peek() != "]":
            values.append(self.string())
            if self.peek() != "]":
                self.take(",")
        for token in ("]", "as", "const", ";"):
            self.take(token)
        return tuple(values)

    def number(self) -> int:
        """``= 365;``: a whole number."""
        self.take("=")
        token = self.take()
        if not token.isdigit():
            raise TypeScriptError(f"expected a list or a whole number, found {token!r}")
        self.take(";")
        return int(token)

    def string(self) -> str:
        token = self.take()
        if not token.startswith("'"):
            raise TypeScriptError(f"expected a string, found {token!r}")
        return re.sub(r"\\(.)", r"\1", token[1:-1])

    def members(self, where: str) -> Object:
        """The members after ``{``, up to and including ``}``."""
        members: dict[str, Member] = {}
        while self.peek() != "}":
            key = self.name()
            optional = self.peek() == "?"
            if optional:
                self.take("?")
            self.take(":")
            if key in members:
                raise TypeScriptError(f"{where}.{key} is declared twice")
            members[key] = Member(self.type(f"{where}.{key}"), optional)
            if self.peek() != "}":
                self.take(";", ",")
        self.take("}")
        return Object(where, members)

    def type(self, where: str) -> Type:
        if self.peek() == "|":
            self.take("|")
        members = [self.postfix(where)]
        while self.peek() == "|":
            self.take("|")
            members.append(self.postfix(where))
        return members[0] if len(members) == 1 else Union(tuple(members))

    def postfix(self, where: str) -> Type:
        kind = self.primary(where)
        while self.peek() == "[":
            self.take("[")
            if self.peek() == "number":
                self.take("number")
                if not isinstance(kind, ElementOf):
                    raise TypeScriptError(f"{where}: only (typeof LIST)[number] is understood")
                self.take("]")
                return kind
            self.take("]")
            kind = Array(kind)
        if isinstance(kind, ElementOf):
            raise TypeScriptError(f"{where}: typeof is understood only as (typeof LIST)[number]")
        return kind

    def primary(self, where: str) -> Type:
        token = self.take()
        if token in PRIMITIVES:
            return Primitive(token)
        if token in ("true", "false"):
            return Literal(token == "true")
        if token.startswith("'"):
            self.at -= 1
            return Literal(self.string())
        if token == "{":
            return self.members(where)
        if token == "(":
            if self.peek() == "typeof":
                self.take("typeof")
                name = self.name()
                if name not in self.declarations.constants:
                    raise TypeScriptError(f"{where}: {name} is not a constant list declared before it")
                self.take(")")
                return ElementOf(name)
            inner = self.type(where)
            self.take(")")
            return inner
        self.at -= 1
        return Named(self.name())


def parse(source: str) -> Declarations:
    """Every declaration in ``source``; a :class:`TypeScriptError` for anything else, or for a name used
    but not declared there."""
    declarations = _Parser(source).file()
    todo = list(declarations.types.values())
    while todo:
        kind = todo.pop()
        if isinstance(kind, Named):
            declarations.resolve(kind)
        elif isinstance(kind, Array):
            todo.append(kind.element)
        elif isinstance(kind, Union):
            todo.extend(kind.members)
        elif isinstance(kind, Object):
            todo.extend(member.type for member in kind.members.values())
    return declarations


@dataclass
class Checker:
    """Checks JSON values against declarations, noting which object members any value held, so a member
    declared but never sent (a rename on either side) shows up too."""

    declarations: Declarations
    seen: set[tuple[int, str]] = field(default_factory=set)

    def check(self, value: Any, name: str) -> list[str]:
        """The problems of ``value`` as the declared type ``name``; none when it fits."""
        return self._check(value, Named(name), name)

    def never_sent(self, *names: str) -> list[str]:
        """The members of every object type reachable from ``names`` that no value checked so far held."""
        objects: dict[int, Object] = {}
        todo: list[Type] = [Named(name) for name in names]
        while todo:
            kind = self.declarations.resolve(todo.pop())
            if isinstance(kind, Array):
                todo.append(kind.element)
            elif isinstance(kind, Union):
                todo.extend(kind.members)
            elif isinstance(kind, Object) and id(kind) not in objects:
                objects[id(kind)] = kind
                todo.extend(member.type for member in kind.members.values())
        return [
            f"{kind.where}.{key} is declared but no route sent it"
            for kind in objects.values()
            for key in kind.members
            if (id(kind), key) not in self.seen
        ]

    def _check(self, value: Any, kind: Type, where: str) -> list[str]:
        kind = self.declarations.resolve(kind)
        if isinstance(kind, Primitive):
            fits = {
                "string": isinstance(value, str),
                "number": isinstance(value, int | float) and not isinstance(value, bool),
                "boolean": isinstance(value, bool),
                "null": value is None,
            }[kind.name]
            return [] if fits else [f"{where}: {value!r} is not {kind.name}"]
        if isinstance(kind, Literal):
            same = type(value) is type(kind.value) and value == kind.value
            return [] if same else [f"{where}: {value!r} is not {kind.value!r}"]
        if isinstance(kind, Array):
            if not isinstance(value, list):
                return [f"{where}: {value!r} is not a list"]
            return [
                problem
                for i, item in enumerate(value)
                for problem in self._check(item, kind.element, f"{where}[{i}]")
            ]
        if isinstance(kind, Union):
            return self._one_of(value, kind, where)
        assert isinstance(kind, Object)
        return self._object(value, kind, where)

    def _one_of(self, value: Any, kind: Union, where: str) -> list[str]:
        """The first member that fits counts; what the others noted as seen is undone."""
        problems = []
        for member in kind.members:
            seen = set(self.seen)
            found = self._check(value, member, where)
            if not found:
                return []
            self.seen = seen
            problems += found
        return [f"{where}: {value!r} fits none of the union's types ({'; '.join(problems)})"]

    def _object(self, value: Any, kind: Object, where: str) -> list[str]:
        if not isinstance(value, dict):
            return [f"{where}: {value!r} is not an object"]
        problems = []
        for key, member in kind.members.items():
            if key in value:
                self.seen.add((id(kind), key))
                problems += self._check(value[key], member.type, f"{where}.{key}")
            elif not member.optional:
                problems.append(f"{where}.{key} is required but missing (sent: {sorted(value)})")
        return problems
