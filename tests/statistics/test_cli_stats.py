"""`shanhai stats verify` exits 1 on a wrong aggregate; `shanhai stats rebuild` repairs it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.cli import main
from app.core.config import get_settings


@pytest.fixture
def db_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "cli.db"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    monkeypatch.setenv("SECRET_KEY", "cli-test-secret-key-0123456789abcdef")
    get_settings.cache_clear()
    try:
        yield path
    finally:
        get_settings.cache_clear()


def test_verify_then_rebuild(db_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate"]) == 0
    assert main(["stats", "verify"]) == 0
    with sqlite3.connect(db_file) as conn:
        conn.execute("INSERT INTO stats_periods VALUES ('total', 'year', '2025', '', 100, 1, 1, 1)")
    assert main(["stats", "verify"]) == 1
    assert "total/year 2025" in capsys.readouterr().err
    assert main(["stats", "rebuild"]) == 0
    assert main(["stats", "verify"]) == 0
    with sqlite3.connect(db_file) as conn:
        assert conn.execute("SELECT count(*) FROM stats_periods").fetchone()[0] == 0
