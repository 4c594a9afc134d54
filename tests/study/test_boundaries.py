"""How study becomes money is assembled in app/study alone: the domains it composes do not
reach into one another's services (and so cannot be left half-composed by a caller)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "app"
DOMAINS = ("learning", "verification", "subsidy")
# Pages and the trainee's learning overview only read: they may show what several domains say
# (an enrolment's time beside its subsidy), as long as they change nothing; every change goes
# through app/study.
READ_ONLY = ("views.py", "desk.py", "overview.py")


def imported_services(path: Path) -> set[str]:
    """The ``app.<domain>.service`` modules a file imports, however it spells it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.endswith(".service"):
                found.add(node.module)
            found.update(
                f"{node.module}.{alias.name}" for alias in node.names if alias.name == "service"
            )
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.endswith(".service"))
    return found


@pytest.mark.parametrize("domain", DOMAINS)
def test_a_domain_does_not_import_another_study_domains_service(domain):
    others = {f"app.{other}.service" for other in DOMAINS if other != domain}
    for path in sorted((APP / domain).glob("*.py")):
        if path.name not in READ_ONLY:
            assert not imported_services(path) & others, path.name


def test_only_learning_writes_study_time_counters():
    counters = ("unverified_s", "since_check_s", "next_check_after_s", "pending_s", "lapsed_s")
    for path in sorted(APP.rglob("*.py")):
        if path.parent.name == "learning" or "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            targets = node.targets if isinstance(node, ast.Assign) else []
            if isinstance(node, ast.AugAssign):
                targets = [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and target.attr in counters:
                    pytest.fail(f"{path.relative_to(APP)} writes {target.attr}")
