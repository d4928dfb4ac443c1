"""Kafka plumbing: everything that speaks to the broker or extends Faust.

Owns: the Faust transport extensions (`transport.py`) and the batching consumer
(`batching.py`), the embedded broker (`broker.py`), client-side admin helpers (ports,
probes, topic creation: `admin.py`), broker health (`health.py`), consumer lag
(`lag.py`), the compacted-topic state log (`statelog.py`), a topic followed outside the
group (`follow.py`), dead-letter records (`deadletter.py`) and the producer of the
command line's events (`producer.py`, for `anomalyd demo` and `anomalyd send`).

May import: Faust, mode, aiokafka, the standard library, and the core packages. Never
`detection/`, `delivery/`, `http/` or the composition: what it reports to is a protocol
(`health.Readiness`, `batching.BatchHandler`, `statelog.Handler`).
"""
