"""The occupational classification: loading, the API and the pages."""

import pytest

from app.catalog import service
from app.catalog.models import Occupation
from app.extensions import db


def test_whole_classification_is_loaded(ctx):
    assert service.counts_by_level() == {1: 8, 2: 79, 3: 450, 4: 1639}
    electrician = db.session.get(Occupation, "6-31-01-03")
    assert electrician is not None and electrician.level == 4
    assert [a.code for a in service.ancestors(electrician)] == ["6", "6-31", "6-31-01"]


def test_loading_again_changes_nothing(ctx):
    result = service.load()
    assert (result.added, result.updated, result.unchanged) == (0, 0, 2176)


def test_loading_repairs_a_changed_name(ctx):
    occupation = db.session.get(Occupation, "4-10-01-06")
    original = occupation.name
    occupation.name = "changed"
    db.session.flush()
    assert service.load().updated == 1
    assert db.session.get(Occupation, "4-10-01-06").name == original
    db.session.commit()


def test_cli_load_reports_counts(runner):
    result = runner.invoke(args=["catalog", "load"])
    assert result.exit_code == 0, result.output
    assert "0 added, 0 updated, 2176 unchanged" in result.output
    assert "1639 detailed" in result.output


def test_api_searches_names(client):
    body = client.get("/api/v1/occupations?q=电工&level=4").get_json()
    assert body["total"] >= 1
    assert all("电工" in item["name"] and item["level"] == 4 for item in body["items"])
    assert set(body["items"][0]) == {"code", "name", "level", "parent_code"}


def test_api_searches_code_prefix_and_parent(client):
    by_code = client.get("/api/v1/occupations?q=4-10-01").get_json()
    assert by_code["items"] and all(i["code"].startswith("4-10-01") for i in by_code["items"])
    children = client.get("/api/v1/occupations?parent=4-10-01&per_page=100").get_json()
    assert children["total"] == len(children["items"]) > 0
    assert all(item["parent_code"] == "4-10-01" for item in children["items"])


def test_api_pages_through_results(client):
    first = client.get("/api/v1/occupations?level=1&per_page=3").get_json()
    third = client.get("/api/v1/occupations?level=1&per_page=3&page=3").get_json()
    assert first["total"] == third["total"] == 8
    assert [i["code"] for i in first["items"]] == ["1", "2", "3"]
    assert [i["code"] for i in third["items"]] == ["7", "8"]


def test_search_treats_wildcards_literally(client):
    assert client.get("/api/v1/occupations?q=%25").get_json()["total"] == 0
    assert client.get("/api/v1/occupations?q=_").get_json()["total"] == 0


@pytest.mark.parametrize(
    "query", ["page=0", "page=abc", "per_page=1000", "level=9", "level=-1", "q=" + "x" * 101]
)
def test_api_refuses_bad_parameters(client, query):
    response = client.get(f"/api/v1/occupations?{query}")
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "invalid"


def test_api_single_occupation_with_children(client):
    body = client.get("/api/v1/occupations/6-31").get_json()
    assert body["level"] == 2 and body["children"]
    assert client.get("/api/v1/occupations/0-00").status_code == 404


def test_catalogue_pages_browse_and_search(client):
    home = client.get("/catalog").get_data(as_text=True)
    assert "1639" in home and 'href="/catalog/4"' in home
    node = client.get("/catalog/6-31-01").get_data(as_text=True)
    assert 'href="/catalog/6-31"' in node  # breadcrumb back up the tree
    assert "6-31-01-03" in node
    results = client.get("/catalog?q=电工").get_data(as_text=True)
    assert "6-31-01-03" in results
    assert client.get("/catalog/nope").status_code == 404
