"""Deliver each alert to every receiver, retrying what can be retried and
dead-lettering what cannot be delivered. Nothing is dropped silently.

First cut of the pipeline: every receiver gets every alert. Routing, grouping,
silences and inhibition come as stages in front of this.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from anomalyd.clock import Clock
from anomalyd.domain import Alert
from anomalyd.metrics import Metrics
from anomalyd.notify.retry import DeliveryError, RetryPolicy

_log = structlog.get_logger(__name__)


class Notifier(Protocol):
    name: str

    async def send(self, alerts: Sequence[Alert]) -> None:
        """Deliver or raise DeliveryError."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A notification that could not be delivered, and why."""

    receiver: str
    reason: str
    attempts: int
    alerts: tuple[Alert, ...]


class Dispatcher:
    def __init__(
        self,
        notifiers: Sequence[Notifier],
        policy: RetryPolicy,
        clock: Clock,
        dead_letter: Callable[[DeadLetter], Awaitable[None]],
        metrics: Metrics,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._notifiers = list(notifiers)
        self._policy = policy
        self._clock = clock
        self._dead_letter = dead_letter
        self._metrics = metrics
        self._sleep = sleep
        self._rng = rng or random.Random()

    async def dispatch(self, alert: Alert) -> None:
        """Deliver one alert everywhere; returns when each receiver has it or dead-lettered it."""
        await asyncio.gather(*(self._deliver(n, (alert,)) for n in self._notifiers))

    async def _deliver(self, notifier: Notifier, alerts: tuple[Alert, ...]) -> None:
        log = _log.bind(receiver=notifier.name, fingerprint=alerts[0].fingerprint)
        started = self._clock.now()
        attempt = 0
        while True:
            attempt += 1
            try:
                await notifier.send(alerts)
            except DeliveryError as error:
                failure = error
            except Exception as error:  # a bug in a notifier: dead-letter, never lose the alert
                log.exception("delivery_crashed", attempt=attempt)
                failure = DeliveryError("internal_error", repr(error), retryable=False)
            else:
                self._metrics.deliveries.labels(notifier.name, "ok").inc()
                elapsed = self._clock.now() - started
                self._metrics.delivery_seconds.labels(notifier.name).observe(elapsed)
                if attempt > 1:
                    log.info("delivery_recovered", attempts=attempt)
                return
            self._metrics.deliveries.labels(notifier.name, failure.reason).inc()
            delay = self._policy.delay(attempt, self._rng, failure.retry_after)
            age = self._clock.now() - started
            give_up = self._policy.give_up_reason(failure, attempt, age, delay)
            if give_up is not None:
                log.error(
                    "delivery_dead_lettered",
                    reason=give_up,
                    attempts=attempt,
                    detail=failure.detail,
                )
                await self._dead_letter(DeadLetter(notifier.name, give_up, attempt, alerts))
                self._metrics.dead_lettered.labels(notifier.name).inc()
                return
            log.warning(
                "delivery_retry",
                reason=failure.reason,
                detail=failure.detail,
                attempt=attempt,
                delay=round(delay, 3),
            )
            await self._sleep(delay)
