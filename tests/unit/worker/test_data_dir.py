"""A data directory the worker cannot use is said plainly, before Faust buries it in a
traceback (a bug the reliability scenarios found)."""

from __future__ import annotations

from pathlib import Path

from anomalyd.worker.run import data_dir_problem


def test_data_dir_problems(tmp_path: Path) -> None:
    assert data_dir_problem(str(tmp_path / "new" / "dir")) is None  # created
    assert (tmp_path / "new" / "dir").is_dir()
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert data_dir_problem(str(blocker / "state")) == "Not a directory"
