"""One registry of error codes (app/error_codes.py) that the handlers, the document and tests read.

The source is read, not run: every AppError kind and every place that raises one with a
written-out `code=`, and every error body written as a literal, must name a registered code
with the status the registry gives it. The API document's codes must come from the registry.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

import pytest

from app.error_codes import ERRORS, Scope, api_codes
from app.errors import HTTP_CODES
from app.openapi import error_codes_of, resolve
from app.openapi.document import build_document
from media_pipeline.faces import FaceErrorCode

ROOT = Path(__file__).resolve().parents[1]

# Places that pass on a code they did not write out, and every code each can pass on.
FACE_CODES = frozenset(get_args(FaceErrorCode))
PASSED_ON: dict[str, frozenset[str]] = {
    # media_pipeline.faces.FaceError: a photo refused by the face steps.
    "app/verification/service.py:_face_error": FACE_CODES,
    # media_pipeline.video.captions_to_webvtt raises VideoError("invalid_captions") only.
    "app/courses/service.py:add_captions": frozenset({"invalid_captions"}),
}


@dataclass(frozen=True)
class Raised:
    code: str
    status: int | None  # None where the source does not say (an error body built by hand)
    where: str


@dataclass
class Scan:
    raised: list[Raised]
    passed_on: set[str]  # "path:function" of calls whose code is not written out


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else ""


def _constants(node: ast.expr) -> list[str] | None:
    """The strings an expression can only be (`"a"`, `"a" if x else "b"`); None if unknown."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        body, orelse = _constants(node.body), _constants(node.orelse)
        return body + orelse if body is not None and orelse is not None else None
    return None


class _Kinds:
    """The AppError kinds defined in the source: their codes and statuses, inherited."""

    def __init__(self, trees: dict[str, ast.Module]) -> None:
        self.bases: dict[str, list[str]] = {}
        self.attrs: dict[str, dict[str, object]] = {}
        for tree in trees.values():
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef):
                    self.bases[node.name] = [_name(base) for base in node.bases]
                    self.attrs[node.name] = {
                        target.id: statement.value.value
                        for statement in node.body
                        if isinstance(statement, ast.Assign)
                        and isinstance(statement.value, ast.Constant)
                        for target in statement.targets
                        if isinstance(target, ast.Name)
                    }
        self.names = {"AppError"}
        while grown := {
            name
            for name, bases in self.bases.items()
            if name not in self.names and self.names & set(bases)
        }:
            self.names |= grown

    def get(self, name: str, attribute: str) -> object:
        if attribute in self.attrs.get(name, {}):
            return self.attrs[name][attribute]
        for base in self.bases.get(name, []):
            if base in self.names and (found := self.get(base, attribute)) is not None:
                return found
        return None

    def status(self, name: str) -> int | None:
        status = self.get(name, "status")
        return status if isinstance(status, int) else None


def scan(sources: dict[str, str]) -> Scan:
    """Every error code the given sources (path -> text) raise or answer with."""
    trees = {path: ast.parse(text, path) for path, text in sources.items()}
    kinds = _Kinds(trees)
    result = Scan([], set())
    for name in kinds.names:
        code = kinds.get(name, "code")
        if isinstance(code, str):
            result.raised.append(Raised(code, kinds.status(name), f"class {name}"))
    for path, tree in trees.items():
        _Visitor(path, kinds, result).visit(tree)
    return result


class _Visitor(ast.NodeVisitor):
    """Visits every call, knowing the function it sits in."""

    def __init__(self, path: str, kinds: _Kinds, result: Scan) -> None:
        self.path, self.kinds, self.result = path, kinds, result
        self.function = "<module>"

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        outer, self.function = self.function, node.name
        self.generic_visit(node)
        self.function = outer

    def visit_Dict(self, node: ast.Dict) -> None:
        codes = _body_codes(node)
        self.result.raised.extend(
            Raised(code, None, f"{self.path}:{self.function}") for code in codes
        )
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        _scan_call(node, self.kinds, f"{self.path}:{self.function}", self.result)
        self.generic_visit(node)


def _scan_call(node: ast.Call, kinds: _Kinds, where: str, result: Scan) -> None:
    kind = _name(node.func)
    if kind in kinds.names:
        for keyword in node.keywords:
            if keyword.arg == "code":
                codes = _constants(keyword.value)
                if codes is None:
                    result.passed_on.add(where)
                for code in codes or []:
                    result.raised.append(Raised(code, kinds.status(kind), where))
    # An error body handed to render_error with its status written out.
    if kind == "render_error" and len(node.args) > 1:
        status = node.args[0].value if isinstance(node.args[0], ast.Constant) else None
        if isinstance(status, int):
            for code in _body_codes(node.args[1]):
                result.raised.append(Raised(code, status, where))


def _body_codes(node: ast.expr) -> list[str]:
    """The codes of an error body written out as `{"code": "...", "message": ...}`."""
    if not isinstance(node, ast.Dict):
        return []
    keys = [key.value if isinstance(key, ast.Constant) else None for key in node.keys]
    if "code" not in keys or "message" not in keys:
        return []
    return _constants(node.values[keys.index("code")]) or []


@pytest.fixture(scope="module")
def source_scan() -> Scan:
    paths = sorted((ROOT / "app").rglob("*.py"))
    return scan({str(path.relative_to(ROOT)): path.read_text(encoding="utf-8") for path in paths})


def unregistered(raised: list[Raised]) -> list[str]:
    return sorted(
        {
            f"{item.code} ({item.where})"
            for item in raised
            if item.code not in ERRORS
            or (item.status is not None and item.status != ERRORS[item.code].status)
        }
    )


# --- The source against the registry ------------------------------------------------------------


def test_every_code_raised_in_the_source_is_registered_with_its_status(source_scan):
    assert len(source_scan.raised) > 80  # the scan sees the services, not nothing
    problems = unregistered(source_scan.raised)
    assert not problems, (
        "error codes missing from app/error_codes.py, or registered with another status: "
        + ", ".join(problems)
    )


def test_codes_passed_on_from_the_pipeline_are_registered(source_scan):
    assert source_scan.passed_on <= set(PASSED_ON), (
        "a code passed on without writing it out; add its place and codes to PASSED_ON: "
        f"{sorted(source_scan.passed_on - set(PASSED_ON))}"
    )
    for where, codes in PASSED_ON.items():
        for code in codes:
            assert code in ERRORS, (where, code)
    assert ERRORS["image_too_large"].status == 413  # _face_error's PayloadTooLarge
    assert {ERRORS[code].status for code in FACE_CODES - {"image_too_large"}} == {422}


def test_flask_and_werkzeug_errors_use_registered_codes():
    for status, (code, _message) in HTTP_CODES.items():
        assert code in ERRORS and ERRORS[code].status == status, code


def test_every_registered_code_is_raised_somewhere(source_scan):
    used = {item.code for item in source_scan.raised} | {c for c, _ in HTTP_CODES.values()}
    used |= {code for codes in PASSED_ON.values() for code in codes}
    assert not set(ERRORS) - used, f"registered but never raised: {sorted(set(ERRORS) - used)}"


def test_the_scan_finds_an_unregistered_code_and_a_wrong_status():
    source = """
class AppError(Exception):
    status = 400
class Conflict(AppError):
    status = 409
class Busy(AppError):
    status = 503
    code = "made_up_busy"
def refuse(same):
    raise Conflict("no", code="made_up_conflict" if same else "already_registered")
def refuse_wrongly():
    raise Conflict("no", code="not_found")
def answer():
    return render_error(503, {"code": "made_up_body", "message": "m"})
def pass_on(error):
    raise Conflict(str(error), code=error.code)
"""
    result = scan({"app/example.py": source})
    assert unregistered(result.raised) == [
        "made_up_body (app/example.py:answer)",
        "made_up_busy (class Busy)",
        "made_up_conflict (app/example.py:refuse)",
        "not_found (app/example.py:refuse_wrongly)",
    ]
    assert result.passed_on == {"app/example.py:pass_on"}


# --- The document against the registry ----------------------------------------------------------


@pytest.fixture(scope="module")
def doc() -> dict:
    return build_document()


def documented_codes(doc: dict) -> dict[str, set[int]]:
    """Each code an operation names, with the statuses it is named under."""
    named: dict[str, set[int]] = {}
    for operations in doc["paths"].values():
        for operation in operations.values():
            for status, response in operation["responses"].items():
                for code in error_codes_of(resolve(doc, response)):
                    named.setdefault(code, set()).add(int(status))
    return named


def test_the_documents_error_code_enum_is_the_registry(doc):
    assert doc["components"]["schemas"]["ErrorCode"]["enum"] == api_codes()
    body = doc["components"]["schemas"]["ErrorBody"]["properties"]["code"]
    assert body["$ref"] == "#/components/schemas/ErrorCode"


def test_each_operations_error_codes_are_registered_for_the_api_with_their_status(doc):
    for code, statuses in documented_codes(doc).items():
        assert code in ERRORS, code
        assert ERRORS[code].scope is Scope.OPERATIONS, code
        assert statuses == {ERRORS[code].status}, code


def test_every_api_code_is_named_by_an_operation_or_the_overview(doc):
    named = documented_codes(doc)
    for code, entry in ERRORS.items():
        if entry.scope is Scope.OPERATIONS:
            assert code in named, f"{code}: no operation says it can answer it"
        elif entry.scope is Scope.ANY:
            assert f"`{entry.status} {code}`" in doc["info"]["description"], code


def test_retry_after_is_documented_where_the_registry_says(doc):
    for operations in doc["paths"].values():
        for operation in operations.values():
            for response in operation["responses"].values():
                codes = error_codes_of(resolve(doc, response))
                if any(ERRORS[code].retry_after for code in codes):
                    assert "Retry-After" in resolve(doc, response).get("headers", {}), codes
