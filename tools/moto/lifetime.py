"""How our test servers end: with their parent (stdin EOF) or on SIGTERM/SIGINT, never later.

Shared by edgeplan_moto.py and fault_proxy.py (both run from this folder, which Python puts on
sys.path).
"""

import os
import signal
import sys
import threading


def exit_on_stdin_eof(name):
    """The parent holds our stdin: EOF means it is gone, so no server or proxy outlives a crashed test."""

    def watch():
        while sys.stdin.buffer.read(4096):
            pass
        try:
            print(f"{name}: stdin closed, exiting", file=sys.stderr, flush=True)
        finally:
            # Exit even when stderr is a broken pipe: it often dies with the parent.
            os._exit(0)

    threading.Thread(target=watch, name="stdin-watch", daemon=True).start()


def exit_on_signal():
    def stop(signum, frame):
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
