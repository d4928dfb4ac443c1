"""Detection: rules (and, later, online models) judge each point of a series."""

from anomalyd.detect.rules import Check, ValueCheck, value_check

__all__ = ["Check", "ValueCheck", "value_check"]
