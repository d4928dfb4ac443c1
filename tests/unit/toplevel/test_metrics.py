"""The hot-path histogram exports what prometheus_client's own Histogram would; /metrics
holds process metrics, build info and every known series from the start."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from anomalyd import __version__
from anomalyd.ingest.parse import INVALID_EVENT_CODES
from anomalyd.metrics import NOTIFICATION_REASONS, HotHistogram, Metrics
from anomalyd.notify.dedup import Reason
from helpers import REPO

BUCKETS = (0.001, 0.01, 0.1, 1.0, 10.0)


def _samples(registry: CollectorRegistry) -> list[str]:
    text = generate_latest(registry).decode()
    return [line for line in text.splitlines() if line.startswith("h_") and "_created" not in line]


@given(
    st.lists(
        st.one_of(
            st.sampled_from(BUCKETS),  # on a bound: counted in that bucket (le)
            st.floats(min_value=0, max_value=100, allow_nan=False),
        ),
        max_size=50,
    )
)
def test_it_exports_the_buckets_count_and_sum_of_a_prometheus_histogram(
    values: list[float],
) -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    hot = HotHistogram("h_seconds", "doc", BUCKETS, registry=ours)
    reference = Histogram("h_seconds", "doc", buckets=BUCKETS, registry=theirs)
    for value in values:
        hot.observe(value)
        reference.observe(value)
    assert _samples(ours) == _samples(theirs)


# --- what /metrics holds from the start -------------------------------------------------------


def _exposed(metrics: Metrics) -> str:
    return generate_latest(metrics.registry).decode()


def test_process_platform_gc_and_build_info_are_exported() -> None:
    text = _exposed(Metrics())
    for name in (
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_start_time_seconds",
        "python_info{",
        "python_gc_objects_collected_total{",
    ):
        assert name in text, name
    version = f'version="{__version__}"'
    assert any(
        line.startswith("anomalyd_build_info{") and version in line and line.endswith(" 1.0")
        for line in text.splitlines()
    )


def test_every_labelled_counter_starts_at_zero_for_its_known_labels() -> None:
    """`increase()` sees a series' first event only if the series was 0 before it: a counter
    born at 1 shows no increase (the dead-letter alert missed the first dead letter)."""
    metrics = Metrics()
    metrics.know_receivers(["oncall"])
    counters = [
        family
        for family in metrics.registry.collect()
        if family.type == "counter" and family.name.startswith("anomalyd_")
    ]
    assert counters
    for family in counters:
        totals = [s for s in family.samples if s.name.endswith("_total")]
        assert totals, f"{family.name} has no series before its first increment"
        assert all(s.value == 0.0 for s in totals), family.name
    text = _exposed(metrics)
    assert 'anomalyd_notifications_dead_lettered_total{receiver="oncall"} 0.0' in text
    assert 'anomalyd_invalid_events_total{reason="invalid_json"} 0.0' in text
    assert 'anomalyd_deliveries_total{outcome="timeout",receiver="oncall"} 0.0' in text


def test_the_known_label_values_are_the_ones_the_code_uses() -> None:
    source = (REPO / "daemon" / "anomalyd" / "ingest" / "parse.py").read_text()
    codes = set(re.findall(r'InvalidEvent\(\s*"([a-z_]+)"', source))
    assert codes == set(INVALID_EVENT_CODES)
    assert set(NOTIFICATION_REASONS) == {reason.value for reason in Reason}
