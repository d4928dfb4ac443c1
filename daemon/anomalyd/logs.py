"""One JSON object per line for everything the process prints: our structlog
events and the stdlib logs of Faust, aiokafka and aiohttp alike.

Tracebacks are structured but never carry the frames' local variables: a local can hold
the API token, a receiver's secret or a request's bytes, and a log is no place for them
(structlog's stock `dict_tracebacks` renders every frame's locals)."""

from __future__ import annotations

import logging
import logging.config
from typing import Any

import structlog
from structlog.tracebacks import ExceptionDictTransformer

_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
]

#: `exc_info` -> a structured `exception` field: type, message and frames, no locals.
render_tracebacks = structlog.processors.ExceptionRenderer(
    ExceptionDictTransformer(show_locals=False)
)


def logging_config(level: str) -> dict[str, Any]:
    """A complete `dictConfig` whose one handler renders JSON (given to Faust too)."""
    quiet = "DEBUG" if level == "debug" else "WARNING"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    render_tracebacks,
                    structlog.processors.JSONRenderer(),
                ],
                "foreign_pre_chain": [*_SHARED, structlog.stdlib.ExtraAdder()],
            }
        },
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stdout",
            }
        },
        "filters": {"faust_false_alarms": {"()": FaustFalseAlarms}},
        "root": {"handlers": ["stdout"], "level": level.upper()},
        # Faust, mode and aiokafka narrate every start-up step at INFO; the
        # daemon logs its own milestones, so theirs show only in debug.
        "loggers": {
            **{name: {"level": quiet} for name in ("aiokafka", "faust", "mode")},
            # Our Faust App logs under the module that defines it.
            "anomalyd.worker.kafka.transport": {"filters": ["faust_false_alarms"]},
        },
    }


class FaustFalseAlarms(logging.Filter):
    """Demotes to DEBUG the warnings Faust logs on every clean start: "Missing sensor
    state for rebalance #1" (faust-streaming issue 83: its table recovery resets the
    rebalance's sensor state before the rebalance returns). Kept, at DEBUG: a warning on
    every start teaches people to ignore warnings."""

    _TEXT = "Missing sensor state for rebalance"

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING and self._TEXT in str(record.msg):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


def configure_logging(level: str = "info") -> dict[str, Any]:
    """Configure structlog and the stdlib root logger; return the dictConfig applied."""
    config = logging_config(level)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    logging.config.dictConfig(config)
    return config
