"""Configuration: the schema and its loader."""

from anomalyd.config.detection import (
    DetectorKind,
    FeedbackSection,
    Mode,
    ModelSection,
    ModeOverride,
    StateSection,
)
from anomalyd.config.diff import ConfigDiff, diff_configs, live_config
from anomalyd.config.drift import DriftSection, DriftThresholds, ReferenceMode
from anomalyd.config.durations import Duration, parse_duration
from anomalyd.config.loader import ConfigError, load_config, parse_config
from anomalyd.config.receivers import (
    AlertmanagerReceiver,
    BasicAuth,
    EmailReceiver,
    LogReceiver,
    Receiver,
    SmtpAuth,
    WebhookReceiver,
    signing_key,
)
from anomalyd.config.schema import (
    AboveRule,
    AbsenceRule,
    AnomalydConfig,
    BelowRule,
    DeliverySection,
    RateOfChangeRule,
    Rule,
    ValueRule,
    ZScoreRule,
)
from anomalyd.config.version import config_version

__all__ = [
    "AboveRule",
    "AbsenceRule",
    "AlertmanagerReceiver",
    "AnomalydConfig",
    "BasicAuth",
    "BelowRule",
    "ConfigDiff",
    "ConfigError",
    "DeliverySection",
    "DetectorKind",
    "DriftSection",
    "DriftThresholds",
    "Duration",
    "EmailReceiver",
    "FeedbackSection",
    "LogReceiver",
    "Mode",
    "ModeOverride",
    "ModelSection",
    "RateOfChangeRule",
    "Receiver",
    "ReferenceMode",
    "Rule",
    "SmtpAuth",
    "StateSection",
    "ValueRule",
    "WebhookReceiver",
    "ZScoreRule",
    "config_version",
    "diff_configs",
    "live_config",
    "load_config",
    "parse_config",
    "parse_duration",
    "signing_key",
]
