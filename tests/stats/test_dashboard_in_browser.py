"""The dashboard in headless Chromium at a phone's and a laptop's width, in both languages: the
charts draw, the tables are there, nothing sticks out sideways, the CSP refuses nothing.

Set SCREENSHOT_DIR to keep a PNG of each (`make screenshots` does): look at them.
"""

from __future__ import annotations

import pytest

from app.bureau import service as bureau
from app.identity.models import Role
from tests.browser import LAPTOP, PHONE, chromium, live_server, screenshot_dir, sideways_overflow
from tests.browser import sign_in as browser_sign_in
from tests.conftest import make_staff
from tests.stats.test_dashboard import YEAR, figures  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHARTS = ("chart-targets", "chart-districts", "chart-programmes", "chart-months")
A4 = {"width": 794, "height": 1123}
TABLES = ("table-targets", "table-districts", "table-programmes", "table-months", "table-figures")


@pytest.mark.usefixtures("figures")
def test_dashboard_draws_its_charts_and_fits_a_phone_and_a_laptop(database_url, fresh_app):
    if not database_url.startswith("sqlite"):
        pytest.skip("the page's layout does not depend on the database")
    make_staff(fresh_app, Role.ADMIN, "chief")
    with fresh_app.app_context():
        district_count = len(bureau.districts())
    shots = screenshot_dir()
    with chromium() as browser, live_server(fresh_app) as base:
        for viewport in (PHONE, LAPTOP):
            for lang in ("zh", "en"):
                context = browser.new_context(viewport=viewport)
                context.add_cookies([{"name": "lang", "value": lang, "url": base}])
                page = context.new_page()
                refused: list[str] = []
                page.on(
                    "console",
                    lambda message, refused=refused: (
                        refused.append(message.text) if message.type == "error" else None
                    ),
                )
                browser_sign_in(page, base, "chief", "Audit2026ok")
                page.goto(f"{base}/stats?year={YEAR}")
                for chart in CHARTS:
                    drawn = page.locator(f"#{chart} canvas, #{chart} svg")
                    drawn.first.wait_for()
                    box = page.locator(f"#{chart}").bounding_box()
                    assert box and box["width"] > 200 and box["height"] > 100, chart
                for table in TABLES:
                    assert page.locator(f"#{table} tbody tr").count() > 0, table
                # Twelve months, every district.
                assert page.locator("#table-months tbody tr").count() == 12
                assert page.locator("#table-districts tbody tr").count() == district_count
                # A tooltip draws inside the canvas: an HTML one would break the CSP.
                page.locator("#chart-months").hover()
                page.wait_for_timeout(100)
                overflow = sideways_overflow(page)
                assert overflow <= 0, f"{overflow}px too wide at {viewport['width']}px ({lang})"
                assert not refused, refused
                if shots:
                    name = f"stats-dashboard-{lang}-{viewport['width']}"
                    page.screenshot(path=shots / f"{name}.png", full_page=True)
                # Printed on A4 (about 794 CSS px wide): no navigation, nothing wider than the
                # paper, charts drawn again at the paper's width.
                if viewport is LAPTOP and lang == "zh":
                    page.emulate_media(media="print")
                    page.set_viewport_size(A4)
                    page.evaluate("window.dispatchEvent(new Event('beforeprint'))")
                    page.wait_for_timeout(200)
                    assert page.locator("#topbar").is_hidden()
                    assert page.locator(".stats-filters").is_hidden()
                    for chart in CHARTS:
                        box = page.locator(f"#{chart} canvas").first.bounding_box()
                        assert box and box["x"] + box["width"] <= A4["width"], chart
                    assert sideways_overflow(page) <= 0
                    if shots:
                        page.screenshot(path=shots / "stats-dashboard-print.png", full_page=True)
                    page.emulate_media(media="screen")
                    page.set_viewport_size(LAPTOP)
                # Resizing redraws the charts at the new width.
                if viewport is LAPTOP:
                    page.set_viewport_size(PHONE)
                    page.wait_for_timeout(400)
                    width = page.locator("#chart-months canvas").first.bounding_box()["width"]
                    assert width <= PHONE["width"], width
                    assert sideways_overflow(page) <= 0
                context.close()


@pytest.mark.usefixtures("figures")
def test_without_javascript_the_tables_show_everything(database_url, fresh_app):
    if not database_url.startswith("sqlite"):
        pytest.skip("the page's layout does not depend on the database")
    make_staff(fresh_app, Role.ADMIN, "chief")
    with chromium() as browser, live_server(fresh_app) as base:
        context = browser.new_context(viewport=PHONE, java_script_enabled=False)
        page = context.new_page()
        browser_sign_in(page, base, "chief", "Audit2026ok")
        page.goto(f"{base}/stats?year={YEAR}")
        for chart in CHARTS:
            assert page.locator(f"#{chart}").is_hidden(), chart
        for table in TABLES:
            assert page.locator(f"#{table}").is_visible(), table
        assert sideways_overflow(page) <= 0
        context.close()
