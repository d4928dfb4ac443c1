"""The sample dataset the README's examples use: shipped as generated, and it shows what
the examples say (the default config pages once inside each labelled window)."""

from __future__ import annotations

import base64
import itertools
import json
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import orjson
from standardwebhooks import Webhook

import samples
from anomalyd.backtest import backtest, read_events
from anomalyd.backtest.reader import parse_csv_time
from anomalyd.cli import DEFAULT_CONFIG, USES, main
from anomalyd.config import AnomalydConfig, load_config
from anomalyd.evaluate.pages import pages
from anomalyd.ingest import Limits
from anomalyd.worker.kafka.admin import free_port, is_listening

ROOT = Path(__file__).resolve().parents[3]


def test_the_shipped_samples_are_what_the_generator_makes() -> None:
    made = samples.generate()
    shipped_csv = (samples.SAMPLES / samples.CSV_NAME).read_text(encoding="utf-8")
    shipped_labels = (samples.SAMPLES / samples.LABELS_NAME).read_text(encoding="utf-8")
    hint = "regenerate them with `python tests/samples.py`"
    assert shipped_csv == made.csv, hint
    assert shipped_labels == made.labels, hint


def test_the_sample_is_a_week_at_five_minutes_in_nabs_format() -> None:
    lines = samples.generate().csv.splitlines()
    assert lines[0] == "timestamp,value"
    times = [parse_csv_time(line.split(",")[0]) for line in lines[1:]]
    assert len(times) == 7 * 24 * 12
    assert {b - a for a, b in itertools.pairwise(times)} == {300.0}
    labels = json.loads(samples.generate().labels)
    assert list(labels) == [samples.CSV_NAME]  # backtest matches the key against the path
    assert len(labels[samples.CSV_NAME]) == 2


def test_the_default_config_pages_once_inside_each_labelled_window() -> None:
    """What `anomalyd backtest config/samples/checkout_latency.csv --labels
    config/samples/labels.json` reports, in-process: both windows paged, nothing else."""
    ignore = set(AnomalydConfig.model_fields) - USES["backtest"]
    config = load_config(str(ROOT / DEFAULT_CONFIG), ignore=ignore)
    limits = Limits(
        config.ingest.max_event_bytes, config.ingest.max_labels, config.ingest.max_fields
    )
    result = backtest(config, read_events(samples.SAMPLES / samples.CSV_NAME, limits))
    windows = [
        (parse_csv_time(start), parse_csv_time(end))
        for start, end in json.loads(samples.generate().labels)[samples.CSV_NAME]
    ]
    starts = [alert.starts_at for alert in pages(result.alerts)]

    def paged_in(window: tuple[float, float]) -> int:
        return sum(window[0] <= ts <= window[1] for ts in starts)

    assert [paged_in(window) for window in windows] == [1, 1], starts
    assert len(starts) == 2, starts


def test_the_sample_webhook_receiver_keeps_what_verify_webhook_checks(tmp_path: Path) -> None:
    """The quick start's step 4: the sample receiver prints the alert and saves the request
    so that `anomalyd verify-webhook` accepts it."""
    secret = "whsec_" + base64.b64encode(bytes(range(32))).decode()
    body = orjson.dumps(
        {
            "version": "4",
            "status": "firing",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": "CheckoutLatencyHigh"},
                    "annotations": {"summary": "Checkout latency 1250 ms"},
                }
            ],
        }
    )
    when = datetime.now(tz=UTC).replace(microsecond=0)
    headers = {
        "Content-Type": "application/json",
        "webhook-id": "n-1",
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": Webhook(secret).sign("n-1", when, body.decode()),
    }
    port = free_port()
    script = ROOT / "config" / "samples" / "webhook_receiver.py"
    receiver = subprocess.Popen(
        [sys.executable, str(script), "--port", str(port), "--out", str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 10.0
        while not is_listening("127.0.0.1", port) and time.monotonic() < deadline:
            time.sleep(0.05)  # polling for the port, bounded by the deadline
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/", data=body, headers=headers, method="POST"
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert answer.status == 200
    finally:
        receiver.terminate()
        output, _ = receiver.communicate(timeout=10)
    assert "firing   CheckoutLatencyHigh: Checkout latency 1250 ms" in output
    saved = ["--headers", str(tmp_path / "headers.txt"), "--body", str(tmp_path / "body.json")]
    assert main(["verify-webhook", "--secret", secret, *saved]) == 0
