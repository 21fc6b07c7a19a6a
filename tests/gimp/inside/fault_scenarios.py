"""Batch of test_plugin_fault_matrix.py: every flux_outpaint_fal_local scenario through the plug-in.

``params``: ``scenarios`` (names, in order) and ``switch`` (see switching.ServerSwitch).
One scenario, the CLI's geometry (a 96×64 layer, 16 px added left and 8 below): the messages
then name the same sizes as the CLI rows.
"""

from __future__ import annotations

from prelude import all_layers, describe, make_image, outpaint, snapshot
from reporting import report
from switching import ServerSwitch


def scenario_case(switch_server, name):
    switch_server(name, [name])
    img, layer = make_image(112, 72, 16, 0, 96, 64)
    img.set_selected_layers([layer])
    img.clean_all()
    before = snapshot(img)
    r = outpaint(img, [layer])
    after = snapshot(img)
    info = {
        "ok": r["ok"],
        "status": r["status"],
        "message": r["message"],
        "undo_enabled": img.undo_is_enabled(),
    }
    if r["ok"]:
        new = describe(r["layer"], img)
        kept = [entry for entry in after["layers"] if entry[0] != new["name"]]
        info.update(
            new=new,
            layers=len(all_layers(img)),
            kept=kept == before["layers"]
            and after["size"] == before["size"]
            # the result is selected, as GIMP's own filters leave theirs
            and after["selected"] == [new["name"]],
        )
    else:
        info.update(same=after == before, dirty=bool(img.is_dirty()))
    report(**{name: info})
    img.delete()


def main(params):
    switch_server = ServerSwitch(params["session_dir"], params["switch"])
    for name in params["scenarios"]:
        scenario_case(switch_server, name)
