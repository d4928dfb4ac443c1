"""Detection in the worker: events to verdicts, and the streams' state around them.

Owns: the runtime (`runtime.py`: decode, judge, emit alerts and drift windows), the
event flow (`flow.py`: a fetched batch of records to verdicts and sends), the snapshots
of the streams' state (`snapshots.py`), the index of emitted alerts (`alert_index.py`)
and feedback records applied to streams (`feedback_topic.py`).

May import: the core packages (`config`, `domain`, `ingest`, `decide`, `drift`,
`pipeline`, `metrics`) and `kafka/`'s pure helpers. Not `delivery/`, `http/` or the
composition; sends and partitions come in as callables and protocols.
"""
