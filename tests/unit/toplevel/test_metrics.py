"""The hot-path histogram exports what prometheus_client's own Histogram would."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from anomalyd.metrics import HotHistogram

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
