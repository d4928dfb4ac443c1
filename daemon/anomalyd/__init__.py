"""anomalyd: a push-style streaming anomaly alerting daemon.

Events come in from Kafka, are scored by a rules baseline (and online models),
and alerts are pushed to webhooks, email and logs.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
