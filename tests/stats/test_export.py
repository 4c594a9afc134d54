"""CSV and XLSX files: Chinese readable, ID numbers intact, no formula ever created; and the
published definitions page."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest
from markupsafe import escape
from openpyxl.cell.cell import TYPE_FORMULA

from app.i18n import LANG_COOKIE
from app.identity.models import Role
from app.stats import export
from app.stats.figures import FIGURES
from tests.conftest import make_staff, make_trainee, sign_in_page

ID_NUMBER = "500101199003071234"
HOSTILE = ["=1+1", "+SUM(A1:A2)", "-2+3", "@cmd", '=HYPERLINK("http://x")']
COLUMNS = ["身份证号", "姓名", "数值"]
ROWS = [[ID_NUMBER, "张三", 3], *[[text, "李四", 1.5] for text in HOSTILE], [None, "王五", 0]]


def test_csv_starts_with_a_bom_and_neutralises_formulas():
    data = export.csv_bytes(COLUMNS, ROWS)
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == COLUMNS
    assert rows[1] == [ID_NUMBER, "张三", "3"]
    for row, text in zip(rows[2:], HOSTILE, strict=False):
        assert row[0] == "'" + text
        assert not row[0].startswith(("=", "+", "-", "@"))
    assert rows[-1] == ["", "王五", "0"]


def test_streamed_csv_is_the_same_file():
    assert b"".join(export.stream_csv(COLUMNS, iter(ROWS))) == export.csv_bytes(COLUMNS, ROWS)


def read_back(data: bytes) -> list[list[openpyxl.cell.Cell]]:
    return [list(row) for row in openpyxl.load_workbook(io.BytesIO(data)).active.iter_rows()]


def test_xlsx_keeps_id_numbers_as_text_and_creates_no_formula():
    rows = read_back(export.xlsx_bytes("统计", COLUMNS, ROWS))
    assert all(cell.data_type != TYPE_FORMULA for row in rows for cell in row)
    assert [c.value for c in rows[0]] == COLUMNS
    assert rows[1][0].value == ID_NUMBER and rows[1][0].data_type == "s"
    assert rows[1][2].value == 3 and rows[1][2].data_type == "n"
    # The text is kept as written, only never taken for a formula.
    assert [row[0].value for row in rows[2:-1]] == HOSTILE
    assert all(row[0].data_type == "s" for row in rows[2:-1])


def test_xlsx_written_to_a_file_streams_many_rows(tmp_path):
    path = tmp_path / "big.xlsx"
    many = ([f"{ID_NUMBER[:-4]}{n:04d}", "=x", n] for n in range(5000))
    export.write_xlsx_file(path, "a/b:c*?[d]", COLUMNS, many)
    book = openpyxl.load_workbook(path, read_only=True)
    sheet = book.active
    assert sheet.title == "a b c   d"
    values = list(sheet.iter_rows(values_only=True))
    assert len(values) == 5001 and values[-1] == (f"{ID_NUMBER[:-4]}4999", "=x", 4999)


@pytest.mark.parametrize("language", ["en", "zh"])
def test_definitions_page_lists_every_figure(fresh_app, client, language):
    make_staff(fresh_app, Role.AUDITOR, "auditor1")
    sign_in_page(client, "auditor1")
    client.set_cookie(LANG_COOKIE, language)
    response = client.get("/stats/definitions")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    with fresh_app.test_request_context(headers={"Cookie": f"{LANG_COOKIE}={language}"}):
        for figure in FIGURES.values():
            assert f'id="{figure.key}"' in html
            assert str(escape(figure.label)) in html
            assert str(escape(figure.definition)) in html


def test_definitions_page_is_for_staff(fresh_app, client):
    make_trainee(fresh_app)
    sign_in_page(client, "110105199003071239", "Study2026ok")
    assert client.get("/stats/definitions").status_code in (302, 403)


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("language", ["en", "zh"])
def test_definitions_page_fits_a_phone_and_a_laptop(fresh_app, language):
    from tests.browser import (
        LAPTOP,
        PHONE,
        chromium,
        live_server,
        screenshot_dir,
        sideways_overflow,
        sign_in,
    )

    make_staff(fresh_app, Role.AUDITOR, "auditor1")
    with chromium() as browser, live_server(fresh_app) as base:
        for name, size in (("phone", PHONE), ("laptop", LAPTOP)):
            context = browser.new_context(viewport=size)
            context.add_cookies([{"name": LANG_COOKIE, "value": language, "url": base}])
            page = context.new_page()
            sign_in(page, base, "auditor1", "Audit2026ok")
            page.goto(f"{base}/stats/definitions")
            assert page.locator("section.card").count() == len(FIGURES)
            assert sideways_overflow(page) <= 0
            folder = screenshot_dir()
            if folder:
                page.screenshot(
                    path=str(folder / f"definitions-{language}-{name}.png"), full_page=True
                )
            context.close()
