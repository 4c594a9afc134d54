"""Courses by occupation: the occupation pages, the public course search and the course list."""

from __future__ import annotations

import re

import pytest

from app.courses.models import CourseStatus
from tests.browser import LAPTOP, PHONE, chromium, live_server, screenshot_dir, sideways_overflow
from tests.catalog.helpers import ELECTRICIAN, add_course, statements
from tests.study import publish_course

SEARCH = "/api/v1/catalogue/courses"
WELDER = "6-18-02-04"  # 焊工, another medium group (6-18) of the same major group (6)
ACCOUNTANT = "2-06-03-00"  # 会计专业人员: another major group (2)


def titles(response) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [item["title"] for item in response.get_json()["items"]]


def test_occupation_pages_list_a_published_course_up_the_tree(client, fresh_app):
    course_id, _ = publish_course(client, fresh_app)  # through the platform API and the pipeline
    for code in (ELECTRICIAN, "6-31-01", "6-31", "6"):
        html = client.get(f"/catalog/{code}").get_data(as_text=True)
        assert f'href="/courses/{course_id}"' in html, code
        assert "低压电工作业" in html and "鲁班学堂" in html  # title and platform
        assert "16 课时" in html  # the declared class hours
        assert "0:10" in html  # and how long its one video lasts
    other = client.get("/catalog/2").get_data(as_text=True)
    assert "低压电工作业" not in other
    body = client.get(f"{SEARCH}?occupation=6-31").get_json()
    assert [item["id"] for item in body["items"]] == [course_id]
    item = body["items"][0]
    assert item["url"] == f"/courses/{course_id}"
    assert item["occupation"] == {"code": ELECTRICIAN, "name": "电工"}
    assert item["platform"]["name"] == "鲁班学堂"
    assert item["lessons"] == 1 and item["video_s"] == pytest.approx(10, abs=1)
    assert item["hours"] == 16.0


def test_occupation_without_courses_says_so_and_links_to_the_search(client, fresh_app):
    add_course(fresh_app, "焊工入门", occupation=WELDER)
    html = client.get(f"/catalog/{ELECTRICIAN}").get_data(as_text=True)
    assert "焊工入门" not in html
    assert 'data-empty="courses"' in html and 'href="/courses"' in html
    client.get("/lang/en")
    english = client.get(f"/catalog/{ELECTRICIAN}").get_data(as_text=True)
    assert "No course is open for this occupation yet" in english
    group = client.get("/catalog/6-31").get_data(as_text=True)
    assert "No course is open in this group yet" in group and 'href="/courses"' in group
    assert "焊工入门" in client.get("/catalog/6").get_data(as_text=True)


def test_only_published_courses_are_found(client, fresh_app):
    add_course(fresh_app, "已发布课程")
    for status in (
        CourseStatus.DRAFT,
        CourseStatus.IN_REVIEW,
        CourseStatus.REJECTED,
        CourseStatus.WITHDRAWN,
    ):
        add_course(fresh_app, f"未发布课程{status.value}", status=status)
    assert titles(client.get(SEARCH)) == ["已发布课程"]
    assert titles(client.get(f"{SEARCH}?q=课程")) == ["已发布课程"]
    html = client.get(f"/catalog/{ELECTRICIAN}").get_data(as_text=True)
    assert "已发布课程" in html and "未发布课程" not in html
    assert "未发布课程" not in client.get("/courses").get_data(as_text=True)


def test_search_matches_title_occupation_name_and_code_and_platform(client, fresh_app):
    add_course(fresh_app, "低压电工作业", platform="Luban Academy", age_s=30)
    add_course(fresh_app, "氩弧焊实操", occupation=WELDER, platform="匠心在线", age_s=20)
    add_course(fresh_app, "出纳实务", occupation=ACCOUNTANT, platform="匠心在线", age_s=10)
    assert titles(client.get(f"{SEARCH}?q=低压")) == ["低压电工作业"]  # title
    assert titles(client.get(f"{SEARCH}?q=焊工")) == ["氩弧焊实操"]  # occupation name
    assert titles(client.get(f"{SEARCH}?q=6-18")) == ["氩弧焊实操"]  # occupation code prefix
    assert titles(client.get(f"{SEARCH}?q=6")) == ["氩弧焊实操", "低压电工作业"]
    assert titles(client.get(f"{SEARCH}?q=匠心")) == ["出纳实务", "氩弧焊实操"]  # platform
    assert titles(client.get(f"{SEARCH}?q=luban")) == ["低压电工作业"]  # in any case
    assert titles(client.get(f"{SEARCH}?q=%20%20")) == ["出纳实务", "氩弧焊实操", "低压电工作业"]
    assert titles(client.get(f"{SEARCH}?q=没有这门课")) == []


def test_search_within_an_occupation_and_everything_below_it(client, fresh_app):
    add_course(fresh_app, "低压电工作业", age_s=30)
    add_course(fresh_app, "氩弧焊实操", occupation=WELDER, age_s=20)
    add_course(fresh_app, "出纳实务", occupation=ACCOUNTANT, age_s=10)
    assert titles(client.get(f"{SEARCH}?occupation=6")) == ["氩弧焊实操", "低压电工作业"]
    assert titles(client.get(f"{SEARCH}?occupation=6-31")) == ["低压电工作业"]
    assert titles(client.get(f"{SEARCH}?occupation={ELECTRICIAN}")) == ["低压电工作业"]
    assert titles(client.get(f"{SEARCH}?occupation=6&q=焊")) == ["氩弧焊实操"]
    assert titles(client.get(f"{SEARCH}?occupation=2&q=焊")) == []
    body = client.get(f"{SEARCH}?occupation=6-31").get_json()
    assert body["occupation"]["code"] == "6-31" and body["occupation"]["level"] == 2
    assert client.get(SEARCH).get_json()["occupation"] is None


@pytest.mark.parametrize("code", ["0-00", "6-3", "6-31-", "%", "x" * 500])
def test_unknown_occupation_is_404_with_a_stable_code(client, code):
    response = client.get(SEARCH, query_string={"occupation": code})
    assert response.status_code == 404
    error = response.get_json()["error"]
    assert error["code"] == "occupation_not_found"
    assert "职业" in error["message"]


@pytest.mark.parametrize(
    "query",
    ["page=0", "page=abc", "page=99999", "per_page=0", "per_page=51", "q=" + "x" * 101],
)
def test_bad_parameters_are_refused_with_a_code(client, query):
    response = client.get(f"{SEARCH}?{query}")
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "invalid"


@pytest.mark.parametrize("q", ["%", "_", "\\", "'; DROP TABLE course; --", "电工%"])
def test_search_text_is_data_not_a_pattern(client, fresh_app, q):
    add_course(fresh_app, "低压电工作业")
    response = client.get(SEARCH, query_string={"q": q})
    assert response.status_code == 200
    assert response.get_json()["total"] == 0


def test_pages_are_stable_and_complete(client, fresh_app):
    # Seven courses published at the same moment: the order must still be total.
    ids = [add_course(fresh_app, f"课程{n}", age_s=0) for n in range(7)]
    seen = []
    for page in (1, 2, 3):
        body = client.get(f"{SEARCH}?per_page=3&page={page}").get_json()
        assert body["total"] == 7 and body["page"] == page and body["per_page"] == 3
        seen += [item["id"] for item in body["items"]]
        again = client.get(f"{SEARCH}?per_page=3&page={page}").get_json()
        assert [item["id"] for item in again["items"]] == seen[-len(body["items"]) :]
    assert sorted(seen) == sorted(ids) and len(seen) == 7
    assert client.get(f"{SEARCH}?per_page=3&page=4").get_json()["items"] == []


def test_newest_published_first(client, fresh_app):
    add_course(fresh_app, "旧课程", age_s=3600)
    add_course(fresh_app, "新课程", age_s=60)
    assert titles(client.get(SEARCH)) == ["新课程", "旧课程"]


def test_search_needs_no_sign_in_and_platform_list_is_unchanged(client, fresh_app):
    add_course(fresh_app, "低压电工作业")
    assert client.get(SEARCH).status_code == 200
    assert client.get("/api/v1/courses").status_code == 401  # still the platform's own list


def test_course_list_page_uses_the_same_search(client, fresh_app):
    add_course(fresh_app, "低压电工作业", platform="Luban Academy", age_s=30)
    add_course(fresh_app, "氩弧焊实操", occupation=WELDER, platform="匠心在线", age_s=20)
    by_platform = client.get("/courses?q=luban").get_data(as_text=True)
    assert "低压电工作业" in by_platform and "氩弧焊实操" not in by_platform
    by_occupation = client.get("/courses?q=焊工").get_data(as_text=True)
    assert "氩弧焊实操" in by_occupation and "低压电工作业" not in by_occupation
    subtree = client.get("/courses?occupation=6-31").get_data(as_text=True)
    assert "低压电工作业" in subtree and "氩弧焊实操" not in subtree
    assert 'value="6-31" selected' in subtree  # the chosen node stays chosen
    legacy = client.get("/courses?group=6").get_data(as_text=True)
    assert "低压电工作业" in legacy and "氩弧焊实操" in legacy
    unknown = client.get("/courses?occupation=9-99").get_data(as_text=True)
    assert "低压电工作业" in unknown  # a stale link shows everything rather than an error
    nothing = client.get("/courses?q=没有这门课").get_data(as_text=True)
    assert 'href="/catalog"' in nothing


def test_course_list_pages_through_results(client, fresh_app):
    for n in range(23):
        add_course(fresh_app, f"电工课程{n:02d}", age_s=100 - n)
    first = client.get("/courses?q=电工课程").get_data(as_text=True)
    assert "电工课程22" in first and "电工课程02" not in first
    link = re.search(r'href="(/courses\?[^"]*page=2[^"]*)"', first)
    assert link, "no link to the second page"
    second = client.get(link.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert "电工课程02" in second and "电工课程22" not in second
    assert client.get("/courses?page=0").status_code == 422


def test_home_search_finds_courses_and_occupations_stay_reachable(client):
    html = client.get("/").get_data(as_text=True)
    form = re.search(r'<form action="([^"]+)"[^>]*role="search"', html)
    assert form and form.group(1) == "/courses"
    assert 'href="/catalog"' in html


@pytest.mark.parametrize(
    "path",
    [f"/catalog/{ELECTRICIAN}", "/catalog/6", "/courses", "/courses?q=电工", SEARCH],
)
def test_lists_take_the_same_queries_for_few_or_many_courses(client, fresh_app, path):
    def count() -> int:
        with statements(fresh_app) as seen:
            assert client.get(path).status_code == 200
        return len(seen)

    for n in range(2):
        add_course(fresh_app, f"电工课程{n}", platform=f"平台{n}")
    client.get(path)  # warm up whatever is loaded once per process
    few = count()
    for n in range(2, 15):
        add_course(fresh_app, f"电工课程{n}", platform=f"平台{n}", lessons=3)
    many = count()
    assert few > 0
    assert many == few, f"{path}: {few} statements for 2 courses, {many} for 15"


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [PHONE, LAPTOP], ids=["phone", "laptop"])
def test_course_lists_fit_a_phone(fresh_app, database_url, viewport):
    if not database_url.startswith("sqlite"):
        pytest.skip("layout does not depend on the database; runs on SQLite")
    long_title = "电工作业人员安全技术培训（低压电工作业初训）理论与实操综合课程第一期"
    for n in range(25):
        add_course(fresh_app, f"{long_title}{n}", platform="非常长名称的职业技能培训平台")
    shots = screenshot_dir()
    with chromium() as browser, live_server(fresh_app) as base:
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        for lang in ("zh", "en"):
            page.goto(f"{base}/lang/{lang}")
            for name, path in (
                ("home", "/"),
                ("occupation", f"/catalog/{ELECTRICIAN}"),
                ("group", "/catalog/6"),
                ("courses", "/courses?q=电工"),
                ("empty", "/catalog/2"),
            ):
                page.goto(base + path)
                overflow = sideways_overflow(page)
                assert overflow <= 0, f"{path} is {overflow}px too wide at {viewport['width']}px"
                if shots:
                    page.screenshot(
                        path=shots / f"{name}-{lang}-{viewport['width']}.png", full_page=True
                    )
        # The home page's search lands on the course list with the courses found.
        page.goto(base + "/")
        page.fill("#home-q", "电工")
        page.press("#home-q", "Enter")
        page.wait_for_url("**/courses?q=*")
        assert page.locator(".course-card").count() == 20
        page.click(".pager a")
        page.wait_for_url("**page=2*")
        assert page.locator(".course-card").count() == 5
        context.close()
