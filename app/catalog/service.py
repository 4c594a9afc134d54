"""Loading and querying the occupational classification."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from app.catalog.models import Occupation
from app.db import like_pattern
from app.extensions import db

DATA_FILE = Path(__file__).parent / "data" / "classification-2022.json"


@dataclass(frozen=True)
class LoadResult:
    added: int
    updated: int
    unchanged: int


@dataclass(frozen=True)
class Page:
    items: list[Occupation]
    total: int


def _flatten(nodes: list[dict[str, Any]], parent: str | None) -> Iterator[dict[str, Any]]:
    for position, node in enumerate(nodes):
        yield {
            "code": node["seq"],
            "gb_code": str(node.get("gbm") or ""),
            "name": node["name"].strip(),
            "level": int(node["level"]),
            "parent_code": parent,
            "position": position,
        }
        yield from _flatten(node.get("children") or [], node["seq"])


def read_tree(path: Path = DATA_FILE) -> list[dict[str, Any]]:
    """The classification as rows, parents before children."""
    document = json.loads(path.read_text(encoding="utf-8"))
    return list(_flatten(document["data"], None))


def load(path: Path = DATA_FILE) -> LoadResult:
    """Insert or update every node; running it twice changes nothing the second time."""
    rows = read_tree(path)
    existing = {occ.code: occ for occ in db.session.scalars(sa.select(Occupation))}
    added = updated = 0
    for row in rows:  # parents come first, so foreign keys hold at every flush
        current = existing.get(row["code"])
        if current is None:
            db.session.add(Occupation(**row))
            added += 1
        elif any(getattr(current, key) != value for key, value in row.items()):
            for key, value in row.items():
                setattr(current, key, value)
            updated += 1
    db.session.flush()
    return LoadResult(added=added, updated=updated, unchanged=len(rows) - added - updated)


def counts_by_level() -> dict[int, int]:
    query = sa.select(Occupation.level, sa.func.count()).group_by(Occupation.level)
    return {level: count for level, count in db.session.execute(query)}


def get(code: str) -> Occupation | None:
    return db.session.get(Occupation, code)


def children(code: str | None) -> list[Occupation]:
    query = sa.select(Occupation).where(
        Occupation.parent_code.is_(None) if code is None else Occupation.parent_code == code
    )
    return list(db.session.scalars(query.order_by(Occupation.position)))


def ancestors(occupation: Occupation) -> list[Occupation]:
    """From the major group down to the node's parent."""
    chain: list[Occupation] = []
    parent_code = occupation.parent_code
    while parent_code:
        parent = db.session.get(Occupation, parent_code)
        if parent is None:
            break
        chain.append(parent)
        parent_code = parent.parent_code
    return chain[::-1]


def search(
    q: str = "",
    *,
    level: int | None = None,
    parent: str | None = None,
    page: int = 1,
    per_page: int = 20,
) -> Page:
    """Occupations whose name contains q or whose code starts with it, in the book's order."""
    query = sa.select(Occupation)
    q = q.strip()
    if q:
        query = query.where(
            sa.or_(
                Occupation.name.like(like_pattern(q), escape="\\"),
                Occupation.code.like(like_pattern(q, prefix=True), escape="\\"),
                Occupation.gb_code == q,
            )
        )
    if level is not None:
        query = query.where(Occupation.level == level)
    if parent is not None:
        query = query.where(Occupation.parent_code == parent)
    total = db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0
    # Codes are zero-padded (`4-10-01-06`), so their string order is the book's order.
    ordered = query.order_by(Occupation.level, Occupation.code)
    items = list(db.session.scalars(ordered.limit(per_page).offset((page - 1) * per_page)))
    return Page(items=items, total=total)
