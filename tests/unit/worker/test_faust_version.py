"""The batching consumer acks on faust-streaming 0.15.3's private bookkeeping: importing it
with another version installed fails at once, and says what to do."""

from __future__ import annotations

import importlib.metadata
import importlib.util

import pytest

from anomalyd.worker.kafka import batching


def test_the_installed_faust_is_the_one_the_consumer_was_written_against() -> None:
    assert importlib.metadata.version("faust-streaming") == batching.FAUST_VERSION == "0.15.3"
    batching.check_faust_version("0.15.3")


@pytest.mark.parametrize("installed", ["0.15.4", "0.16.0", "0.11.0"])
def test_another_version_is_refused_with_a_clear_error(installed: str) -> None:
    with pytest.raises(batching.FaustVersionError) as refused:
        batching.check_faust_version(installed)
    message = str(refused.value)
    assert installed in message
    assert "faust-streaming==0.15.3" in message
    assert isinstance(refused.value, ImportError)  # raised while importing the module


def test_importing_with_another_version_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata,
        "version",
        lambda name: "0.16.0" if name == "faust-streaming" else real(name),
    )
    # A fresh copy of the module, so the one the worker uses stays as it is.
    spec = importlib.util.spec_from_file_location("batching_copy", batching.__file__)
    assert spec is not None
    assert spec.loader is not None
    with pytest.raises(ImportError, match=r"but 0\.16\.0 is installed"):
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
