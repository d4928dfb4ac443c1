"""The configuration schema: one YAML file, every key documented in config/anomalyd.yaml.

Strict on purpose: unknown keys are errors, ranges are checked, and names that
other sections refer to are checked too, so a typo fails `check-config`
instead of silently disabling an alert.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from anomalyd.config.detection import ModelSection, StateSection
from anomalyd.config.drift import DriftSection
from anomalyd.config.durations import Duration
from anomalyd.config.receivers import Receiver
from anomalyd.config.routing import InhibitRule, Route, Silence, check_routing
from anomalyd.config.strict import Strict
from anomalyd.domain import Severity

_NAME = r"^[A-Za-z_][A-Za-z0-9_.\-]{0,99}$"
_FIELD = r"^[A-Za-z_][A-Za-z0-9_.\-]{0,99}$"


class AppSection(Strict):
    id: str = Field(
        "anomalyd",
        pattern=_NAME,
        description="Kafka consumer group id; workers with the same id share the work.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    external_url: str = Field(
        "http://127.0.0.1:6066", description="Base URL of this daemon, used in alert links."
    )
    data_dir: str = Field(".anomalyd", description="Where the worker keeps local state.")
    reload_settle: Duration = Field(
        1.0,
        ge=0,
        le=60,
        description="A changed config file is reloaded once two reads this far apart agree "
        "(a file rewritten in place is not applied half-written); SIGHUP reloads at once.",
    )


class EmbeddedBrokerSection(Strict):
    host: str = "127.0.0.1"
    port: int = Field(9092, ge=1, le=65535)
    start_timeout: Duration = 15.0

    @field_validator("host")
    @classmethod
    def _loopback_only(cls, host: str) -> str:
        if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
            raise ValueError("the embedded broker listens on loopback only (127.0.0.1)")
        return host


class KafkaSection(Strict):
    brokers: Literal["embedded"] | Annotated[list[str], Field(min_length=1)] = "embedded"
    embedded: EmbeddedBrokerSection = EmbeddedBrokerSection()
    partitions: int = Field(4, ge=1, le=1024, description="Partitions of the topics we create.")
    # None picks the right default for the broker: short for embedded (see README).
    session_timeout: Duration | None = None
    fetch_max_wait: Duration | None = None
    producer_linger: Duration = Field(
        0.005,
        ge=0,
        le=1,
        description="How long the worker's producer waits to batch records (Kafka clients' "
        "linger.ms): a chunk's drift records and alerts go out in a few requests, not one "
        "each.",
    )

    @field_validator("brokers")
    @classmethod
    def _host_port(cls, brokers: str | list[str]) -> str | list[str]:
        if isinstance(brokers, list):
            for i, broker in enumerate(brokers):
                if not re.fullmatch(r"[A-Za-z0-9_.\-\[\]:]+:\d{1,5}", broker):
                    # Not quoted: problems are logged, and the value may hold credentials.
                    raise ValueError(f"entry {i} is not host:port")
        return brokers

    @property
    def is_embedded(self) -> bool:
        return self.brokers == "embedded"

    @property
    def bootstrap(self) -> list[str]:
        if isinstance(self.brokers, list):
            return list(self.brokers)
        return [f"{self.embedded.host}:{self.embedded.port}"]

    @property
    def effective_session_timeout(self) -> float:
        # The embedded broker holds a group join for half the session timeout (rounded
        # up to a second); its heartbeats are loopback round trips, so 2 s is safe.
        default = 2.0 if self.is_embedded else 30.0
        return self.session_timeout if self.session_timeout is not None else default

    @property
    def effective_fetch_max_wait(self) -> float:
        # The embedded broker sleeps the full fetch wait even when data is waiting.
        default = 0.01 if self.is_embedded else 0.1
        return self.fetch_max_wait if self.fetch_max_wait is not None else default


class TopicsSection(Strict):
    events: str = "events"
    events_dlq: str = "events.dlq"
    alerts: str = "alerts"
    alerts_dlq: str = "alerts.dlq"
    drift: str = "drift"
    feedback: str = "feedback"
    # Compacted topics the delivery service writes one record at a time and reads at start.
    silences: str = "silences"  # silences created through the HTTP API
    notify_log: str = "notify.log"  # what each receiver was sent per group (Alertmanager's nflog)
    alert_state: str = "alerts.state"  # alerts held in notification groups

    @model_validator(mode="after")
    def _distinct(self) -> TopicsSection:
        names = list(self.model_dump().values())
        if len(set(names)) != len(names):
            raise ValueError("topic names must be distinct")
        return self


class IngestSection(Strict):
    max_event_bytes: int = Field(65536, ge=64, le=16 * 1024 * 1024)
    max_labels: int = Field(32, ge=0, le=256)
    max_fields: int = Field(64, ge=1, le=1024)
    #: How far ahead of the worker's clock an event may be; further ones are dead-lettered.
    max_future_skew: Duration = Field(300.0, gt=0)
    #: Streams one worker keeps state for; past it, the least recently seen one is evicted.
    max_streams: int = Field(100_000, ge=1)


class HttpSection(Strict):
    bind: str = "127.0.0.1"
    port: int = Field(6066, ge=0, le=65535, description="0 picks a free port.")
    api_token: SecretStr | None = Field(
        None, description="Bearer token for the write endpoints of the API; unset or empty: 403."
    )
    feedback_secret: SecretStr | None = Field(
        None, description="Key of the signed feedback links in notifications; unset: no links."
    )
    feedback_link_ttl: Duration = Field(
        7 * 86400.0, gt=0, description="How long a feedback link works after the alert starts."
    )

    @field_validator("api_token", "feedback_secret")
    @classmethod
    def _empty_is_unset(cls, token: SecretStr | None) -> SecretStr | None:
        return token if token is not None and token.get_secret_value() else None

    @field_validator("feedback_secret")
    @classmethod
    def _long_enough(cls, secret: SecretStr | None) -> SecretStr | None:
        # Anyone who guesses the key can forge links and move thresholds.
        if secret is not None and len(secret.get_secret_value()) < 16:
            raise ValueError("feedback_secret needs at least 16 characters (use a random one)")
        return secret


class _RuleBase(Strict):
    name: str = Field(pattern=_NAME, description="Becomes the alertname label.")
    streams: list[str] = Field(["*"], min_length=1, description="Globs over stream names.")
    severity: Severity = Severity.WARNING
    summary: str | None = Field(None, max_length=500)


class _ValueRule(_RuleBase):
    field: str = Field("value", pattern=_FIELD, description="Which field of the event.")
    for_: Duration = Field(0.0, alias="for", description="How long the condition must hold.")
    keep_firing_for: Duration = Field(
        0.0, description="How long the condition must stay clear before resolving."
    )


class AboveRule(_ValueRule):
    type: Literal["above"]
    threshold: float = Field(allow_inf_nan=False)
    clear_threshold: float | None = Field(None, allow_inf_nan=False)

    @model_validator(mode="after")
    def _hysteresis(self) -> AboveRule:
        if self.clear_threshold is not None and self.clear_threshold > self.threshold:
            raise ValueError("clear_threshold of an 'above' rule must be <= threshold")
        return self


class BelowRule(_ValueRule):
    type: Literal["below"]
    threshold: float = Field(allow_inf_nan=False)
    clear_threshold: float | None = Field(None, allow_inf_nan=False)

    @model_validator(mode="after")
    def _hysteresis(self) -> BelowRule:
        if self.clear_threshold is not None and self.clear_threshold < self.threshold:
            raise ValueError("clear_threshold of a 'below' rule must be >= threshold")
        return self


class RateOfChangeRule(_ValueRule):
    type: Literal["rate_of_change"]
    max_rate: float = Field(gt=0, allow_inf_nan=False, description="Units per second.")
    direction: Literal["up", "down", "both"] = "both"


class ZScoreRule(_ValueRule):
    type: Literal["zscore"]
    threshold: float = Field(4.0, gt=0, allow_inf_nan=False)
    window: int = Field(100, ge=2, le=100_000, description="Effective window of the EW stats.")
    min_samples: int = Field(30, ge=2)
    direction: Literal["up", "down", "both"] = "both"


class AbsenceRule(_RuleBase):
    type: Literal["absence"]
    for_: Duration = Field(alias="for", gt=0, description="Silence longer than this fires.")


#: The rules that judge values (everything but absence, which judges time).
ValueRule = AboveRule | BelowRule | RateOfChangeRule | ZScoreRule

Rule = Annotated[
    AboveRule | BelowRule | RateOfChangeRule | ZScoreRule | AbsenceRule,
    Field(discriminator="type"),
]


class AlertingSection(Strict):
    absence_check_interval: Duration = Field(1.0, gt=0)


class DeliverySection(Strict):
    max_attempts: int = Field(8, ge=1, le=100)
    initial_backoff: Duration = Field(0.5, gt=0)
    max_backoff: Duration = Field(60.0, gt=0)
    max_age: Duration = Field(3600.0, gt=0, description="Give up and dead-letter after this.")

    @model_validator(mode="after")
    def _ordered(self) -> DeliverySection:
        if self.max_backoff < self.initial_backoff:
            raise ValueError("max_backoff must be >= initial_backoff")
        return self


class AnomalydConfig(BaseSettings):
    """The whole file. Every section has working defaults except rules and receivers.

    Any leaf can be overridden from the environment as `ANOMALYD_<SECTION>__<KEY>`
    (lists as JSON); the environment wins over the file.
    """

    model_config = SettingsConfigDict(
        env_prefix="ANOMALYD_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    app: AppSection = AppSection()
    kafka: KafkaSection = KafkaSection()
    topics: TopicsSection = TopicsSection()
    ingest: IngestSection = IngestSection()
    http: HttpSection = HttpSection()
    rules: list[Rule] = []
    model: ModelSection = ModelSection()
    drift: DriftSection = DriftSection()
    state: StateSection = StateSection()
    alerting: AlertingSection = AlertingSection()
    delivery: DeliverySection = DeliverySection()
    receivers: list[Receiver] = []
    route: Route | None = None
    inhibit_rules: list[InhibitRule] = []
    silences: list[Silence] = []

    @model_validator(mode="after")
    def _routing_references(self) -> AnomalydConfig:
        names = [receiver.name for receiver in self.receivers]
        problems = check_routing(self.route, self.silences, names)
        if problems:
            details = [
                InitErrorDetails(type=PydanticCustomError("reference", text), loc=loc, input=None)
                for loc, text in problems
            ]
            raise ValidationError.from_exception_data(type(self).__name__, details)
        return self

    @model_validator(mode="after")
    def _unique_names(self) -> AnomalydConfig:
        for kind, names in (
            ("rule", [rule.name for rule in self.rules]),
            ("receiver", [receiver.name for receiver in self.receivers]),
        ):
            duplicates = sorted({name for name in names if names.count(name) > 1})
            if duplicates:
                raise ValueError(f"{kind} names must be unique; repeated: {', '.join(duplicates)}")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The loader passes the parsed file as init arguments; the environment beats it.
        return (env_settings, init_settings)
