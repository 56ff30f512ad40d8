"""``make frontend-dev``'s wait: until the app answers at HOST:PORT, or its process ends.

    python scripts/wait_for_app.py PID HOST PORT

Exits 0 once a connection to HOST:PORT succeeds and the app's process (PID)
is still running a second later (a port that another server holds answers
too, while the app that could not bind it is still exiting); exits 1, with a
line on stderr, when the process ends first or 60 s pass. Vite is started
only after it, so a bad setting or a busy port stops ``make frontend-dev``
instead of leaving Vite's proxy in front of nothing.
"""

from __future__ import annotations

import os
import socket
import sys
import time

TIMEOUT = 60.0


def running(pid: int) -> bool:
    """Whether ``pid`` runs; an exited app stays a zombie until make's shell reaps it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:  # Linux: a zombie's state is Z
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return True  # no /proc (macOS): kill's answer is all there is


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host.strip("[]"), port), timeout=0.5):
            return True
    except OSError:
        return False


def main(pid: int, host: str, port: int) -> int:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if not running(pid):
            break
        if answers(host, port):
            time.sleep(1)
            if running(pid):
                return 0
            break
        time.sleep(0.1)
    else:
        print(f"make frontend-dev: the app did not answer at {host}:{port}", file=sys.stderr)
        return 1
    print("make frontend-dev: the app stopped (see above); Vite not started", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
