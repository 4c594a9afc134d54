"""Pages to browse the occupation tree and search it."""

from __future__ import annotations

from flask import abort, render_template, request

from app.catalog import bp, service
from app.http import int_arg

PER_PAGE = 30


@bp.get("/catalog")
def index():
    q = request.args.get("q", "").strip()[:100]
    if not q:
        return render_template(
            "catalog/index.html",
            q="",
            groups=service.children(None),
            counts=service.counts_by_level(),
        )
    page = int_arg("page", 1, low=1, high=10_000)
    result = service.search(q, page=page, per_page=PER_PAGE)
    pages = max(1, -(-result.total // PER_PAGE))
    return render_template("catalog/search.html", q=q, result=result, page=page, pages=pages)


@bp.get("/catalog/<code>")
def node(code: str):
    occupation = service.get(code)
    if occupation is None:
        abort(404)
    return render_template(
        "catalog/node.html",
        occupation=occupation,
        trail=service.ancestors(occupation),
        children=service.children(code),
    )
