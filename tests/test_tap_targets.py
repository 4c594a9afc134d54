"""Fingers on a phone: at 360 x 740 every visible link, button and form control is at least
44 x 44 CSS px, nothing sticks out sideways, and the header is one line, for every role and in
both languages. The header's menu button opens and closes the navigation.

Exempt, as WCAG 2.5.8 allows: a link inside running text (its height is the line's, and
growing it would space the text apart), recognised as an inline <a> whose block holds other
text as well. A checkbox or radio is measured together with its label, which takes the tap.
"""

from __future__ import annotations

import pytest

from app.demo.cli import DEMO_TRAINEE
from tests.browser import LAPTOP, PHONE, chromium, live_server, sideways_overflow, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MIN_PX = 44
# The header: one 44 px row of controls, 6 px above and below, and its 1 px border.
ONE_LINE_PX = MIN_PX + 2 * 6 + 1

ACCOUNTS = {
    "anonymous": None,
    "trainee": (DEMO_TRAINEE["id_number"], DEMO_TRAINEE["password"]),
    "auditor": ("demo-auditor", "DemoAudit2026"),
    "admin": ("demo-admin", "DemoAdmin2026"),
}
PAGES = {
    "anonymous": ["/", "/catalog", "/catalog/6-31-01", "/courses", "/login", "/register"],
    "trainee": [
        "/",
        "/profile",
        "/courses",
        "/courses/{course_id}",
        "/learn",
        "/learn/{enrollment_id}",
        "/learn/lessons/{lesson_id}",
        "/me/archive",
    ],
    "auditor": ["/", "/audit", "/audit/enrollments/{enrollment_id}", "/profile"],
    "admin": [
        "/admin/courses",
        "/admin/courses/{course_id}",
        "/admin/platforms",
        "/admin/standards",
        "/audit",
    ],
}

# Every interactive element shown, with what is too small about it.
SMALL_TARGETS = """(min) => {
  const selector = 'a[href], button, input:not([type=hidden]), select, textarea, summary, '
    + '[role=button], [tabindex]:not([tabindex="-1"])';
  const found = [];
  for (const el of document.querySelectorAll(selector)) {
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden') continue;
    let rect = el.getBoundingClientRect();
    if (rect.width === 0 || rect.height === 0 || rect.right <= 0) continue;  // not shown
    if (el.tagName === 'A' && style.display === 'inline') {
      const block = el.parentElement.closest('p, li, dd, td, div');
      const own = el.textContent.trim().length;
      if (block && block.textContent.trim().length > own + 1) continue;  // in running text
    }
    if ((el.type === 'checkbox' || el.type === 'radio') && el.labels && el.labels.length) {
      const label = el.labels[0].getBoundingClientRect();
      rect = {
        width: Math.max(rect.right, label.right) - Math.min(rect.left, label.left),
        height: Math.max(rect.bottom, label.bottom) - Math.min(rect.top, label.top),
      };
    }
    if (rect.width < min - 0.5 || rect.height < min - 0.5) {
      const name = (el.textContent || el.value || el.name || el.id || '').trim().slice(0, 30);
      found.push(`${el.tagName.toLowerCase()}.${el.className} "${name}" `
        + `${Math.round(rect.width)}x${Math.round(rect.height)}`);
    }
  }
  return found;
}"""
HEADER = """() => {
  const bar = document.querySelector('header.topbar');
  return bar.getBoundingClientRect().height;
}"""


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture
def site(database_url, seeded, fresh_app):
    if not database_url.startswith("sqlite"):
        pytest.skip("layout does not depend on the database; runs on SQLite")
    with live_server(fresh_app) as base:
        yield base, seeded


def open_as(browser, base: str, role: str, lang: str, viewport):
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.goto(f"{base}/lang/{lang}")
    if ACCOUNTS[role]:
        sign_in(page, base, *ACCOUNTS[role])
    return context, page


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("role", list(ACCOUNTS))
def test_targets_are_finger_sized_and_the_header_is_one_line(browser, site, role, lang):
    """One run per role and language (the demo seed is the slow part): the pages at 360 px,
    the menu on a phone, the whole navigation at 1280 px."""
    base, ids = site
    every_page_at_phone_width(browser, base, ids, role, lang)
    menu_button_opens_the_navigation(browser, base, role, lang)
    wide_screen_shows_the_whole_navigation(browser, base, role, lang)


def every_page_at_phone_width(browser, base, ids, role, lang):
    context, page = open_as(browser, base, role, lang, PHONE)
    problems = []
    for path in PAGES[role]:
        url = path.format(**ids)
        response = page.goto(base + url)
        assert response.status == 200, url
        page.wait_for_load_state("networkidle")
        for target in page.evaluate(SMALL_TARGETS, MIN_PX):
            problems.append(f"{url}: {target}")
        overflow = sideways_overflow(page)
        if overflow > 0:
            problems.append(f"{url}: {overflow}px too wide")
        height = page.evaluate(HEADER)
        if height > ONE_LINE_PX + 0.5:
            problems.append(f"{url}: the header is {height}px high, more than one line")
    context.close()
    assert not problems, "\n".join(problems)


def menu_button_opens_the_navigation(browser, base, role, lang):
    context, page = open_as(browser, base, role, lang, PHONE)
    page.goto(base + "/")
    button = page.locator("#menu-toggle")
    nav = page.locator("#site-nav")
    assert button.is_visible() and nav.is_hidden()
    assert button.get_attribute("aria-expanded") == "false"
    button.click()
    assert button.get_attribute("aria-expanded") == "true" and nav.is_visible()
    assert nav.locator("a").count() >= 3
    assert page.evaluate(SMALL_TARGETS, MIN_PX) == []
    assert sideways_overflow(page) <= 0
    page.keyboard.press("Tab")  # the menu follows its button in the reading order
    assert page.evaluate("document.activeElement.closest('#site-nav') !== null")
    page.keyboard.press("Escape")
    assert nav.is_hidden() and button.get_attribute("aria-expanded") == "false"
    assert page.evaluate("document.activeElement.id") == "menu-toggle"
    button.click()
    page.locator("main h1").first.click()  # a tap elsewhere closes it
    assert nav.is_hidden()
    context.close()


def wide_screen_shows_the_whole_navigation(browser, base, role, lang):
    context, page = open_as(browser, base, role, lang, LAPTOP)
    page.goto(base + "/")
    assert page.locator("#menu-toggle").is_hidden()
    assert page.locator("#site-nav").is_visible()
    assert page.evaluate(HEADER) <= ONE_LINE_PX + 0.5
    assert page.evaluate(SMALL_TARGETS, MIN_PX) == []
    assert sideways_overflow(page) <= 0
    context.close()
