"""Ingest: turn raw messages into validated events, or say why not."""

from anomalyd.ingest.parse import InvalidEvent, Limits, event_from_mapping, parse_event

__all__ = ["InvalidEvent", "Limits", "event_from_mapping", "parse_event"]
