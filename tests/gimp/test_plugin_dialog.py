"""The interactive path under Xvfb: the settings dialog, the key prompt, the wait dialog.

GIMP runs as gimp-console with DISPLAY set (a plug-in may open windows from the console
build) and the batch inside/dialog_run.py; a small driver inside the chroot
(inside/dialog_driver.py) finds the windows with xdotool, waits until each is drawn, takes
screenshots with ImageMagick and clicks.  There is no window manager, so keyboard focus
follows the pointer: the driver moves the pointer onto a window (and waits until it is
there) before typing.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from .harness import KEY, files_containing, gui_driver, local_server, server_env

SETTINGS_TITLE = r"^Outpaint \(FLUX\.2 pro\)$"
SCREEN = "1280x1024x24"
DRIVER_TIMEOUT_S = 240
MARK_POLL_S = 0.05


@contextlib.contextmanager
def marks(gimp, conditions: dict[str, Callable[[], bool]]) -> Iterator[None]:
    """Write the file ``name`` into the session folder as soon as ``conditions[name]()`` holds
    (a driver step's ``after``: what the host sees that the driver cannot)."""
    done = threading.Event()

    def watch() -> None:
        pending = dict(conditions)
        while pending and not done.is_set():
            for name, condition in list(pending.items()):
                if condition():
                    (gimp.host_dir / name).write_text("1")
                    del pending[name]
            done.wait(MARK_POLL_S)

    thread = threading.Thread(target=watch, name="marks")
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def run_interactive(
    gimp,
    steps: list[dict],
    env: dict[str, str],
    when: dict[str, Callable[[], bool]] | None = None,
    args: dict | None = None,
    repeat: bool = False,
    gui: bool = False,
) -> tuple[dict, list, str]:
    """``args``: more arguments of the plug-in (the first interactive run in a fresh profile
    starts from them); ``repeat``: a script's run, then Repeat (last values) on its selected
    result.  Returns the batch's report, the driver's steps and GIMP's stderr."""
    gimp.install_plugin()
    params = {"screen": SCREEN, "steps": steps}
    with (
        marks(gimp, when or {}),
        gui_driver(gimp, "dialog_driver.py", params, DRIVER_TIMEOUT_S) as display,
    ):
        result = gimp.run_batch(
            "dialog_run",
            {"args": args or {}, "repeat": repeat},
            env={**env, "DISPLAY": display},
            timeout=200,
            gui=gui,
        )
    driver = json.loads((gimp.host_dir / "driver.json").read_text())
    assert driver["failure"] is None, (
        f"the driver gave up: {driver['failure']} (Xvfb: {driver['xvfb']})\n{result.describe()}"
    )
    return result.check(), driver["steps"], result.stderr


def saved_shot(gimp, name: str) -> Path:
    path = gimp.host_dir / name
    assert path.is_file() and path.stat().st_size > 1000, f"no screenshot {name}"
    return path


def test_dialog_ok_runs_and_saves_last_values_without_the_key(gimp):
    with local_server(run_seconds=3) as server:
        report, seen, _ = run_interactive(
            gimp,
            [
                {"window": SETTINGS_TITLE, "shot": "dialog.png"},
                {"window": "^Outpainting$", "shot": "wait.png", "click": False, "timeout": 20},
            ],
            server_env(server),
        )
        submits = len(server.submits)
    assert report["status"] == "success", report
    assert report["layers"] == ["Outpaint", "Source"]
    assert submits == 1
    assert [s["found"] for s in seen] == [True, True], seen
    saved_shot(gimp, "dialog.png")
    saved_shot(gimp, "wait.png")
    last = list((gimp.host_profile / "plug-in-settings").glob("*flux-outpaint*.last"))
    assert last, "an interactive success saves last values"
    text = last[0].read_text(errors="replace")
    assert "expand-left" in text and KEY not in text
    assert files_containing(gimp.host_profile, KEY) == []


def test_key_prompt_remembers_the_key_privately(gimp):
    with local_server() as server:
        report, seen, _ = run_interactive(
            gimp,
            [
                {"window": SETTINGS_TITLE},
                {"window": "^fal API key$", "type": KEY, "shot": "key.png"},
            ],
            server_env(server, key=None),
        )
        submits = len(server.submits)
    assert [s["found"] for s in seen] == [True, True], seen
    assert report["status"] == "success", report
    assert submits == 1  # the server only accepts KEY: the typed key was used
    key_file = gimp.host_home / ".config" / "flux-outpaint" / "fal-key"
    assert key_file.read_text().strip() == KEY
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert files_containing(gimp.host_profile, KEY) == []


def test_wait_dialog_cancel_asks_fal_to_cancel_and_changes_nothing(gimp):
    with local_server(scenarios=["never-finish"]) as server:
        report, seen, _ = run_interactive(
            gimp,
            [
                {"window": SETTINGS_TITLE},
                # Cancel once fal has the job: the cancel must reach fal
                {"window": "^Outpainting$", "after": "submitted"},
            ],
            server_env(server),
            when={"submitted": lambda: bool(server.submits)},
        )
        submits = len(server.submits)
        cancels = [e for e in server.log if str(e.get("path", "")).endswith("/cancel")]
    assert [s["found"] for s in seen] == [True, True], seen
    assert report["status"] == "cancel", report
    assert report["unchanged"] and report["layers"] == ["Source"]
    assert submits == 1 and cancels, server.log[-3:]


def test_repeat_shows_the_wait_window_and_its_cancel_cancels_on_fal(gimp):
    """Filters ▸ Repeat (Ctrl+F) runs with the last values and no settings dialog: it spends
    money like any run, so it shows the wait window, whose Cancel cancels on fal and then
    says what it cancelled.  The first run's result is selected; Repeat extends its source."""
    with local_server(run_seconds=6) as server:

        def second_submitted() -> bool:
            return len(server.submits) >= 2

        report, seen, stderr = run_interactive(
            gimp,
            [{"window": "^Outpainting$", "after": "submitted-again", "shot": "repeat.png"}],
            server_env(server),
            when={"submitted-again": second_submitted},
            repeat=True,
        )
        submits = list(server.submits)
        cancels = [e for e in server.log if str(e.get("path", "")).endswith("/cancel")]
    assert report["first"] == "success", report
    assert report["selected_before"] == "Outpaint", report  # the result, selected
    assert [s["found"] for s in seen] == [True], seen
    assert report["status"] == "cancel", report
    assert report["unchanged"] and report["layers"] == ["Outpaint", "Source"], report
    assert len(submits) == 2
    assert {e["path"].rsplit("/", 2)[-2] for e in cancels} == {submits[1]}, server.log[-4:]
    # the line after Cancel (a GIMP message: stderr in gimp-console); queued or already
    # running on fal, depending on which status the plug-in had seen when Cancel came
    said = re.search(r"Outpaint cancelled: 1 request (left fal's queue|had started)", stderr)
    assert said, stderr[-2000:]


BROWSER_DESKTOP = """[Desktop Entry]
Type=Application
Name=Recording browser
Exec={script} %u
MimeType=text/html;x-scheme-handler/file;
NoDisplay=true
"""


def _recording_browser(gimp) -> Path:
    """A web browser for GIMP's help that writes the address it was asked to open into the
    session folder (``help-uri``); GIMP's help goes to the web browser (the chroots have no
    help-browser plug-in), which opens what the desktop's default for HTML is."""
    uri_file = gimp.host_dir / "help-uri"
    script = gimp.host_dir / "record-browser"
    script.write_text(f'#!/bin/sh\nprintf "%s" "$1" > {gimp.chroot(uri_file)}\n')
    script.chmod(0o755)
    apps = gimp.host_home / ".local" / "share" / "applications"
    apps.mkdir(parents=True, exist_ok=True)
    (apps / "recording-browser.desktop").write_text(
        BROWSER_DESKTOP.format(script=gimp.chroot(script))
    )
    config = gimp.host_home / ".config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "mimeapps.list").write_text(
        "[Default Applications]\ntext/html=recording-browser.desktop\n"
        "x-scheme-handler/file=recording-browser.desktop\n"
    )
    gimp.host_profile.mkdir(parents=True, exist_ok=True)
    with (gimp.host_profile / "gimprc").open("a") as rc:
        rc.write("(help-browser web-browser)\n")
    return uri_file


def test_help_opens_the_plugins_own_page(gimp):
    uri_file = _recording_browser(gimp)
    with local_server() as server:
        report, seen, stderr = run_interactive(
            gimp,
            [
                {"window": SETTINGS_TITLE, "click": "help", "then": "help-opened"},
                {"window": SETTINGS_TITLE},
            ],
            server_env(server),
            when={"help-opened": uri_file.is_file},
            gui=True,  # gimp-console has no help system
        )
    assert [s["found"] for s in seen] == [True, True], seen
    # GIMP's help asks for file://…/help/en/index.html; the desktop hands a local file over
    # as its path
    uri = uri_file.read_text()
    path = uri.removeprefix("file://")
    assert path.endswith("/plug-ins/flux-outpaint/help/en/index.html"), uri
    page = gimp.host(path)
    assert "<h1>Outpaint (FLUX.2 pro)</h1>" in page.read_text(encoding="utf-8")
    assert report["status"] == "success", report


def test_help_follows_gimps_help_language(gimp):
    """GIMP picks help/<language>/ from its help-locales preference (by default the UI's
    language), so a Brazilian help preference opens the Brazilian page."""
    uri_file = _recording_browser(gimp)
    with (gimp.host_profile / "gimprc").open("a") as rc:
        rc.write('(help-locales "pt_BR")\n')
    with local_server() as server:
        report, seen, stderr = run_interactive(
            gimp,
            [
                {"window": SETTINGS_TITLE, "click": "help", "then": "help-opened"},
                {"window": SETTINGS_TITLE},
            ],
            server_env(server),
            when={"help-opened": uri_file.is_file},
            gui=True,
        )
    assert [s["found"] for s in seen] == [True, True], seen
    path = uri_file.read_text().removeprefix("file://")
    assert path.endswith("/plug-ins/flux-outpaint/help/pt_BR/index.html"), path
    page = gimp.host(path).read_text(encoding="utf-8")
    assert '<html lang="pt-BR">' in page
    assert "<h1>Outpainting (FLUX.2 pro)</h1>" in page
    assert report["status"] == "success", report
