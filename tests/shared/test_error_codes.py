"""One set of error codes: every code the API (web/) and the shared operations raise by name is a
member of ``shared.codes.errors.ErrorCode`` or ``RequestErrorCode``, and every HTTP default maps to one."""

from __future__ import annotations

import ast

from shared.codes.errors import ErrorCode, RequestErrorCode
from tests.conftest import REPO

KNOWN = {c.value for c in ErrorCode} | {c.value for c in RequestErrorCode}
# (callable name, position of its code argument)
RAISERS = {"ApiError": 1, "error_response": 1, "CommandError": 0}


def _codes_in_source() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for root in ("web", "shared"):
        for path in (REPO / root).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call):
                    continue
                name = getattr(node.func, "id", getattr(node.func, "attr", None))
                position = RAISERS.get(name)
                if position is None or len(node.args) <= position:
                    continue
                arg = node.args[position]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.setdefault(arg.value, set()).add(str(path.relative_to(REPO)))
    return found


def test_every_raised_code_is_a_known_code():
    found = _codes_in_source()
    assert len(found) > 10  # the scan really found the raises
    assert {code: sorted(paths) for code, paths in found.items() if code not in KNOWN} == {}


def test_http_defaults_map_to_known_codes():
    from web.errors import HTTP_CODES

    assert set(map(str, HTTP_CODES.values())) <= KNOWN
