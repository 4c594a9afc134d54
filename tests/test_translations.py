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


def test_chinese_is_polite_and_names_platforms_by_their_name():
    """您 throughout, never 你; a platform's name is 名称, only a person's is 姓名."""
    with PO.open("rb") as handle:
        catalog = read_po(handle, locale="zh")
    for message in catalog:
        if not message.id:
            continue
        texts = [message.string] if isinstance(message.string, str) else list(message.string)
        source = message.id if isinstance(message.id, str) else message.id[0]
        for text in texts:
            assert "你" not in text, (source, text)
            if "platform" in source.lower() and "name" in source.lower():
                assert "姓名" not in text, (source, text)
