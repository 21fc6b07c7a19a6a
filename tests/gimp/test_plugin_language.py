"""The plug-in in the person's language, in real GIMP 3.0 and 3.2: with ``LANGUAGE=de`` the
menu label and blurb GIMP registers, and the one-line messages (no key configured; a job that
fails on fal) are German.  The chroots carry no system locales: the plug-in reads its own
catalog with Python's gettext, which takes the language from LANGUAGE as GIMP sets it.

The dialog and the wait window in German are covered by test_plugin_gui.py (the full GIMP).
"""

from __future__ import annotations

from .harness import KEY, local_server, server_env


def test_menu_label_and_messages_follow_language_de(gimp):
    gimp.install_plugin()
    with local_server(scenarios=["fail-job"]) as server:
        result = gimp.run_batch(
            "language_probe",
            {"key": KEY},
            env={**server_env(server, key=None), "LANGUAGE": "de"},
            timeout=300,
        )
        submits = list(server.submits)
    report = result.check()
    assert report["menu_label"] == "Bild erweitern (FLUX.2 pro)…", report
    assert report["recover_label"] == "Letzte Bilderweiterung wiederherstellen", report
    assert report["blurb"].startswith("Das Bild mit FLUX.2 [pro] auf fal.ai"), report
    assert report["no_key_status"] == "execution-error", report
    assert report["no_key"].startswith(
        "Kein fal-API-Schlüssel: setzen Sie die Umgebungsvariable FAL_KEY"
    ), report
    assert report["failed_status"] == "execution-error", report
    assert report["failed"].startswith("fal konnte den Auftrag nicht ausführen (HTTP 500"), report
    assert f"(Anfrage {submits[0]})" in report["failed"], (report, submits)
    assert report["layers"] == ["Source"], report  # nothing placed by either run
    assert KEY not in repr(report)


def test_without_language_the_plugin_speaks_english(gimp):
    gimp.install_plugin()
    result = gimp.run_batch(
        "language_probe",
        {"key": KEY},
        env={**server_env(None, key=None), "LANGUAGE": "", "LC_ALL": "C.UTF-8"},
        timeout=300,
    )
    report = result.check()
    assert report["menu_label"] == "Outpaint (FLUX.2 pro)…", report
    assert report["no_key"].startswith("No fal API key: set the FAL_KEY environment"), report
