"""When to try a failed delivery again: exponential backoff with full jitter,
`Retry-After` honoured, bounded by attempts and by age. Pure decisions."""

from __future__ import annotations

import random
from dataclasses import dataclass

from anomalyd.config import DeliverySection


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
