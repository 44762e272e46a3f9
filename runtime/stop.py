"""Stopping a run on Ctrl-C: the running script is killed, no new script or model call starts, and nothing
the stop cut short reaches the journal, so `resume` redoes exactly that and re-uses everything finished.

Why not plain KeyboardInterrupt: LangGraph runs a subgraph's nodes in worker threads and, when the main
thread is interrupted, waits for them; they would go on running scripts (and recording them) for as long
as their node takes. The flag here makes every worker stop at its next script or model call.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_STOP = threading.Event()
_RUNNING_GROUPS: set[int] = set()  # process groups of the scripts running now
_LOCK = threading.Lock()


class RunStopped(BaseException):
    """The user stopped the run. A BaseException, so that no node's `except Exception` records it as a failure."""


def stop_requested() -> bool:
    return _STOP.is_set()


def raise_if_stopped(what: str) -> None:
    if _STOP.is_set():
        raise RunStopped(f"the run was stopped; {what} is left for `resume`")


def request_stop() -> None:
    """Refuse new work and kill every running script's process group."""
    _STOP.set()
    with _LOCK:
        groups = list(_RUNNING_GROUPS)
    for group in groups:
        try:
            os.killpg(group, signal.SIGKILL)
        except OSError:  # already gone
            pass


def clear_stop() -> None:
    _STOP.clear()


@contextmanager
def running_group(pgid: int) -> Iterator[None]:
    """Register a script's process group while it runs, so that a stop can kill it."""
    with _LOCK:
        _RUNNING_GROUPS.add(pgid)
    try:
        if _STOP.is_set():  # the stop came between the script's start and its registration
            os.killpg(pgid, signal.SIGKILL)
        yield
    finally:
        with _LOCK:
            _RUNNING_GROUPS.discard(pgid)


@contextmanager
def stop_on_signals(on_stop: Callable[[], None] | None = None,
                    signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[None]:
    """While the body runs, the signals (Ctrl-C, `kill`) stop the run: request_stop(), then `on_stop()` (which
    may exit the process at once), then KeyboardInterrupt in the main thread. The flag is cleared on the way
    out. Signal handlers can only be set from the main thread: elsewhere the body keeps the handlers it has."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum, frame):
        request_stop()
        if on_stop is not None:
            on_stop()
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, handle) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        clear_stop()
