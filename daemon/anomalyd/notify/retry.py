"""Retry: when to try a failed delivery again (exponential backoff with full jitter,
`Retry-After` honoured, bounded by attempts and by age: pure decisions), and the stage
that applies it around the deliver stage, dead-lettering what it gives up on."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import structlog

from anomalyd.clock import Clock
from anomalyd.config import DeliverySection
from anomalyd.domain import Alert
from anomalyd.metrics import Metrics
from anomalyd.notify.stage import FlushContext, Stage

_log = structlog.get_logger(__name__)


class DeliveryError(Exception):
    """A delivery attempt failed. `reason` is a short metric label; `retryable`
    says whether trying again can help; `retry_after` is the receiver's own hint."""

    def __init__(
        self, reason: str, detail: str, *, retryable: bool, retry_after: float | None = None
    ) -> None:
        self.reason = reason
        self.detail = detail
        self.retryable = retryable
        self.retry_after = retry_after
        super().__init__(f"{reason}: {detail}")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 8
    initial_backoff: float = 0.5
    max_backoff: float = 60.0
    max_age: float = 3600.0

    @classmethod
    def from_config(cls, section: DeliverySection) -> RetryPolicy:
        return cls(
            section.max_attempts, section.initial_backoff, section.max_backoff, section.max_age
        )

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based).

        Full jitter spreads retries of many alerts; a receiver's Retry-After is a
        floor, because it knows its own recovery better than our curve does.
        """
        ceiling = min(self.max_backoff, self.initial_backoff * 2.0 ** (attempt - 1))
        jittered = rng.uniform(ceiling / 2.0, ceiling)
        if retry_after is not None:
            return max(jittered, min(retry_after, self.max_age))
        return jittered

    def give_up_reason(
        self, error: DeliveryError, attempt: int, age: float, delay: float
    ) -> str | None:
        """Why to stop retrying now, or None to try again after `delay`."""
        if not error.retryable:
            return f"not retryable: {error.reason}"
        if attempt >= self.max_attempts:
            return f"gave up after {attempt} attempts: {error.reason}"
        if age + delay > self.max_age:
            return f"gave up after {age:.0f}s (max_age {self.max_age:g}s): {error.reason}"
        return None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A notification that could not be delivered, and why: `reason` in short, `detail`
    as the last attempt's failure said it (a redirect's target, the receiver's answer)."""

    receiver: str
    reason: str
    attempts: int
    alerts: tuple[Alert, ...]
    group_key: str = ""
    notification_id: str = ""
    detail: str = ""


class RetryStage:
    """Runs the deliver stage until it succeeds, retrying what can be retried with backoff
    and dead-lettering what cannot be delivered. Only this stage retries. Either way the
    notification is handled when it returns (`ctx.outcome` says how): nothing is dropped
    silently."""

    def __init__(
        self,
        deliver: Stage,
        policy: RetryPolicy,
        clock: Clock,
        dead_letter: Callable[[DeadLetter], Awaitable[None]],
        metrics: Metrics,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._deliver = deliver
        self._policy = policy
        self._clock = clock
        self._dead_letter = dead_letter
        self._metrics = metrics
        self._sleep = sleep
        self._rng = rng or random.Random()

    async def exec(
        self, ctx: FlushContext, alerts: Sequence[Alert]
    ) -> tuple[FlushContext, Sequence[Alert]]:
        log = _log.bind(receiver=ctx.receiver, group_key=ctx.group_key, id=ctx.notification_id)
        started = self._clock.now()
        attempt = 0
        while True:
            attempt += 1
            failure = await self._attempt(ctx, alerts, log, attempt)
            if failure is None:
                self._delivered(ctx.receiver, started, attempt, log)
                return replace(ctx, outcome="delivered"), alerts
            self._metrics.deliveries.labels(ctx.receiver, failure.reason).inc()
            delay = self._policy.delay(attempt, self._rng, failure.retry_after)
            age = self._clock.now() - started
            give_up = self._policy.give_up_reason(failure, attempt, age, delay)
            if give_up is not None:
                await self._give_up(ctx, alerts, give_up, attempt, failure, log)
                return replace(ctx, outcome="dead_lettered"), alerts
            log.warning(
                "delivery_retry",
                reason=failure.reason,
                detail=failure.detail,
                attempt=attempt,
                delay=round(delay, 3),
            )
            await self._sleep(delay)

    async def _attempt(
        self, ctx: FlushContext, alerts: Sequence[Alert], log: Any, attempt: int
    ) -> DeliveryError | None:
        try:
            await self._deliver.exec(ctx, alerts)
        except DeliveryError as error:
            return error
        except Exception as error:  # a bug in a notifier: dead-letter, never lose the alert
            log.exception("delivery_crashed", attempt=attempt)
            return DeliveryError("internal_error", repr(error), retryable=False)
        return None

    def _delivered(self, receiver: str, started: float, attempt: int, log: Any) -> None:
        self._metrics.deliveries.labels(receiver, "ok").inc()
        self._metrics.delivery_seconds.labels(receiver).observe(self._clock.now() - started)
        if attempt > 1:
            log.info("delivery_recovered", attempts=attempt)

    async def _give_up(
        self,
        ctx: FlushContext,
        alerts: Sequence[Alert],
        reason: str,
        attempt: int,
        failure: DeliveryError,
        log: Any,
    ) -> None:
        log.error("delivery_dead_lettered", reason=reason, attempts=attempt, detail=failure.detail)
        letter = DeadLetter(
            ctx.receiver,
            reason,
            attempt,
            tuple(alerts),
            ctx.group_key,
            ctx.notification_id,
            failure.detail,
        )
        await self._dead_letter(letter)
        self._metrics.dead_lettered.labels(ctx.receiver).inc()
