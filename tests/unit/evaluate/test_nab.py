"""NAB scoring: hand-computed small cases, the fast threshold sweep against direct scoring of
every candidate threshold, and trivial detectors on the real corpus.

Hand computations use ``S(y) = 2 / (1 + e^(5y)) - 1 = -tanh(5y / 2)``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anomalyd.evaluate import (
    NEVER,
    PROFILES,
    Profile,
    Series,
    load_corpus,
    load_profiles,
    nab_report,
    optimise_threshold,
    probation_rows,
    scaled_sigmoid,
    score_series,
    threshold_curve,
    window_rows,
)

# The benchmark data lives beside the repo, in ../shared/data (never copied into the repo).
NAB_DIR = Path(
    os.environ.get("ANOMALYD_NAB_DIR", Path(__file__).resolve().parents[4] / "shared/data/nab-dev")
)
STANDARD = PROFILES["standard"]
S_MINUS_1 = math.tanh(2.5)  # 0.98661


def S(y: float) -> float:
    return -math.tanh(2.5 * y)


def series(n: int, windows: Sequence[tuple[int, int]]) -> Series:
    """`n` rows a minute apart with windows given as inclusive row ranges."""
    return Series(
        name="test/series.csv",
        timestamps=[60.0 * i for i in range(n)],
        values=[0.0] * n,
        windows=[(60.0 * a, 60.0 * b) for a, b in windows],
    )


def firing(n: int, rows: Sequence[int]) -> list[float]:
    return [1.0 if i in rows else 0.0 for i in range(n)]


@pytest.mark.parametrize(
    ("y", "expected"),
    [
        (-1.0, 0.98661),
        (-0.5, 0.84828),
        (0.0, 0.0),
        (1.0, -0.98661),
        (3.0, -0.9999994),  # the -1 floor applies only beyond 3
        (3.0001, -1.0),
        (50.0, -1.0),
    ],
)
def test_scaled_sigmoid(y: float, expected: float) -> None:
    assert scaled_sigmoid(y) == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize(
    ("n", "expected"),
    [(0, 0), (10, 1), (100, 15), (1243, 186), (4032, 604), (5000, 750), (5001, 750), (10**6, 750)],
)
def test_probation_is_15_percent_capped_at_750_rows(n: int, expected: int) -> None:
    assert probation_rows(n) == expected


# 100 rows: rows 0-14 are probationary; one window over rows 40-49 (w = 10, last row r = 49).
N = 100
ONE_WINDOW = series(N, [(40, 49)])
MISS = -1.0
FAR_FP = -0.11


@pytest.mark.parametrize(
    ("rows", "raw", "counts", "delay"),
    [
        ([], MISS, (0, 0, 1), None),
        # At the window's first row: -(49 - 40 + 1) / 10 = -1, worth exactly tpWeight.
        ([40], 1.0, (1, 0, 0), 0),
        # Halfway: -(49 - 45 + 1) / 10 = -0.5.
        ([45], S(-0.5) / S_MINUS_1, (1, 0, 0), 5),
        # At the last row: -1 / 10, the floor of a true positive: small, but positive.
        ([49], S(-0.1) / S_MINUS_1, (1, 0, 0), 9),
        # Only the earliest detection counts, once.
        ([42, 45, 49], S(-0.8) / S_MINUS_1, (1, 0, 0), 2),
        # Right after the window: d = (50 - 49) / (10 - 1), almost free.
        ([50], MISS + 0.11 * S(1 / 9), (0, 1, 1), None),
        # d = 27 / 9 = 3 exactly: still on the sigmoid.
        ([76], MISS + 0.11 * S(3.0), (0, 1, 1), None),
        # Far after the window (d = 31 / 9 > 3), and before any window: the full -fpWeight.
        ([80], MISS + FAR_FP, (0, 1, 1), None),
        ([20], MISS + FAR_FP, (0, 1, 1), None),
        # Probationary detections are ignored.
        ([0, 5, 14], MISS, (0, 0, 1), None),
        ([14, 40, 80], 1.0 + FAR_FP, (1, 1, 0), 0),
    ],
)
def test_score_series_by_hand(
    rows: list[int], raw: float, counts: tuple[int, int, int], delay: int | None
) -> None:
    result = score_series(ONE_WINDOW, firing(N, rows), 0.5, STANDARD)
    assert result.raw == pytest.approx(raw, abs=1e-12)
    assert (result.tp, result.fp, result.fn) == counts
    assert result.delays == (delay,)


def test_hand_values_in_decimals() -> None:
    """The same cases as rough numbers: what the scale feels like."""
    at = {row: score_series(ONE_WINDOW, firing(N, [row]), 0.5, STANDARD).raw for row in (40, 49)}
    assert at == {40: 1.0, 49: pytest.approx(0.2482, abs=1e-4)}
    after = score_series(ONE_WINDOW, firing(N, [50]), 0.5, STANDARD).raw
    assert after - MISS == pytest.approx(-0.0298, abs=1e-4)


def test_profiles_weigh_misses_and_false_positives() -> None:
    scores = firing(N, [80])
    raws = {p: score_series(ONE_WINDOW, scores, 0.5, PROFILES[p]).raw for p in PROFILES}
    assert raws == {
        "standard": pytest.approx(-1.11),
        "reward_low_FP_rate": pytest.approx(-1.22),
        "reward_low_FN_rate": pytest.approx(-2.11),
    }


def test_window_straddling_the_probation_scores_only_its_later_rows() -> None:
    straddling = series(N, [(10, 19)])
    early = score_series(straddling, firing(N, [12]), 0.5, STANDARD)
    assert (early.raw, early.fn, early.delays) == (MISS, 1, (None,))
    late = score_series(straddling, firing(N, [15]), 0.5, STANDARD)
    assert late.raw == pytest.approx(S(-0.5) / S_MINUS_1)
    assert late.delays == (5,)


def test_window_inside_the_probation_is_not_scored_but_precedes_false_positives() -> None:
    hidden = series(N, [(5, 9)])
    assert score_series(hidden, firing(N, []), 0.5, STANDARD).raw == 0.0
    after = score_series(hidden, firing(N, [7, 20]), 0.5, STANDARD)
    assert after.raw == pytest.approx(0.11 * S((20 - 9) / 4))
    assert (after.tp, after.fp, after.fn, after.delays) == (0, 1, 0, (None,))


def test_one_row_window() -> None:
    single = series(N, [(40, 40)])
    assert score_series(single, firing(N, [40]), 0.5, STANDARD).raw == 1.0
    # NAB divides by w - 1 = 0 here; we take it as 1, so d = rows past the window.
    after = score_series(single, firing(N, [41]), 0.5, STANDARD).raw
    assert after == pytest.approx(MISS + 0.11 * S(1.0))


def test_scores_must_match_rows_and_be_finite() -> None:
    with pytest.raises(ValueError, match="99 scores for 100 rows"):
        score_series(ONE_WINDOW, [0.0] * 99, 0.5, STANDARD)
    with pytest.raises(ValueError, match="finite"):
        score_series(ONE_WINDOW, [math.nan] * N, 0.5, STANDARD)


def test_threshold_curve_and_optimum_by_hand() -> None:
    scores = [0.5] * N
    scores[40], scores[80] = 0.9, 0.8
    curve = threshold_curve([(ONE_WINDOW, scores)], STANDARD)
    fp_rows = N - probation_rows(N) - 10 - 1  # every other scorable row outside the window
    assert [t for t, _ in curve] == [NEVER, 0.9, 0.8, 0.5]
    assert [total for _, total in curve[:3]] == [MISS, 1.0, pytest.approx(1.0 + FAR_FP)]
    assert curve[3][1] < 1.0 + FAR_FP * fp_rows / 2
    assert optimise_threshold([(ONE_WINDOW, scores)], STANDARD) == (0.9, 1.0)


def test_ties_go_to_the_highest_threshold() -> None:
    # Firing everywhere costs, never firing costs -1: "never" wins; with all rows tied at 0.
    assert optimise_threshold([(ONE_WINDOW, [0.0] * N)], STANDARD) == (NEVER, MISS)
    # Both 0.9 and 0.7 find the window at its first row and nothing else: 0.9 wins.
    scores = [0.0] * N
    scores[40], scores[41] = 0.9, 0.7
    assert optimise_threshold([(ONE_WINDOW, scores)], STANDARD) == (0.9, 1.0)


LEVELS = [0.0, 0.2, 0.5, 0.7, 1.0]


@st.composite
def small_series(draw: st.DrawFn) -> tuple[Series, list[float]]:
    n = draw(st.integers(5, 60))
    k = draw(st.integers(0, min(3, n // 2)))
    rows = st.integers(0, n - 1)
    cuts = sorted(draw(st.lists(rows, min_size=2 * k, max_size=2 * k, unique=True)))
    windows = [(cuts[2 * i], cuts[2 * i + 1] - 1) for i in range(k)]
    scores = draw(st.lists(st.sampled_from(LEVELS), min_size=n, max_size=n))
    return series(n, windows), scores


@settings(max_examples=150, deadline=None)
@given(
    corpus=st.lists(small_series(), min_size=1, max_size=3),
    p=st.sampled_from(list(PROFILES.values())),
)
def test_fast_sweep_equals_scoring_every_threshold(
    corpus: list[tuple[Series, list[float]]], p: Profile
) -> None:
    curve = threshold_curve(corpus, p)
    scorable = {s for _, scores in corpus for s in scores[probation_rows(len(scores)) :]}
    assert [t for t, _ in curve] == [NEVER, *sorted(scorable, reverse=True)]
    naive = [sum(score_series(s, scores, t, p).raw for s, scores in corpus) for t, _ in curve]
    assert [total for _, total in curve] == pytest.approx(naive, abs=1e-9)
    threshold, best = optimise_threshold(corpus, p)
    assert best == pytest.approx(max(naive), abs=1e-9)
    assert sum(score_series(s, scores, threshold, p).raw for s, scores in corpus) == pytest.approx(
        best, abs=1e-9
    )


# --- the real corpus ---------------------------------------------------------------------------

needs_corpus = pytest.mark.skipif(not NAB_DIR.is_dir(), reason=f"no NAB corpus at {NAB_DIR}")


@pytest.fixture(scope="module")
def corpus() -> list[Series]:
    return load_corpus(NAB_DIR)


@needs_corpus
def test_corpus_loads_41_series_with_windows_inside_them(corpus: list[Series]) -> None:
    assert len(corpus) == 41
    assert sum(len(s.windows) for s in corpus) == 64
    for s in corpus:
        assert s.name.endswith(".csv")
        assert s.name.count("/") == 1
        assert len(s.timestamps) == len(s.values) > 1000
        for start, end in s.windows:
            assert s.timestamps[0] <= start <= end <= s.timestamps[-1]
            assert start in s.timestamps
            assert end in s.timestamps  # labels are exact row timestamps, as NAB requires


@needs_corpus
def test_corpus_profiles_are_nabs() -> None:
    assert load_profiles(NAB_DIR) == PROFILES


def perfect_scores(s: Series) -> list[float]:
    return firing(len(s.timestamps), [first for first, _ in window_rows(s.timestamps, s.windows)])


@needs_corpus
def test_null_detector_normalises_to_0_and_perfect_to_100(corpus: list[Series]) -> None:
    null = nab_report([(s, np.zeros(len(s.timestamps))) for s in corpus])
    perfect = nab_report([(s, perfect_scores(s)) for s in corpus])
    for name in PROFILES:
        assert null[name].threshold == NEVER
        assert null[name].normalised == 0.0
        assert perfect[name].threshold == 1.0
        assert perfect[name].raw == 64.0
        assert perfect[name].normalised == 100.0


def write_corpus(root: Path, rows: str, labels: str) -> Path:
    (root / "data" / "cat").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "data" / "cat" / "a.csv").write_text("timestamp,value\n" + rows)
    (root / "labels" / "combined_windows.json").write_text(labels)
    return root


ROWS = "2015-01-01 00:00:00,1\n2015-01-01 00:05:00,2.5\n2015-01-01 00:10:00,3\n"


def test_loader_reads_epoch_seconds_and_windows(tmp_path: Path) -> None:
    labels = '{"cat/a.csv": [["2015-01-01 00:05:00.000000", "2015-01-01 00:10:00.000000"]]}'
    [loaded] = load_corpus(write_corpus(tmp_path, ROWS, labels))
    assert loaded == Series(
        "cat/a.csv",
        [1420070400.0, 1420070700.0, 1420071000.0],
        [1.0, 2.5, 3.0],
        [(1420070700.0, 1420071000.0)],
    )


@pytest.mark.parametrize(
    ("rows", "labels", "message"),
    [
        (ROWS, "{}", "no labels for"),
        (ROWS, '{"cat/a.csv": [], "cat/b.csv": []}', "labels for missing data files"),
        (ROWS, '{"cat/a.csv": [["2016-01-01 00:00:00", "2016-01-02 00:00:00"]]}', "covers no row"),
        ("2015-01-01 00:05:00,1\n2015-01-01 00:00:00,2\n", '{"cat/a.csv": []}', "time order"),
        ("2015-01-01 00:00:00+01:00,1\n", '{"cat/a.csv": []}', "naive UTC"),
    ],
)
def test_loader_is_strict(tmp_path: Path, rows: str, labels: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_corpus(write_corpus(tmp_path, rows, labels))
