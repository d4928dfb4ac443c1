"""The worker: the process that runs detection and delivery over Kafka.

Four wings, one concern each, and the composition on top:

- `kafka/`: Kafka and Faust plumbing (transport extensions, the batching consumer, the
  embedded broker, admin helpers, broker health, consumer lag, the compacted-topic state
  log, dead-letter records);
- `detection/`: events to verdicts (runtime, event flow, snapshots of the streams'
  state, the index of emitted alerts, feedback);
- `delivery/`: alerts to receivers (the delivery service and its replicated state);
- `http/`: every HTTP route, listed in `http/routes.py`;
- composition: `run.py` (process lifecycle), `app.py` (the Faust app: topics, agents,
  rebalance signals, serving the routes), `reload.py` (config reloads), `shutdown.py`.

Only `kafka/` and the composition import Faust, mode or aiokafka. The wings import the
core packages (`config`, `domain`, `decide`, `drift`, `notify`, ...); `detection/` and
`delivery/` also import `kafka/`'s helpers (`records`, `deadletter`, `statelog`), and no
wing imports `detection/`, `delivery/` or `http/`: what one needs of another comes in as
a protocol or a callable, wired by the composition, which imports them all. Nothing
outside `anomalyd.worker` imports it, except the command line: `cli.py`, and
`demo.py` and `send.py` for `kafka/producer.py`. See `daemon/README.md`.
"""
