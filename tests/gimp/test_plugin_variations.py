"""Variations in real GIMP 3.0 and 3.2: one take is a layer, three are a layer group.

``outcome``: one GIMP profile per version, four batches (inside/variations_cases.py): one and
three takes, recover of the run and two takes beside a layer in a group, against a plain local
server; three takes against ``fail-once`` (the first job that runs fails), then recover by the
failed one's id; three against ``fail-job`` (all fail); two against ``drift`` with colour
matching, then recover.  Cancel goes through the wait window under
Xvfb (test_plugin_dialog.py's driver); the one undo step through GIMP's own Ctrl+Z
(test_plugin_undo.py's driver), which first takes a screenshot of the group in the Layers dock:
with FLUX_OUTPAINT_SCREENSHOT_DIR set it is copied there as ``group-<GIMP version>.png``
(a widened dock; the README's dock at its default width comes from test_plugin_gui.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from .harness import KEY, files_containing, gui_driver, local_server, one_line, server_env
from .sandbox import GimpSession
from .test_plugin_dialog import SETTINGS_TITLE, run_interactive, saved_shot
from .test_plugin_gui import SCREENSHOT_DIR_ENV

GROWN = [464, 332]  # 400×300 with 64 px added left and 32 on top
NAMES = ["#1 Outpaint", "#2 Outpaint", "#3 Outpaint"]  # the number first: a narrow dock
# the screen with the group in the Layers dock, before Ctrl+Z (README's picture is cut from it)
UNDO_DRIVER = {"screen": "1280x1024x24", "shot": "group.png"}
DOCK_WIDTH = '(right-docks-width "360")'
SYSTEM_SESSIONRC = "/etc/gimp/3.0/sessionrc"  # both GIMPs' (3.2 keeps the 3.0 folder)


@pytest.fixture(scope="module", params=["trixie", "forky"], ids=["gimp3.0", "gimp3.2"])
def outcome(request, vendor_dir):
    """Each batch's report (``partial``: the whole batch result, for its stderr), the submits
    the server saw, and the profile files holding the key."""
    session = GimpSession(request.param, vendor=lambda: vendor_dir)
    try:
        session.install_plugin()
        with local_server() as server:
            main = session.run_batch("variations_cases", env=server_env(server)).check()
            submits = list(server.submits)
        with local_server(scenarios=["fail-once"]) as server:
            partial = session.run_batch("variations_cases:partial", env=server_env(server))
            partial_submits = list(server.submits)
        with local_server(scenarios=["fail-job"]) as server:
            lost = session.run_batch("variations_cases:all_fail", env=server_env(server)).check()
            lost["submits"] = list(server.submits)
        with local_server(scenarios=["drift"]) as server:
            drift = session.run_batch("variations_cases:drift", env=server_env(server)).check()
            drift["submits"] = list(server.submits)
        leaks = files_containing(session.host_profile, KEY)
        yield {
            "main": main,
            "submits": submits,
            "partial": partial,
            "partial_submits": partial_submits,
            "leaks": leaks,
            "drift": drift,
            "lost": lost,
        }
    finally:
        session.close()


def test_one_take_is_one_layer_as_before(outcome):
    main = outcome["main"]
    one = main["one"]
    assert one["ok"], one
    assert not one["is_group"] and one["group"]["name"] == "Outpaint"
    assert one["group"]["has_mask"] and one["top"] == ["Outpaint", "Source"]
    assert one["canvas"] == GROWN


def test_three_takes_are_a_group_above_the_source(outcome):
    main = outcome["main"]
    three = main["three"]
    assert three["ok"], three
    assert three["is_group"] and three["is_layer"]  # returned through the layer return value
    assert three["group"]["name"] == "Outpaint"
    assert three["top"] == ["Outpaint", "Source"]  # directly above the source, same parent
    assert three["group"]["parent"] is None and three["src"]["parent"] is None
    assert [c["name"] for c in three["children"]] == NAMES
    assert all(c["parent"] == "Outpaint" and c["has_mask"] for c in three["children"])
    assert three["visible"] == [True, False, False]
    assert three["same_masks"]
    # every take covers the grown canvas, like the single layer does
    assert {(c["x"], c["y"], c["w"], c["h"]) for c in three["children"]} == {(0, 0, *GROWN)}
    assert three["canvas"] == GROWN and three["layers"] == 5
    assert three["src_unchanged"] and three["selected"] == ["Outpaint"]  # the group


def test_exactly_one_submit_per_take_and_one_run_in_the_journal(outcome):
    main, submits = outcome["main"], outcome["submits"]
    assert len(submits) == 1 + 3 + 2  # one, three (then recover: never submits), nested
    # the journal as it was after the three takes: one run of three
    runs = [e for e in main["journal"].values() if "run" in e]
    assert len(runs) == 3 and len({e["run"] for e in runs}) == 1
    assert sorted(e["variation"] for e in runs) == [1, 2, 3]
    assert set(main["journal"]) == set(submits[:4])


def test_a_source_inside_a_group_gets_the_takes_directly_above_it_there(outcome):
    nested = outcome["main"]["nested"]
    assert nested["ok"], nested
    assert nested["group"]["name"] == "Outpaint" and nested["is_group"]
    assert nested["group"]["parent"] == nested["src"]["parent"] == "Group"
    assert nested["group"]["position"] == 1 and nested["src_position"] == 2  # under "Above"
    assert [c["name"] for c in nested["children"]] == NAMES[:2]
    assert [c["parent"] for c in nested["children"]] == ["Outpaint", "Outpaint"]
    assert nested["visible"] == [True, False]


def test_recover_brings_the_whole_run_back_as_a_group(outcome):
    main = outcome["main"]
    back = main["recover"]
    assert back["ok"], back
    assert back["is_group"] and back["group"]["name"] == "Outpaint (recovered)"
    # in the image that still holds the originals, GIMP makes the names unique ("… #1")
    assert [re.sub(r" #\d+$", "", c["name"]) for c in back["children"]] == NAMES
    assert back["visible"] == [True, False, False]
    assert back["same_pixels"]


def test_one_failed_take_is_named_and_the_others_are_placed(outcome):
    partial, submits = outcome["partial"], outcome["partial_submits"]
    report = partial.check()
    info = report["partial"]
    assert info["ok"], info
    assert len(submits) == 3
    failed = [rid for rid, e in report["journal"].items() if e["state"] == "failed"]
    assert len(failed) == 1, report["journal"]
    lost = report["journal"][failed[0]]["variation"]
    kept = [n for n in NAMES if n != f"#{lost} Outpaint"]
    assert [c["name"] for c in info["children"]] == kept
    assert info["visible"] == [True, False]
    # Gimp.message in gimp-console goes to stderr: one line naming the failed request
    lines = [ln for ln in partial.stderr.splitlines() if "variations failed" in ln]
    assert len(lines) == 1, partial.stderr[-2000:]
    assert "1 of 3 variations failed" in lines[0] and f"variation {lost}" in lines[0]
    assert failed[0] in lines[0]
    assert [rid for rid in submits if rid in lines[0]] == failed
    # recover asked for the failed one: the two others come back, the failed one is named
    back = report["recover"]
    assert back["ok"], back
    assert [re.sub(r" #\d+$", "", n) for n in back["names"]] == kept
    again = [ln for ln in partial.stderr.splitlines() if "could not be recovered" in ln]
    assert len(again) == 1 and "1 of 3 variations could not be recovered" in again[0], again
    assert failed[0] in again[0]


def test_when_every_take_fails_the_image_is_untouched_and_each_is_named(outcome):
    lost = outcome["lost"]
    info = lost["all_fail"]
    assert not info["ok"] and info["status"] == "execution-error", info
    assert info["unchanged"]
    message = info["message"]
    assert one_line(message) and message.startswith("3 of 3 variations failed"), message
    assert len(lost["submits"]) == 3
    assert all(rid in message for rid in lost["submits"]), message
    assert KEY not in message


def test_every_take_is_colour_matched_and_recovered_as_placed(outcome):
    drift = outcome["drift"]
    info = drift["drift"]
    assert info["ok"], info
    assert [c["name"] for c in info["children"]] == NAMES[:2]
    takes = {rid: e for rid, e in drift["journal"].items() if rid in drift["submits"]}
    assert len(takes) == 2 == len(drift["submits"])
    # the correction is noted just before it is applied, for each take on its own
    assert all(e.get("corrected") for e in takes.values()), takes
    back = drift["recover"]
    assert back["ok"], back
    assert [re.sub(r" #\d+$", "", n) for n in back["names"]] == NAMES[:2]
    assert back["same_pixels"]


def test_key_is_in_no_profile_file(outcome):
    main, partial, leaks = outcome["main"], outcome["partial"], outcome["leaks"]
    assert leaks == []
    assert KEY not in repr(main) and KEY not in partial.stderr


def test_cancel_during_three_running_requests_cancels_each_on_fal(gimp):
    # never-finish without queue time: each job runs on the server as soon as it is submitted
    with local_server(scenarios=["never-finish"]) as server:
        report, seen, _ = run_interactive(
            gimp,
            [
                {"window": SETTINGS_TITLE, "shot": "settings-variations.png"},
                {"window": "^Outpainting$", "after": "running", "shot": "wait-variations.png"},
            ],
            server_env(server),
            when={"running": lambda: len(server.submits) == 3},
            args={"variations": 3},
        )
        submits = list(server.submits)
        cancels = [e for e in server.log if str(e.get("path", "")).endswith("/cancel")]
    assert [s["found"] for s in seen] == [True, True], seen
    assert report["status"] == "cancel", report
    assert report["unchanged"] and report["layers"] == ["Source"]
    assert len(submits) == 3
    cancelled = {e["path"].rsplit("/", 2)[-2] for e in cancels}
    assert cancelled == set(submits), server.log[-6:]
    saved_shot(gimp, "settings-variations.png")
    saved_shot(gimp, "wait-variations.png")


def _wide_layers_dock(gimp) -> None:
    """Room in the Layers dock for the takes' names in the screenshot: GIMP's default session
    (the chroot's sessionrc) with a wider right dock, in the profile, read at start-up."""
    default = gimp.host(SYSTEM_SESSIONRC)
    text = re.sub(r'\(right-docks-width "\d+"\)', DOCK_WIDTH, default.read_text())
    # the single-window size the driver would otherwise resize it to
    text = text.replace("(size 800 600)", "(size 1280 1000)")
    (gimp.host_profile / "sessionrc").write_text(text)


def test_three_takes_and_the_growth_are_one_undo_step(gimp):
    gimp.install_plugin()
    _wide_layers_dock(gimp)
    with (
        local_server() as server,
        gui_driver(gimp, "undo_driver.py", UNDO_DRIVER, 300) as display,
    ):
        result = gimp.run_batch(
            "undo_run",
            {"wait_s": 60, "args": {"variations": 3}},
            env={**server_env(server), "DISPLAY": display},
            timeout=200,
            gui=True,
        )
        submits = len(server.submits)
    driver = json.loads((gimp.host_dir / "driver.json").read_text())
    assert driver["failure"] is None, f"the driver gave up: {driver}\n{result.describe()}"
    assert result.error is None, result.error + result.stderr[-2000:]
    report = result.report
    assert report is not None, f"the batch never finished: {result.describe()}"
    assert report["ok"] and report["changed"], report
    assert report["size_after"] == [564, 332] and submits == 3
    assert report["layers_after"] == ["Outpaint", *NAMES, "Source"]
    assert report["undo_seen"], "Ctrl+Z did not remove the group"
    assert report["undone"], report
    assert report["size_undone"] == [500, 300] and report["layers_undone"] == ["Source"]
    shot = saved_shot(gimp, "group.png")
    if folder := os.environ.get(SCREENSHOT_DIR_ENV):
        shutil.copy(shot, Path(folder) / f"group-{gimp.gimp_version}.png")
