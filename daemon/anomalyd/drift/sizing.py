"""Window sizes that fit a stream: from its observed rate, a size holding about
`target_events` events, chosen from a ladder of sizes that divide a day, so a
stream's windows stay aligned in event time (00:00, 00:20, ...) and comparable
across days.

A new stream's first `SIZING_EVENTS` events (or those of its first `max_window`,
if it is slower) are held back until its rate is known, then replayed into the
windows it gets. The size stays for the stream's life (a rate that changes later
is itself reported in the records' `events`).
"""

from __future__ import annotations

from dataclasses import dataclass

from anomalyd.config.drift import DriftSection

#: Events seen before a stream's window is sized (its rate is estimated from them).
SIZING_EVENTS = 20
#: Sizes that divide a day, smallest first.
LADDER = (
    60.0,
    120.0,
    300.0,
    600.0,
    900.0,
    1200.0,
    1800.0,
    3600.0,
    7200.0,
    10800.0,
    14400.0,
    21600.0,
    28800.0,
    43200.0,
    86400.0,
)
#: The longest window a stream that can fill a shorter one gets.
QUICK = 21600.0
#: A size is taken once it is expected to hold this share of `target_events`: the
#: next size up may double the detection delay for a few events more.
_ENOUGH = 0.8


@dataclass(frozen=True, slots=True)
class Size:
    seconds: float
    #: Expected events per window below `min_count`: its windows are seldom judged.
    sparse: bool


def ready(count: int, span: float, config: DriftSection) -> bool:
    """Whether `count` events over `span` seconds say enough about the rate."""
    return count >= SIZING_EVENTS or span >= config.max_window


def choose(count: int, span: float, config: DriftSection) -> Size:
    """The window of a stream that sent `count` events over `span` seconds."""
    if config.window is not None:
        return Size(config.window, False)
    rate = (count - 1) / span if span > 0 and count > 1 else 0.0
    sizes = _candidates(config)
    fits = [s for s in sizes if rate * s >= _ENOUGH * config.target_events]
    size = fits[0] if fits else sizes[-1]
    # A slow stream's windows are the first to grow long: past QUICK, a shorter one that
    # still holds twice min_count is taken, so a change is seen within a day (a
    # suspicion pools the evidence of several windows, see `rule.confirms`).
    if size > QUICK:
        quick = [s for s in sizes if s <= QUICK and rate * s >= 2 * config.min_count]
        size = quick[-1] if quick else size
    return Size(size, rate * size < config.min_count)


def _candidates(config: DriftSection) -> list[float]:
    low, high = config.min_window, config.max_window
    inside = [s for s in LADDER if low <= s <= high]
    return inside or sorted({low, high})
