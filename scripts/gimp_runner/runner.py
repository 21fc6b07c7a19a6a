"""The file python-fu-eval runs for ``GimpSession.run_batch`` (scripts/gimp_session.py).

GIMP runs one fixed line (``gimp_session.BATCH_COMMAND``), which runs this file as ``__main__``;
the environment names the job, a JSON file the host wrote next to the batch:

    {"batch": "module" or "module:function", "params": {...}, "result": "/path/result.json"}

The session's inside/ folder (this file, reporting.py and the batches) goes on ``sys.path``,
the batch's function (``main`` unless named) is called with ``params``, and the result file
always gets what the batch reported and, if it raised, its traceback:
``{"report": {...}, "error": None or "Traceback ..."}``.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
JOB_ENV = "FLUX_OUTPAINT_BATCH"  # the job file (chroot path); gimp_session.py sets it


def main() -> None:
    with open(os.environ[JOB_ENV], encoding="utf-8") as job_file:
        job = json.load(job_file)
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    import reporting

    state: dict[str, object] = {"report": reporting.REPORT, "error": None}
    try:
        module, _, function = job["batch"].partition(":")
        batch = importlib.import_module(module)
        getattr(batch, function or "main")(job["params"])
    except BaseException:
        state["error"] = traceback.format_exc()
        raise
    finally:
        with open(job["result"], "w", encoding="utf-8") as out:
            json.dump(state, out, default=repr)


if __name__ == "__main__":
    main()
