"""Muting: silences (active window, expiry) and inhibition rules (equal labels, the
two-sided rule), each as a pure decision and as a pipeline stage."""

from __future__ import annotations

from typing import Any

import pytest

from anomalyd.alert import firing, resolved
from anomalyd.config.routing import InhibitRule, Silence
from anomalyd.domain import Alert
from anomalyd.notify.inhibit import Inhibitor, inhibited_by
from anomalyd.notify.mute import MuteStage
from anomalyd.notify.silence import (
    Silences,
    SilenceState,
    expired,
    silence_state,
)
from anomalyd.notify.stage import FlushContext

T0 = 1_700_000_000.0


def silence(**fields: Any) -> Silence:
    return Silence.model_validate({"matchers": ['stream="db"'], **fields})


@pytest.mark.parametrize(
    ("fields", "now", "state"),
    [
        ({}, T0, SilenceState.ACTIVE),  # no bounds: always
        ({"startsAt": T0}, T0 - 1, SilenceState.PENDING),
        ({"startsAt": T0}, T0, SilenceState.ACTIVE),  # starts inclusive
        ({"startsAt": T0, "endsAt": T0 + 60}, T0 + 59.9, SilenceState.ACTIVE),
        ({"startsAt": T0, "endsAt": T0 + 60}, T0 + 60, SilenceState.EXPIRED),  # ends exclusive
        ({"endsAt": T0}, T0 + 1, SilenceState.EXPIRED),
    ],
)
def test_silence_state(fields: dict[str, Any], now: float, state: SilenceState) -> None:
    assert silence_state(silence(**fields), now) is state


def test_silences_mute_only_while_active_and_only_what_they_match() -> None:
    silences = Silences([silence(id="cfg", startsAt=T0, endsAt=T0 + 60)])
    db = {"stream": "db", "alertname": "X"}
    assert silences.mutes(db, T0 - 1) is None
    assert silences.mutes(db, T0) == "cfg"
    assert silences.mutes({"stream": "web"}, T0) is None
    assert silences.mutes(db, T0 + 60) is None
    api = Silence.model_validate({"id": "api-1", "matchers": ['alertname=~"X|Y"']})
    silences.apply("api-1", api)
    assert silences.mutes({"alertname": "Y"}, T0 + 100) == "api-1"
    silences.apply("api-1", None)
    assert silences.mutes({"alertname": "Y"}, T0 + 100) is None
    assert silences.is_configured("cfg")
    assert not silences.is_configured("api-1")


def test_expire() -> None:
    active = silence(id="s", startsAt=T0, endsAt=T0 + 60)
    ended = expired(active, T0 + 10)
    assert (ended.starts_at, ended.ends_at, ended.updated_at) == (T0, T0 + 10, T0 + 10)
    assert silence_state(ended, T0 + 10) is SilenceState.EXPIRED
    pending = expired(silence(startsAt=T0 + 100, endsAt=T0 + 200), T0)
    assert (pending.starts_at, pending.ends_at) == (T0, T0)  # it never starts
    with pytest.raises(ValueError, match="already expired"):
        expired(ended, T0 + 20)


def alert(**labels: str) -> Alert:
    return firing(labels, {}, T0, "http://x")


def ctx() -> FlushContext:
    return FlushContext(T0, "team", "{}:{}", {}, 3600.0)


async def test_the_silence_stage_mutes_firing_alerts_and_lets_resolutions_through() -> None:
    loud, quiet = alert(stream="web"), alert(stream="db")
    over = resolved(alert(stream="db", alertname="Gone"), T0)
    stage = MuteStage(Silences([silence()]))
    out_ctx, out = await stage.exec(ctx(), [loud, quiet, over])
    assert list(out) == [loud, over]
    assert out_ctx.muted == {quiet.fingerprint}


RULE = InhibitRule.model_validate(
    {
        "source_matchers": ['alertname="StreamSilent"'],
        "target_matchers": ['severity!="critical"'],
        "equal": ["stream"],
    }
)


@pytest.mark.parametrize(
    ("target", "sources", "inhibited"),
    [
        # a warning on a silent stream is inhibited
        (
            {"stream": "a", "severity": "warning"},
            [{"alertname": "StreamSilent", "stream": "a"}],
            True,
        ),
        # ... not on another stream (equal labels)
        (
            {"stream": "b", "severity": "warning"},
            [{"alertname": "StreamSilent", "stream": "a"}],
            False,
        ),
        # ... not a critical one (target matchers)
        (
            {"stream": "a", "severity": "critical"},
            [{"alertname": "StreamSilent", "stream": "a"}],
            False,
        ),
        # no source
        ({"stream": "a", "severity": "warning"}, [{"alertname": "Other", "stream": "a"}], False),
        # equal label missing on both sides counts as equal, as in Alertmanager
        ({"severity": "warning"}, [{"alertname": "StreamSilent"}], True),
    ],
)
def test_inhibited_by(
    target: dict[str, str], sources: list[dict[str, str]], inhibited: bool
) -> None:
    found = inhibited_by(RULE, target, [alert(**labels) for labels in sources])
    assert (found is not None) is inhibited


def test_resolved_sources_do_not_inhibit() -> None:
    source = resolved(alert(alertname="StreamSilent", stream="a"), T0)
    assert inhibited_by(RULE, {"stream": "a", "severity": "warning"}, [source]) is None


def test_alerts_matching_both_sides_do_not_inhibit_each_other() -> None:
    rule = InhibitRule.model_validate(
        {"source_matchers": ['severity="critical"'], "target_matchers": ['severity=~".+"']}
    )
    critical, other_critical = alert(severity="critical", n="1"), alert(severity="critical", n="2")
    warning = alert(severity="warning")
    assert inhibited_by(rule, critical.labels, [other_critical]) is None
    assert inhibited_by(rule, warning.labels, [critical]) == critical


async def test_the_inhibit_stage() -> None:
    silent = alert(alertname="StreamSilent", stream="a", severity="critical")
    warning = alert(alertname="Spike", stream="a", severity="warning")
    elsewhere = alert(alertname="Spike", stream="b", severity="warning")
    stage = MuteStage(Inhibitor([RULE], lambda: [silent, warning, elsewhere]))
    out_ctx, out = await stage.exec(ctx(), [warning, elsewhere])
    assert list(out) == [elsewhere]
    assert out_ctx.muted == {warning.fingerprint}
