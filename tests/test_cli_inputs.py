"""Inputs that are not regular files, and outputs that are links, through the real CLI:
standard input from /dev/zero, a FIFO nobody writes to, ``<(cat in.png)``, a dangling link
as ``-o``.  Each ends in one clear line (or a result), never waits for ever, and nothing is
submitted for an input that could not be read.  The pieces are tested in test_cli_bounded.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
from cli_support import CLI, keyed, photo, run, text

pytestmark = pytest.mark.server


def cli(args: list, env, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(CLI), *map(str, args)], env=env, capture_output=True, **kw
    )


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_stdin_from_dev_zero_is_refused_in_one_line(tmp_path, env, server):
    with open("/dev/zero", "rb") as zeros:
        r = cli(
            ["-", "--right", "64", "-o", tmp_path / "o.png", "--base-url", server.base_url],
            keyed(env),
            stdin=zeros,
            timeout=60,
        )
    _, err = text(r)
    assert r.returncode == 1, err
    assert "stdin: Not an image" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert server.submits == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_without_a_writer_ends_at_the_timeout(tmp_path, env, server):
    fifo = tmp_path / "in.png"
    os.mkfifo(fifo)
    r = run([fifo, "--left", "16", "--timeout", "1", "--base-url", server.base_url], keyed(env), 60)
    _, err = text(r)
    assert r.returncode == 1, err
    assert "in.png: no complete image arrived within 1 s" in err and "Traceback" not in err
    assert server.submits == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_with_an_image_is_outpainted(tmp_path, env, server):
    fifo, source = tmp_path / "in.png", tmp_path / "src.png"
    photo(96, 64).save(source)
    os.mkfifo(fifo)

    def writer() -> None:
        with open(fifo, "wb") as f:
            f.write(source.read_bytes())

    threading.Thread(target=writer, daemon=True).start()
    out = tmp_path / "o.png"
    r = run([fifo, "--left", "16", "-o", out, "--base-url", server.base_url], keyed(env), 120)
    assert r.returncode == 0, text(r)
    assert out.exists() and len(server.submits) == 1


@pytest.mark.skipif(sys.platform == "win32" or not os.path.exists("/dev/fd"), reason="no /dev/fd")
def test_process_substitution_is_read_like_stdin(tmp_path, env, server):
    source = tmp_path / "src.png"
    photo(96, 64).save(source)
    out = tmp_path / "o.png"
    script = (
        f'"{sys.executable}" "{CLI}" <(cat "{source}") --left 16 -o "{out}" '
        f"--base-url {server.base_url}"
    )
    r = subprocess.run(["bash", "-c", script], env=keyed(env), capture_output=True, timeout=120)
    assert r.returncode == 0, text(r)
    assert out.exists() and len(server.submits) == 1


def test_a_dangling_link_as_output_is_refused_before_anything_is_paid(tmp_path, env, server):
    source = tmp_path / "src.png"
    photo(96, 64).save(source)
    out = tmp_path / "o.png"
    out.symlink_to(tmp_path / "missing" / "o.png")
    r = run([source, "--left", "16", "-o", out, "--base-url", server.base_url], keyed(env), 60)
    _, err = text(r)
    assert r.returncode == 1 and "exists; --force replaces it" in err, err
    assert server.submits == []
    assert out.is_symlink() and not out.exists()  # the link is left as it was


def test_too_many_pixels_names_the_input_once(tmp_path, env):
    from PIL import Image

    big = tmp_path / "big.png"
    Image.new("L", (20000, 15300)).save(big)  # 306 MP, a few hundred KB
    # a process of its own: the CLI turns Pillow's bomb warning into an error at import,
    # which a test runner's own warning filters would undo in process
    r = cli([big, "--left", "16", "--dry-run"], keyed(env), timeout=120)
    _, err = text(r)
    assert r.returncode == 1 and "too many pixels" in err, err
    assert err.count("big.png") == 1, err
