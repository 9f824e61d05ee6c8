"""The Alembic migrations build exactly the tables the models describe, on SQLite and Postgres
(a model change without its migration fails here, not in production)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import store.models  # noqa: F401 - registers the tables
from store.migrate import upgrade


def _differences(url: str) -> list:
    upgrade(url)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": False})
            diffs = compare_metadata(ctx, SQLModel.metadata)
    finally:
        engine.dispose()
    # Server defaults are compared loosely by alembic; nullable/type drift is what matters here.
    return [d for d in diffs if not (isinstance(d, list) and d and d[0][0] == "modify_default")]


def test_sqlite_schema_matches_the_models(tmp_path) -> None:
    assert _differences(f"sqlite:///{tmp_path / 'm.db'}") == []


def test_postgres_schema_matches_the_models(postgres_url: str) -> None:
    url = postgres_url.replace("postgresql://", "postgresql+psycopg://", 1) if postgres_url.startswith("postgresql://") else postgres_url
    assert _differences(url) == []
