"""Translations: the template is the sources' marked strings, every catalog covers it with the
same placeholders, the compiled catalogs are current and shipped, and the core's messages
follow whatever catalog the GIMP glue installs (the CLI installs none: English)."""

from __future__ import annotations

import gettext
import io
import re
import zipfile
from pathlib import Path

import pytest
from flux_outpaint import download, i18n, imageinfo, settings
from flux_outpaint.errors import ConfigError, ResultError, error_from_response, user_message
from flux_outpaint.status import Phase, Progress
from flux_outpaint.variations_text import cancel_summary, layer_name, row_text
from script_modules import load_install, script

tool = script("i18n")
LANGUAGES = ("de", "es", "fr", "ja", "pt_BR", "zh_CN")


@pytest.fixture
def german():
    with tool.mo_path("de").open("rb") as data:
        catalog = gettext.GNUTranslations(data)
    i18n.install(catalog.gettext, catalog.ngettext)
    try:
        yield catalog
    finally:
        i18n.uninstall()


def test_the_template_is_the_sources_marked_strings():
    assert tool.TEMPLATE.read_text(encoding="utf-8") == tool.template_text(), (
        "a translatable string changed: run python3 scripts/i18n.py pot, then update and "
        "translate the catalogs"
    )


def test_the_languages_we_ship_each_have_a_catalog():
    assert set(tool.catalogs()) == set(LANGUAGES)


def test_every_catalog_covers_the_template_with_its_placeholders():
    assert tool.problems() == []
    for lang, share in tool.coverage().items():
        assert share >= tool.MIN_COVERAGE, (lang, share)


def test_a_placeholder_a_translation_lost_is_reported(tmp_path, monkeypatch):
    _, messages = tool.read_po(tool.catalogs()["de"])
    broken = next(m for m in messages if "{status}" in m.msgid)
    broken.translations = [broken.translations[0].replace("{status}", "{stat}")]
    (tmp_path / "de.po").write_text("", encoding="utf-8")
    tool.write_po(tmp_path / "de.po", messages, "Language: de\n", template=False)
    monkeypatch.setattr(tool, "PO_DIR", tmp_path)
    assert any("placeholders differ" in line for line in tool.problems())


def test_a_new_string_in_the_sources_makes_the_template_stale(tmp_path):
    source = tmp_path / "mod.py"
    source.write_text(
        "from flux_outpaint.i18n import _, N_, ngettext\n"
        "A = N_('constant')\n"
        "def f(n, x):\n"
        "    _(x)  # a variable: translated where its literal was marked\n"
        "    return _('hello {name}'), ngettext('{n} take', '{n} takes', n)\n",
        encoding="utf-8",
    )
    found = tool.extract([source], tmp_path)
    assert [(m.msgid, m.plural) for m in found] == [
        ("constant", None),
        ("hello {name}", None),
        ("{n} take", "{n} takes"),
    ]
    assert found[0].where == ["mod.py"]


def test_compiled_catalogs_read_back_with_plurals():
    for lang in LANGUAGES:
        with tool.mo_path(lang).open("rb") as data:
            catalog = gettext.GNUTranslations(data)
        _, messages = tool.read_po(tool.catalogs()[lang])
        for m in messages:
            if m.plural is None:
                assert catalog.gettext(m.msgid) == m.translations[0], (lang, m.msgid)
            else:
                forms = {catalog.ngettext(m.msgid, m.plural, n) for n in (1, 2, 5)}
                assert forms <= set(m.translations), (lang, m.msgid)


def test_the_core_speaks_the_installed_language(german):
    with pytest.raises(Exception) as no_key:
        settings.load_api_key({"XDG_CONFIG_HOME": "/nonexistent-flux-outpaint", "HOME": "/x"})
    assert user_message(no_key.value).startswith("Kein fal-API-Schlüssel: setzen Sie")
    failed = error_from_response(500, {}, b'{"detail": "boom"}', request_id="rid-1")
    assert user_message(failed) == (
        "fal konnte den Auftrag nicht ausführen (HTTP 500): boom (Anfrage rid-1)"
    )
    assert Progress(Phase.QUEUED, queue_position=1, elapsed_s=3).describe() == (
        "Wartet in der Warteschlange von fal (Position 2)… 3 s"
    )


def test_the_cores_rarer_messages_follow_the_installed_language_too(german):
    """The result checks, the base-URL checks and the download rules reach GIMP's message too."""
    with pytest.raises(ResultError) as garbage:
        imageinfo.check_result(b"not an image at all", None)
    assert user_message(garbage.value) == "Das Ergebnis ist kein PNG- oder JPEG-Bild"
    with pytest.raises(ConfigError) as plain:
        settings.check_base_url("http://example.invalid", source="FAL_QUEUE_URL")
    assert user_message(plain.value).startswith(
        "FAL_QUEUE_URL verwendet unverschlüsseltes http:// für example.invalid;"
    )
    with pytest.raises(ResultError) as userinfo:
        download.check_url("https://user@127.0.0.1/x.png", "https://127.0.0.1")
    assert "Benutzernamen" in user_message(userinfo.value)


def test_without_a_catalog_the_core_is_english_for_the_cli():
    failed = error_from_response(500, {}, b'{"detail": "boom"}', request_id="rid-1")
    assert user_message(failed) == "fal could not run the job (HTTP 500): boom (request rid-1)"


def test_a_take_row_shows_its_own_log_line_only_while_it_runs():
    assert row_text(None) == "waiting to start"
    assert row_text(Progress(Phase.QUEUED, queue_position=2)) == "queued"
    assert row_text(Progress(Phase.RUNNING), "step 3/28") == "running: step 3/28"
    assert row_text(Progress(Phase.DONE), "step 28/28") == "done"


def test_the_line_after_cancel_says_what_was_stopped_and_billed():
    assert cancel_summary(["queued", "running", "running"]) == (
        "Outpaint cancelled: 1 request left fal's queue (not billed); 2 requests had started "
        "and were asked to stop (fal may bill them)."
    )
    assert cancel_summary(["sending"]) == (
        "Outpaint cancelled: 1 request was never sent (not billed)."
    )
    assert cancel_summary(["done", "queued"]).endswith(
        "1 request had finished (billed; Recover brings it back)."
    )
    assert cancel_summary([]) == "Outpaint cancelled; nothing was billed."


def test_the_line_after_cancel_in_german(german):
    assert cancel_summary(["queued", "queued"]) == (
        "Bilderweiterung abgebrochen: 2 Anfragen aus der Warteschlange von fal genommen "
        "(nicht berechnet)."
    )


def test_the_release_zip_carries_every_compiled_catalog(tmp_path):
    install = load_install()
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    (vendor / "placeholder.txt").write_text("vendored packages go here")
    out = tmp_path / "flux-outpaint.zip"
    install.build_zip(Path(tool.PLUGIN), vendor, out)
    names = set(zipfile.ZipFile(io.BytesIO(out.read_bytes())).namelist())
    for lang in LANGUAGES:
        assert f"flux-outpaint/locale/{lang}/LC_MESSAGES/flux-outpaint.mo" in names, lang
    for lang in ("en", *LANGUAGES):
        for page in ("gimp-help.xml", "index.html"):
            assert f"flux-outpaint/help/{lang}/{page}" in names, (lang, page)


def help_outline(lang: str) -> list[str]:
    """The page's skeleton: its tags, in order, and its anchors (the text is the language's)."""
    page = (Path(tool.PLUGIN) / "help" / lang / "index.html").read_text(encoding="utf-8")
    return re.findall(r"<(/?[a-z0-9]+)(?:\s+id=\"([^\"]*)\")?", page)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_language_has_the_help_page_with_the_english_pages_structure(lang):
    """GIMP looks for help/<language>/gimp-help.xml and falls back to help/en/ without one."""
    folder = Path(tool.PLUGIN) / "help"
    assert (folder / lang / "gimp-help.xml").read_bytes() == (
        folder / "en" / "gimp-help.xml"
    ).read_bytes()
    assert help_outline(lang) == help_outline("en")
    page = (folder / lang / "index.html").read_text(encoding="utf-8")
    assert f'<html lang="{lang.replace("_", "-")}">' in page
    english = (folder / "en" / "index.html").read_text(encoding="utf-8")
    assert "extends a photo beyond its borders" in english
    assert "extends a photo beyond its borders" not in page


def test_takes_are_named_number_first_for_a_narrow_layers_dock(german):
    assert layer_name(0) == "#1 Erweiterung"
    i18n.uninstall()
    assert [layer_name(i) for i in range(3)] == ["#1 Outpaint", "#2 Outpaint", "#3 Outpaint"]
