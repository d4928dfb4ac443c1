"""A shutdown that always ends: once the worker stops (a signal) or crashes, the process
exits within `DEADLINE_S`, whatever the stop waits for.

Faust stops its services one by one and awaits each; a consumer whose fetch or commit
never returns after a crash kept a worker at `Consumer: Stopping...` for minutes, still
answering /healthz, and a SIGTERM then changed nothing (a stop was under way). The
deadline runs on a thread of its own, so it fires even if the event loop is stuck.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

import faust
import structlog

_log = structlog.get_logger(__name__)

#: Seconds from a signal or a crash to a hard exit, if the worker has not exited by then.
DEADLINE_S = 15.0
#: The exit code when the deadline is reached (a supervisor restarts the worker).
EXIT_CODE = 1


class ExitDeadline:
    """Armed once; then the process ends within `seconds`, with `EXIT_CODE` if the
    orderly stop has not ended it first."""

    def __init__(self, seconds: float = DEADLINE_S) -> None:
        self.seconds = seconds
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    @property
    def armed(self) -> bool:
        return self._timer is not None

    def arm(self, why: str) -> None:
        with self._lock:
            if self._timer is not None:
                return
            self._timer = threading.Timer(self.seconds, self._expire, args=(why,))
            self._timer.daemon = True
            self._timer.start()
        _log.info("shutdown_deadline_armed", why=why, deadline_s=self.seconds)

    def _expire(self, why: str) -> None:
        _log.critical(
            "shutdown_deadline_exceeded",
            why=why,
            deadline_s=self.seconds,
            exit_code=EXIT_CODE,
            detail="the worker did not stop in time: exiting without finishing the stop",
        )
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os._exit(EXIT_CODE)


class Worker(faust.Worker):
    """Faust's worker, whose stop is bounded (`ExitDeadline`) and whose crash is told to
    `on_crash` (liveness: /healthz fails from then on)."""

    def __init__(
        self, *args: Any, deadline: ExitDeadline, on_crash: Any = None, **kwargs: Any
    ) -> None:
        self._deadline = deadline
        self._on_crash = on_crash
        super().__init__(*args, **kwargs)

    def _schedule_shutdown(self, signal: Any) -> None:
        self._deadline.arm(f"signal {getattr(signal, 'name', signal)}")
        super()._schedule_shutdown(signal)

    def _crash(self, reason: BaseException) -> None:
        # mode marks every node up to this root crashed, whichever service crashed.
        if not self._deadline.armed:
            _log.error("worker_crashed", reason=repr(reason))
        self._deadline.arm(f"crash: {reason!r}")
        if self._on_crash is not None:
            self._on_crash(reason)
        super()._crash(reason)
