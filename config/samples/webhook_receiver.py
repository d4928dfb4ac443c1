"""A webhook receiver for trying anomalyd out: prints each notification it gets and keeps
the last one's headers and body, for `anomalyd verify-webhook`. Standard library only.

    python3 config/samples/webhook_receiver.py [--port 9000] [--out webhook-out]

It answers 200 to every POST and listens on 127.0.0.1 only: it is a sample, not a
receiver to run in production (that one verifies the signature: see config/README.md).
"""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--out", type=Path, default=Path("webhook-out"))
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            (out / "body.json").write_bytes(body)
            headers = "".join(f"{name}: {value}\n" for name, value in self.headers.items())
            (out / "headers.txt").write_text(headers, encoding="utf-8")
            payload = json.loads(body)
            for alert in payload.get("alerts", []):
                summary = alert.get("annotations", {}).get("summary", "")
                print(
                    f"{alert['status']:8} {alert['labels'].get('alertname')}: {summary}", flush=True
                )
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass  # the alerts printed above say what came in

    print(
        f"listening on http://127.0.0.1:{args.port}/, saving the last request in {out}/", flush=True
    )
    HTTPServer(("127.0.0.1", args.port), Receiver).serve_forever()


if __name__ == "__main__":
    main()
