"""One alert per drift episode, built like every other alert (`anomalyd.alert`).

Identity: `alertname` (config, default DataDrift), `stream`, `severity`,
`detector: drift`, plus the stream's event labels, so routes and silences that
match a stream's labels match its drift alerts too. It fires when an episode
opens (startsAt: the start of its first shifted window) and resolves when the
episode closes (endsAt: the end of the window that closed it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from anomalyd import alert as alerts
from anomalyd.config.drift import DriftSection
from anomalyd.domain import Alert, format_time
from anomalyd.drift.record import WindowRecord

DETECTOR = "drift"


def episode_alert(
    records: Sequence[WindowRecord],
    labels: Mapping[str, str],
    since: float,
    config: DriftSection,
    external_url: str,
) -> Alert:
    """The firing alert of an episode that opened on the window of `records`."""
    shifted = [r for r in records if r.comparison is not None and r.comparison.shifted]
    worst = max(shifted, key=lambda r: r.comparison.strength if r.comparison else 0.0)
    identity = {
        "alertname": config.alertname,
        "stream": worst.stream,
        "severity": config.severity.value,
        "detector": DETECTOR,
    }
    return alerts.firing(
        {**labels, **identity}, _annotations(worst, shifted, config), since, external_url
    )


def episode_resolved(alert: Alert, ends_at: float) -> Alert:
    return alerts.resolved(
        alert, ends_at=ends_at, annotations={**alert.annotations, "drift": "stable"}
    )


def _annotations(
    worst: WindowRecord, shifted: Sequence[WindowRecord], config: DriftSection
) -> dict[str, str]:
    # Only judged fields are shifted, and a judged field has stats and a reference.
    assert worst.comparison is not None
    assert worst.stats is not None
    assert worst.reference is not None
    c, ref = worst.comparison, worst.reference.stats
    fields = ", ".join(sorted(r.field or "" for r in shifted))
    facts = (
        f"mean shift {c.mean_shift:+.2f} std, spread x{c.scale_ratio:.2f}, "
        f"KS {c.ks:.2f}, PSI {c.psi:.2f}"
    )
    return {
        "summary": f"{worst.stream}: data drift in {fields} ({facts})",
        "description": (
            f"The distribution of {fields} on {worst.stream} differs from its "
            f"{worst.reference.mode} reference in {config.confirm_windows} window(s) in a row "
            f"({', '.join(c.to_json()['shifted_by'])}); the window of "
            f"{format_time(worst.start)} had mean {worst.stats.mean:.6g} against {ref.mean:.6g}."
        ),
        "value": f"{worst.stats.mean:.6g}",
        "expected": f"{ref.mean:.6g} +/- {ref.std:.6g}",
        "field": worst.field or "",
        "psi": f"{c.psi:.4g}",
        "ks": f"{c.ks:.4g}",
        "wasserstein": f"{c.wasserstein:.4g}",
        "mean_shift": f"{c.mean_shift:.4g}",
        "scale_ratio": f"{c.scale_ratio:.4g}",
        "window": f"{format_time(worst.start)}/{format_time(worst.end)}",
        "episode": worst.episode or "",
        "drift": "drifting",
        "detector": DETECTOR,
    }
