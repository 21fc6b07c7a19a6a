"""What the command tells its caller: its name, its exit statuses, and a usage error.

Exit statuses: 0 everything written, 1 something failed (each failure said in one line),
2 the command line contradicts itself (nothing submitted), 130 interrupted (Ctrl-C); 143
and 129 stopped by SIGTERM and SIGHUP (128 + the signal's number, ``signals``).
"""

from __future__ import annotations

PROG = "flux-outpaint"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """A contradiction in the command line: exit status 2, nothing submitted."""
