"""`anomalyd verify-webhook`: verifies requests signed by an independent implementation of
the spec (the `standardwebhooks` package) and rejects tampered, stale or foreign ones."""

from __future__ import annotations

import base64
import io
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from standardwebhooks import Webhook

from anomalyd import verify_webhook
from anomalyd.cli import main
from anomalyd.notify.receivers import signing

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
OLD = "whsec_" + base64.b64encode(bytes(range(50, 82))).decode()
BODY = orjson.dumps({"version": "4", "status": "firing", "alerts": [{"labels": {"a": "é"}}]})


def signed(
    secrets: tuple[str, ...] = (SECRET,), at: float | None = None, msg_id: str = "n-42"
) -> dict[str, str]:
    when = datetime.fromtimestamp(int(time.time() if at is None else at), tz=UTC)
    signatures = " ".join(Webhook(s).sign(msg_id, when, BODY.decode()) for s in secrets)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signatures,
    }


def files(tmp_path: Path, headers: dict[str, str], body: bytes = BODY) -> list[str]:
    """A headers file as `curl -D` writes it, and the body file."""
    lines = ["HTTP/1.1 200 OK", "Content-Type: application/json"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    (tmp_path / "headers.txt").write_text("\r\n".join(lines) + "\r\n\r\n")
    (tmp_path / "body.json").write_bytes(body)
    return ["--headers", str(tmp_path / "headers.txt"), "--body", str(tmp_path / "body.json")]


def verify(*args: str) -> int:
    return main(["verify-webhook", *args])


def test_a_valid_request(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert verify("--secret", SECRET, *files(tmp_path, signed())) == 0
    assert "valid: webhook-id n-42" in capsys.readouterr().out


def test_headers_as_json(tmp_path: Path) -> None:
    (tmp_path / "h.json").write_bytes(orjson.dumps(signed()))
    (tmp_path / "b").write_bytes(BODY)
    args = ["--headers", str(tmp_path / "h.json"), "--body", str(tmp_path / "b")]
    assert verify("--secret", SECRET, *args) == 0


def test_a_tampered_body(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tampered = BODY.replace(b"firing", b"resolved")
    assert verify("--secret", SECRET, *files(tmp_path, signed(), tampered)) == 1
    assert "invalid: no signature matches" in capsys.readouterr().err


def test_another_secret(tmp_path: Path) -> None:
    assert verify("--secret", OLD, *files(tmp_path, signed())) == 1


def test_rotation_either_secret_verifies(tmp_path: Path) -> None:
    both = signed((SECRET, OLD))
    assert verify("--secret", SECRET, *files(tmp_path, both)) == 0
    assert verify("--secret", OLD, *files(tmp_path, both)) == 0


def test_a_stale_timestamp(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = signed(at=time.time() - 3600)
    assert verify("--secret", SECRET, *files(tmp_path, old)) == 1
    assert "old" in capsys.readouterr().err
    assert verify("--secret", SECRET, "--tolerance", "7200", *files(tmp_path, old)) == 0


@pytest.mark.parametrize("garbage", ["v1,é", "v1", "", "v2,abc", "v1,!!!"])
def test_malformed_signatures_are_invalid(tmp_path: Path, garbage: str) -> None:
    headers = {**signed(), "webhook-signature": garbage}
    assert verify("--secret", SECRET, *files(tmp_path, headers)) == 1


def test_a_valid_signature_among_garbage(tmp_path: Path) -> None:
    headers = signed()
    headers["webhook-signature"] = "v1,é v2,x " + headers["webhook-signature"]
    assert verify("--secret", SECRET, *files(tmp_path, headers)) == 0


def test_missing_headers(tmp_path: Path) -> None:
    headers = signed()
    del headers["webhook-signature"]
    assert verify("--secret", SECRET, *files(tmp_path, headers)) == 1


def test_stdin_json(monkeypatch: pytest.MonkeyPatch) -> None:
    request = orjson.dumps({"headers": signed(), "body": BODY.decode()})
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(request)))
    assert verify("--secret", SECRET) == 0


def test_stdin_base64_body(monkeypatch: pytest.MonkeyPatch) -> None:
    request = {"headers": signed(), "body_base64": base64.b64encode(BODY).decode()}
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(orjson.dumps(request))))
    assert verify("--secret", SECRET) == 0


def test_secret_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANOMALYD_WEBHOOK_SECRET", SECRET)
    assert verify(*files(tmp_path, signed())) == 0


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--secret", "nope"], "whsec_"),
        ([], "give --secret"),
        (["--secret", SECRET, "--headers", "h.txt"], "both --headers and --body"),
        (["--secret", SECRET, "--headers", "/nonexistent", "--body", "/nonexistent"], "cannot"),
    ],
)
def test_unusable_input_exits_2(
    args: list[str],
    complaint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("ANOMALYD_WEBHOOK_SECRET", raising=False)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"{}")))
    if args[-1:] == ["nope"]:
        args = [*args, *files(tmp_path, signed())]
    assert verify(*args) == 2
    assert complaint in capsys.readouterr().err


def test_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "anomalyd", "verify-webhook", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "usage: anomalyd verify-webhook" in result.stdout


def test_the_default_tolerance_is_the_spec_s() -> None:
    assert verify_webhook.DEFAULT_TOLERANCE == signing.DEFAULT_TOLERANCE == 300.0
