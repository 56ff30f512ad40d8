"""``make frontend-dev``'s checks around starting the app, before Vite starts.

    python scripts/wait_for_app.py free HOST PORT    # before the app starts
    python scripts/wait_for_app.py PID HOST PORT     # once it runs in the background

``free`` exits 1, with a line on stderr, when something already answers at
HOST:PORT: that server would answer the wait below while the app, unable to
bind, is still exiting. The wait exits 0 once a connection to HOST:PORT
succeeds and the app's process (PID) is still running a second later, and
exits 1, with a line on stderr, when the process ends first or 60 s pass. So
a bad setting or a busy port stops ``make frontend-dev`` instead of leaving
Vite's proxy in front of nothing.
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


def free(host: str, port: int) -> int:
    if answers(host, port):
        print(f"make frontend-dev: {host}:{port} is taken by another server", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "free":
        sys.exit(free(sys.argv[2], int(sys.argv[3])))
    sys.exit(main(int(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
