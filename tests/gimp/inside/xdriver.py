"""The X side of the GUI tests, run by the chroot's python3 (no GIMP imports): an Xvfb on a
display of its own, and xdotool/ImageMagick calls that wait for what they need to see.

Every wait polls for a condition and raises ``GaveUp`` (which says what it waited for) when
its timeout runs out; the drivers record that message for the host to fail the test with.
There is no window manager: windows keep the position they are given, and keyboard focus
follows the pointer.  The drivers run with the session folder as their working directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import time

POLL_S = 0.1
X_CALL_TIMEOUT_S = 30  # one xdotool or import call; import waits forever for a missing window


class GaveUp(Exception):
    """A wait ran out of time; the message says what never happened."""


def wait_until(check, timeout, what, poll=POLL_S):
    """``check()``'s first truthy value, polled every ``poll`` s; GaveUp after ``timeout``."""
    end = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise GaveUp(f"{what} (waited {timeout} s)")
        time.sleep(poll)


def wait_file(name, timeout, what):
    wait_until(lambda: os.path.exists(name), timeout, what)


def write_file(name, text):
    """Written under another name first: a poller never sees half of it."""
    with open(name + ".tmp", "w") as out:
        out.write(text)
    os.rename(name + ".tmp", name)


def _uniform(rgb):
    return rgb == rgb[:3] * (len(rgb) // 3)


class Xvfb:
    """Xvfb on a free display (``-displayfd``: the chroots share the host's abstract X
    sockets, so a fixed display number could meet another run's server).  Once the server
    answers, its display name is written to the file ``display``; its output goes to
    ``xvfb.log``."""

    def __init__(self, screen, timeout=60):
        r, w = os.pipe()
        with open("xvfb.log", "w") as log:
            self.process = subprocess.Popen(
                # -r: no key auto-repeat.  Xvfb repeats a key held 660 ms, and on a loaded
                # machine xdotool's release can come that late: one Tab would move the focus
                # several fields (seen once: the dialog's first Tab landed on the third field)
                ["Xvfb", "-displayfd", str(w), "-screen", "0", screen, "-nolisten", "tcp", "-r"],
                pass_fds=[w],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        os.close(w)
        # Read up to the newline and keep our end open while Xvfb runs: Xvfb may write the
        # number and the newline separately, and a closed pipe is a fatal error to it.
        self._displayfd = r
        number = b""
        end = time.monotonic() + timeout
        while not number.endswith(b"\n"):
            left = end - time.monotonic()
            chunk = os.read(r, 32) if left > 0 and select.select([r], [], [], left)[0] else b""
            if not chunk:
                self.stop()
                raise GaveUp(f"Xvfb never reported its display (waited {timeout} s): {self.log()}")
            number += chunk
        self.display = ":" + number.decode().strip()
        os.environ["DISPLAY"] = self.display  # for Gtk in the driver itself
        self.env = dict(os.environ)

        def answers():
            if self.process.poll() is not None:
                raise GaveUp(f"Xvfb {self.display} exited: {self.log()}")
            return self.x("getdisplaygeometry").strip()

        wait_until(answers, timeout, f"Xvfb {self.display} does not answer")
        write_file("display", self.display)

    def log(self):
        with open("xvfb.log", errors="replace") as log:
            return log.read()[-2000:]

    def status(self):
        """Whether Xvfb is still running, or how it ended and what it said."""
        code = self.process.poll()
        return "running" if code is None else f"exited {code}: {self.log()}"

    def stop(self):
        self.process.terminate()
        with contextlib.suppress(OSError):
            os.close(self._displayfd)

    # -- xdotool ------------------------------------------------------------------------------
    def x(self, *args):
        done = subprocess.run(
            ["xdotool", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=X_CALL_TIMEOUT_S,
        )
        return done.stdout

    def search(self, title, visible=True):
        return self.x("search", *(["--onlyvisible"] if visible else []), "--name", title).split()

    def find(self, title, timeout, visible=True, last=True):
        """The id of a window whose name matches ``title`` (a regex), once there is one."""
        ids = wait_until(
            lambda: self.search(title, visible), timeout, f"no window named {title!r}", 0.3
        )
        return ids[-1] if last else ids[0]

    def wait_gone(self, title, timeout):
        wait_until(
            lambda: not self.search(title, False),
            timeout,
            f"the window {title!r} did not close",
            0.3,
        )

    def geometry(self, wid):
        out = self.x("getwindowgeometry", "--shell", wid)
        values = dict(line.split("=", 1) for line in out.split())
        return {k.lower(): int(values[k]) for k in ("X", "Y", "WIDTH", "HEIGHT")}

    def place(self, wid, x=None, y=None, width=None, height=None, timeout=30):
        """Move and/or resize a window, then wait until its geometry says so."""
        if x is not None:
            self.x("windowmove", wid, str(x), str(y))
        if width is not None:
            self.x("windowsize", wid, str(width), str(height))
        wanted = {"x": x, "y": y, "width": width, "height": height}

        def there():
            g = self.geometry(wid)
            return all(v is None or g[k] == v for k, v in wanted.items()) and g

        return wait_until(there, timeout, f"window {wid} did not take the geometry {wanted}")

    def pointer_to(self, x, y, timeout=10):
        """Move the pointer to (x, y) on the screen and wait until it is there (the X server
        then delivers the enter and focus events before any key or click sent after this)."""
        self.x("mousemove", str(x), str(y))

        def there():
            out = self.x("getmouselocation", "--shell")
            values = dict(line.split("=", 1) for line in out.split())
            return int(values["X"]) == x and int(values["Y"]) == y

        wait_until(there, timeout, f"the pointer did not get to {x},{y}")

    def pointer_into(self, wid, dx, dy):
        """The pointer to (dx, dy) inside window ``wid``."""
        g = self.geometry(wid)
        self.pointer_to(g["x"] + dx, g["y"] + dy)
        return g

    def focus(self, wid, timeout=10):
        self.x("windowfocus", wid)
        wait_until(
            lambda: self.x("getwindowfocus").strip() == wid,
            timeout,
            f"window {wid} did not get the keyboard focus",
        )

    # -- screenshots --------------------------------------------------------------------------
    def grab(self, window="root"):
        """The window's pixels as raw RGB bytes, or None while it cannot be grabbed."""
        try:
            done = subprocess.run(
                ["import", "-window", window, "-depth", "8", "rgb:-"],
                env=self.env,
                capture_output=True,
                timeout=X_CALL_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            return None
        return done.stdout if done.returncode == 0 and done.stdout else None

    def shot(self, name, window="root"):
        subprocess.run(
            ["import", "-window", window, name],
            env=self.env,
            capture_output=True,
            timeout=X_CALL_TIMEOUT_S,
        )

    def wait_drawn(self, window, timeout, what):
        """Wait until the window can be grabbed and shows more than one flat colour: it is
        mapped and the toolkit has drawn it (for windows that never hold still, such as one
        with a pulsing progress bar)."""

        def drawn():
            rgb = self.grab(window)
            return rgb is not None and not _uniform(rgb)

        wait_until(drawn, timeout, f"{what} was never drawn")

    def wait_settled(self, window="root", timeout=30, what="the screen", changed_from=None):
        """Wait until two grabs in a row are the same picture, and not one flat colour: the
        window has been drawn and nothing is redrawing it.  With ``changed_from`` (an earlier
        grab), the picture must also differ from that one: what was asked for has happened."""
        previous = [None]

        def settled():
            now = self.grab(window)
            same = now is not None and now == previous[0]
            previous[0] = now
            if not same or _uniform(now):
                return None
            return changed_from is None or now != changed_from

        how = "change and then settle" if changed_from is not None else "settle"
        wait_until(settled, timeout, f"{what} did not {how}")
        return previous[0]

    def key_and_wait(self, key, what, window="root", timeout=30):
        """Press ``key`` and wait until the screen shows its effect (changed, then settled)."""
        before = self.wait_settled(window, timeout, f"{what}: the screen before")
        self.x("key", key)
        return self.wait_settled(window, timeout, what, changed_from=before)


def run_driver(params, state, body, batch_timeout, announce=False):
    """A driver's life: Xvfb up, ``body(xvfb)`` (which fills ``state``), then ``driver.json``
    (``state`` with ``failure``: what a wait gave up on, and Xvfb's status), ``driver-done``
    if ``announce``, and the display kept up until the host says the batch is done."""
    state.setdefault("failure", None)
    xvfb = None
    try:
        xvfb = Xvfb(params["screen"])
        body(xvfb)
    except GaveUp as exc:
        state["failure"] = str(exc)
    finally:
        state["xvfb"] = xvfb.status() if xvfb is not None else None
        with open("driver.json", "w") as out:
            json.dump(state, out)
        if announce:
            write_file("driver-done", "1")
        if xvfb is not None:
            try:
                wait_file("batch-done", batch_timeout, "the host never said the batch was done")
            finally:
                xvfb.stop()
