"""Stopping on SIGTERM, SIGINT or a closed stdout: whole lines only, no STATE after the stop.

Meltano and orchestrators cancel a tap with SIGTERM. The SDK's handler writes a STATE
from inside the signal handler, through the writer whose lock the interrupted flush may
hold (a deadlock), and a handler that raises while the main thread writes to stdout cuts
the line under way in half, so the target fails on it. A stop here goes like this:

* The handler writes nothing. It records the signal and raises :class:`Stopped` at once,
  unless a block of whole lines is being written to stdout (the writer marks that with
  :func:`begin_write` / :func:`end_write`, from whichever table's thread writes): then the
  block is finished and :func:`end_write` raises. Nothing is written after a stop, so the
  last STATE on stdout covers only records written, complete, before it. The process
  never ends in the middle of a block: the way out waits for the block's lock.
* :class:`Stopped` is a ``BaseException``: the ``except Exception`` of the SDK and of the
  streams let it through. On the way out the fetchers do not wait for threads still in a
  request, and the client refuses new requests and cuts its retry pauses short
  (:func:`stopping`).
* Uncaught, it ends the process from ``sys.excepthook`` with one line on stderr and exit
  code 128 + the signal's number, through ``os._exit`` so that no thread stuck in a request
  is waited for. Should anything on the way out block, a deadline ends the process the
  same way :data:`DEADLINE_SECONDS` after the stop, though never in the middle of a block.
* A stdout closed by its reader (the target died) stops the tap the same way, exit code 1.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import NoReturn

# After a stop, the process ends this soon even if the way out blocks somewhere.
DEADLINE_SECONDS = 3.0
OUTPUT_CLOSED_EXIT_CODE = 1


class Stopped(BaseException):
    """The tap is stopping; ``str()`` is the line it ends with."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class _Shutdown:
    """The process's one stop (signals are process-wide). The signal handler runs between
    any two bytecodes of the main thread, so it never waits for a lock; a block of lines
    is written holding ``write_lock``, which the process takes before it ends."""

    stop: Stopped | None = None
    write_lock = threading.Lock()
    exit_after_write = False
    previous_hook: Callable[[type[BaseException], BaseException, TracebackType | None], object]


_state = _Shutdown()


def stopping() -> bool:
    """Whether the tap is stopping: no new request, no waiting for threads."""
    return _state.stop is not None


def on_signal(signum: int) -> None:
    """Handle SIGTERM or SIGINT: stop, raising now unless a block is being written.

    A later signal changes nothing: the first stop is on its way out already.
    """
    if _state.stop is not None:
        return
    name = signal.Signals(signum).name
    _request_stop(
        Stopped(
            f"stopped by {name}; the last STATE written covers every record written before it",
            128 + signum,
        )
    )
    if not _state.write_lock.locked():
        _raise_stop()


def output_closed() -> Stopped:
    """Stop because stdout's reader went away; returns the exception for the writer to raise."""
    _request_stop(
        Stopped(
            "error: stdout was closed (the target stopped reading); stopping",
            OUTPUT_CLOSED_EXIT_CODE,
        )
    )
    assert _state.stop is not None
    return _state.stop


def begin_write() -> None:
    """A block of lines starts going to stdout; refused after a stop."""
    _state.write_lock.acquire()
    if _state.stop is not None:
        _state.write_lock.release()
        _raise_stop()


def end_write() -> None:
    """The block is written: raise the stop that came meanwhile, if one did."""
    _state.write_lock.release()
    if _state.exit_after_write:
        _exit()
    if _state.stop is not None:
        _raise_stop()


def _request_stop(stop: Stopped) -> None:
    """Record the first stop, and arrange for the process to end soon after it."""
    if _state.stop is not None:
        return
    _state.stop = stop
    _state.previous_hook = sys.excepthook
    sys.excepthook = _excepthook
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGALRM, _on_deadline)
        signal.setitimer(signal.ITIMER_REAL, DEADLINE_SECONDS)


def _raise_stop() -> NoReturn:
    stop = _state.stop
    assert stop is not None
    raise Stopped(str(stop), stop.exit_code)


def _excepthook(
    exc_type: type[BaseException], exc: BaseException, traceback: TracebackType | None
) -> None:
    if isinstance(exc, Stopped):
        try:
            sys.stderr.flush()
        finally:
            _exit()
    _state.previous_hook(exc_type, exc, traceback)


def _on_deadline(signum: int, frame: FrameType | None) -> None:
    if _state.write_lock.locked():
        _state.exit_after_write = True
    else:
        _exit()


def _exit() -> NoReturn:
    """End the process now with the stop's line; stdout holds no partial line (no block is
    being written) and no thread is waited for."""
    stop = _state.stop
    assert stop is not None
    # A block another thread is writing is finished first (begin_write refuses new ones).
    _state.write_lock.acquire(timeout=DEADLINE_SECONDS)
    # Threads still in a request log nothing more: the stop's line is stderr's last.
    logging.disable(logging.CRITICAL)
    os.write(2, f"tap-stripe: {stop}\n".encode())
    os._exit(stop.exit_code)
