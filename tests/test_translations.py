"""The Chinese catalogue covers every string in the code and templates, and is compiled."""

from pathlib import Path

from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
PO = ROOT / "app" / "translations" / "zh" / "LC_MESSAGES" / "messages.po"


def message_ids(catalog) -> set[str]:
    return {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}


def test_every_string_is_in_the_chinese_catalogue_and_translated(tmp_path):
    pot = tmp_path / "messages.pot"
    CommandLineInterface().run(
        [
            "pybabel",
            "-q",
            "extract",
            "-F",
            str(ROOT / "babel.cfg"),
            "-k",
            "_l",
            "-o",
            str(pot),
            str(ROOT),
        ]
    )
    with pot.open("rb") as handle:
        wanted = message_ids(read_po(handle))
    assert len(wanted) > 100  # the extraction really found the strings
    with PO.open("rb") as handle:
        catalog = read_po(handle, locale="zh")
    missing = sorted(wanted - message_ids(catalog))
    assert not missing, f"run `make messages` and translate: {missing}"
    untranslated = sorted(
        (m.id if isinstance(m.id, str) else m.id[0])
        for m in catalog
        if m.id and (not (m.string if isinstance(m.string, str) else m.string[0]) or m.fuzzy)
    )
    assert not untranslated, f"translate in {PO.relative_to(ROOT)}: {untranslated}"
