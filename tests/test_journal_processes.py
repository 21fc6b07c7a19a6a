"""Several processes on one journal: appends and compaction lose and tear nothing.

Four processes append 250 requests each while a fifth compacts over and over (each time
after adding settled requests of its own, so that every compaction really rewrites the file
under the writers).  Afterwards every line is whole JSON and all 1000 requests are there.
The processes are real ones (the lock is a file, shared across processes), started together.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

WRITERS, EACH = 4, 250

CODE = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from flux_outpaint.journal import Journal
    from flux_outpaint.journal_records import GimpLayer, State
    from flux_outpaint.status import RequestHandle

    path, role, start = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    while not start.exists():
        time.sleep(0.005)

    def handle(rid):
        root = "https://queue.fal.run/fal-ai/flux-2-pro/requests/" + rid
        return RequestHandle(rid, root + "/status", root, root + "/cancel")

    journal = Journal(path)
    if role == "compact":
        n, rounds = 0, 0
        done = Path(sys.argv[4])
        while not done.exists() or rounds < 3:
            for _ in range(20):
                rid = f"settled-{n}"
                n += 1
                journal.record_submit(handle(rid), GimpLayer(layer="x" * 200))
                journal.mark(rid, State.PLACED)
            journal.compact(keep_settled=5)
            rounds += 1
        print(rounds)
    else:
        for i in range(int(sys.argv[4])):
            journal.record_submit(handle(f"w{role}-{i}"), GimpLayer(layer=f"{role}/{i}"))
    """
)


def test_four_writers_and_a_compactor_keep_every_record_whole(tmp_path):
    path = tmp_path / "journal.jsonl"
    start, done = tmp_path / "start", tmp_path / "writers-done"

    def spawn(*args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-c", CODE, str(path), *args],
            stdout=subprocess.PIPE,
            text=True,
        )

    writers = [spawn(str(w), str(start), str(EACH)) for w in range(WRITERS)]
    compactor = spawn("compact", str(start), str(done))
    start.touch()
    for p in writers:
        assert p.wait(timeout=300) == 0
    done.touch()
    out, _ = compactor.communicate(timeout=300)
    assert compactor.returncode == 0
    rounds = int(out)
    assert rounds >= 3

    lines = path.read_bytes().splitlines()
    records = [json.loads(line) for line in lines]  # any torn line fails here
    written = {r["request_id"] for r in records if r["request_id"].startswith("w")}
    assert written == {f"w{w}-{i}" for w in range(WRITERS) for i in range(EACH)}
    assert all(
        r["purpose"]["layer"] == r["request_id"][1:].replace("-", "/")
        for r in records
        if r["request_id"].startswith("w")
    )
    # the compactions dropped the settled requests beyond the newest few
    settled = {r["request_id"] for r in records if r["request_id"].startswith("settled")}
    assert len(settled) <= 5 + 20
    assert not Path(str(path) + ".lock").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
