"""Configuration: the schema and its loader."""

from anomalyd.config.durations import Duration, parse_duration
from anomalyd.config.loader import ConfigError, load_config, parse_config
from anomalyd.config.model import (
    AboveRule,
    AbsenceRule,
    AnomalydConfig,
    BelowRule,
    DeliverySection,
    LogReceiver,
    RateOfChangeRule,
    Receiver,
    Rule,
    ValueRule,
    WebhookReceiver,
    ZScoreRule,
)

__all__ = [
    "AboveRule",
    "AbsenceRule",
    "AnomalydConfig",
    "BelowRule",
    "ConfigError",
    "DeliverySection",
    "Duration",
    "LogReceiver",
    "RateOfChangeRule",
    "Receiver",
    "Rule",
    "ValueRule",
    "WebhookReceiver",
    "ZScoreRule",
    "load_config",
    "parse_config",
    "parse_duration",
]
