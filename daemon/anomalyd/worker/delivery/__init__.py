"""Delivery in the worker: alerts from the alerts topic to the receivers.

Owns: the delivery service (`service.py`: the two doors into delivery, scheduling of
group flushes, silences, dead letters, the partitions it follows) and its replicated
state (`state.py`: held alerts, the notification log and silences on compacted topics);
the cluster view of every worker's alerts (`cluster_alerts.py`).

May import: the core packages (`config`, `domain`, `notify`, `metrics`) and `kafka/`
(the state log it keeps its state on). Not `detection/`, `http/` or the composition.
"""
