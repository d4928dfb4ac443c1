"""Anomaly detectors for one series, behind one River-shaped protocol.

`score_one` returns a raw score (higher is more anomalous, any scale);
`learn_one` learns a point the caller judged normal. Calibration to [0,1] is
kept apart (`calibrate.py`), as River keeps thresholding apart from scoring.
Each detector is seeded where it is random, and keeps what it learned as plain values
(`state`, `load_state`: see `anomalyd.plain`), so a snapshot of it is data, not code.

River's `anomaly` package is imported when a detector that needs it is built:
it pulls in scipy.stats, a second of start-up the default detector does not use.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

from anomalyd.config import DetectorKind
from anomalyd.features import Features
from anomalyd.plain import (
    Plain,
    StateError,
    number,
    numbers,
    read_bool,
    read_finite,
    read_float,
    read_floats,
    read_int,
    read_ints,
    read_list,
    read_object,
    read_spread,
    required,
)

if TYPE_CHECKING:
    from river.tree.padded import PaddedBranch, PaddedLeaf


class Detector(Protocol):
    def score_one(self, x: Features) -> float: ...

    def learn_one(self, x: Features) -> None: ...

    def state(self) -> Plain:
        """What it has learned, as plain values."""
        ...

    def load_state(self, state: Plain, where: str) -> None:
        """Resume from `state()`; raises StateError if it does not fit this detector."""
        ...


class RobustDetector:
    """How many robust standard deviations the point is from what this series usually
    does: from its usual value at that hour of the day once that hour has history,
    else from its robust level.

    Cheap (no state of its own: the features carry the statistics) and explainable.
    The change from the previous point is left out (measured on NAB and on seeded
    streams): a lone spike would count twice, once going up and once coming back, and
    heavy-tailed noise paged three times as often for no incident found.
    """

    __slots__ = ()

    def score_one(self, x: Features) -> float:
        # season_z is exactly 0.0 until the hour has history (or without seasonality).
        return abs(x.season_z) if x.season_z else abs(x.level_z)

    def learn_one(self, x: Features) -> None:
        """Its statistics live in the features, which learn on their own."""

    def state(self) -> Plain:
        return None

    def load_state(self, state: Plain, where: str) -> None:
        if state is not None:
            raise StateError(f"{where}: null (the robust detector keeps nothing)")


class HalfSpaceTreesDetector:
    """River's HalfSpaceTrees over the features, min-max scaled (about 1.25 MB a series)."""

    def __init__(self, seed: int, window: int) -> None:
        from river import anomaly, compose, preprocessing

        self._scaler = preprocessing.MinMaxScaler()
        self._trees = anomaly.HalfSpaceTrees(
            n_trees=10, height=8, window_size=min(window, 250), seed=seed
        )
        self._model = compose.Pipeline(self._scaler, self._trees)

    def score_one(self, x: Features) -> float:
        return float(self._model.score_one(x.as_dict()))

    def learn_one(self, x: Features) -> None:
        self._model.learn_one(x.as_dict())

    def state(self) -> Plain:
        """The scaler's range per feature, and each tree (built on the first point
        learned) in depth-first order: its splits and its two masses per node."""
        hst = self._trees
        return {
            "min": {name: number(stat.get()) for name, stat in self._scaler.min.items()},
            "max": {name: number(stat.get()) for name, stat in self._scaler.max.items()},
            "counter": hst.counter,
            "first_window": hst._first_window,  # River's, private
            "trees": [_tree_state(tree) for tree in hst.trees],
        }

    def load_state(self, state: Plain, where: str) -> None:
        data = read_object(state, where)
        for key, stats in (("min", self._scaler.min), ("max", self._scaler.max)):
            bounds = read_object(required(data, key, where), f"{where}.{key}")
            for name, value in bounds.items():
                if name not in FEATURE_NAMES:
                    raise StateError(f"{where}.{key}: no feature {name!r}")
                stats[name].update(read_float(value, f"{where}.{key}.{name}"))
        hst = self._trees
        counter = required(data, "counter", where)
        hst.counter = read_int(counter, f"{where}.counter", 0, hst.window_size - 1)
        first = read_bool(required(data, "first_window", where), f"{where}.first_window")
        hst._first_window = first
        trees = read_list(required(data, "trees", where), f"{where}.trees")
        if trees and len(trees) != hst.n_trees:
            raise StateError(f"{where}.trees: none or {hst.n_trees}")
        hst.trees = [
            _load_tree(tree, hst.height, f"{where}.trees[{i}]") for i, tree in enumerate(trees)
        ]
        hst._tree_nodes = [list(tree.iter_dfs()) for tree in hst.trees]


class GaussianDetector:
    """River's GaussianScorer on the value: the two-sided tail of a normal fitted to all
    history. (Its windowed form can produce a negative rolling variance and then fails.)"""

    def __init__(self) -> None:
        from river import anomaly

        self._model = anomaly.GaussianScorer(grace_period=30)

    def score_one(self, x: Features) -> float:
        return float(self._model.score_one(None, x.value))

    def learn_one(self, x: Features) -> None:
        self._model.learn_one(None, x.value)

    def state(self) -> Plain:
        """The normal's running moments (River's `stats.Var`)."""
        return _var_state(self._model.gaussian._var)

    def load_state(self, state: Plain, where: str) -> None:
        _load_var(self._model.gaussian._var, state, where)


class SADDetector:
    """River's StandardAbsoluteDeviation: |value - mean| / std over all history."""

    def __init__(self) -> None:
        from river import anomaly

        self._model = anomaly.StandardAbsoluteDeviation()

    def score_one(self, x: Features) -> float:
        return float(self._model.score_one(None, x.value))

    def learn_one(self, x: Features) -> None:
        self._model.learn_one(None, x.value)

    def state(self) -> Plain:
        """Its running variance and mean (River's `stats.Var` and `stats.Mean`)."""
        mean: Any = self._model.sub_stat  # a stats.Mean: built without a sub_stat
        return {
            "var": _var_state(self._model.variance),
            "mean": [number(mean.n), number(mean._mean)],
        }

    def load_state(self, state: Plain, where: str) -> None:
        data = read_object(state, where)
        _load_var(self._model.variance, required(data, "var", where), f"{where}.var")
        n, mean = read_list(required(data, "mean", where), f"{where}.mean", 2)
        sub_stat: Any = self._model.sub_stat
        sub_stat.n = _weight(n, f"{where}.mean[0]")
        sub_stat._mean = read_float(mean, f"{where}.mean[1]")


def make_detector(kind: DetectorKind, *, seed: int, window: int) -> Detector:
    match kind:
        case "robust":
            return RobustDetector()
        case "hst":
            return HalfSpaceTreesDetector(seed, window)
        case "gaussian":
            return GaussianDetector()
        case "sad":
            return SADDetector()


#: The features River's estimators see (`Features.as_dict`), in the order HalfSpaceTrees
#: builds its trees over them.
FEATURE_NAMES = ("delta", "delta_z", "level_z", "season_z", "value")


def _tree_state(tree: PaddedBranch) -> dict[str, Plain]:
    from river.tree.padded import PaddedBranch

    nodes = list(tree.iter_dfs())
    branches = [node for node in nodes if isinstance(node, PaddedBranch)]
    return {
        "features": [FEATURE_NAMES.index(node.feature) for node in branches],
        "thresholds": numbers(node.threshold for node in branches),
        "l_mass": [node.l_mass for node in nodes],
        "r_mass": [node.r_mass for node in nodes],
    }


def _load_tree(state: Plain, height: int, where: str) -> PaddedBranch:
    """A tree of `height` from `_tree_state`: 2**height - 1 branches and 2**(height+1) - 1
    nodes, depth first."""
    from river.tree.padded import PaddedBranch

    data = read_object(state, where)
    n_branches, n_nodes = 2**height - 1, 2 ** (height + 1) - 1
    last = len(FEATURE_NAMES) - 1
    features = read_ints(
        required(data, "features", where), f"{where}.features", n_branches, 0, last
    )
    thresholds = read_floats(required(data, "thresholds", where), f"{where}.thresholds", n_branches)
    if not all(math.isfinite(t) for t in thresholds):
        raise StateError(f"{where}.thresholds: finite numbers")
    l_mass = read_ints(required(data, "l_mass", where), f"{where}.l_mass", n_nodes)
    r_mass = read_ints(required(data, "r_mass", where), f"{where}.r_mass", n_nodes)
    splits = zip((FEATURE_NAMES[f] for f in features), thresholds, strict=True)
    masses = zip(l_mass, r_mass, strict=True)
    root = _grow(height, splits, masses)
    assert isinstance(root, PaddedBranch)  # height >= 1
    return root


def _grow(
    height: int, splits: Iterator[tuple[str, float]], masses: Iterator[tuple[int, int]]
) -> PaddedBranch | PaddedLeaf:
    """One node and, depth first, its subtrees (the order `iter_dfs` walks)."""
    from river.tree.padded import PaddedBranch, PaddedLeaf

    l_mass, r_mass = next(masses)
    if height == 0:
        return PaddedLeaf(l_mass=l_mass, r_mass=r_mass)
    feature, threshold = next(splits)
    left = _grow(height - 1, splits, masses)
    right = _grow(height - 1, splits, masses)
    return PaddedBranch(left, right, feature, threshold, l_mass, r_mass)


def _var_state(var: Any) -> list[Plain]:
    """River's `stats.Var`: the weight seen, the mean, the sum of squared deviations."""
    return [number(var.mean.n), number(var.mean._mean), number(var._S)]


def _load_var(var: Any, state: Plain, where: str) -> None:
    n, mean, squares = read_list(state, where, 3)
    var.mean.n = _weight(n, f"{where}[0]")
    var.mean._mean = read_float(mean, f"{where}[1]")
    var._S = read_spread(squares, f"{where}[2]")


def _weight(value: Plain, where: str) -> float:
    weight = read_finite(value, where)
    if weight < 0.0:
        raise StateError(f"{where}: a weight >= 0")
    return weight
