"""Run Alembic from code: `shanhai migrate`, `shanhai serve` and the tests use the same path."""

from __future__ import annotations

import os
from pathlib import Path

from alembic.config import Config

from alembic import command


def alembic_config(database_url: str) -> Config:
    candidates = [
        os.environ.get("SHANHAI_ALEMBIC_INI"),
        str(Path(__file__).resolve().parents[2] / "alembic.ini"),
        str(Path.cwd() / "alembic.ini"),
    ]
    ini = next(c for c in candidates if c and Path(c).is_file())
    config = Config(ini)
    config.attributes["database_url"] = database_url
    config.attributes["configure_logging"] = False
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)
