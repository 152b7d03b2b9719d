"""`shanhai create-user` against the test database, then signing in through the API."""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from app.cli import main
from app.core.config import get_settings
from app.models import User
from tests.fixtures.accounts import count_users, sign_in


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str, app) -> Iterator[None]:
    """The CLI reads its settings from the environment: point them at the test database."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SECRET_KEY", "cli-test-secret-key-0123456789-abcdefghij")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


PASSWORD = "a long enough password"


class Terminal(io.StringIO):
    """Standard input as an interactive terminal."""

    def isatty(self) -> bool:
        return True


async def shanhai(*argv: str, stdin: io.StringIO | None = None) -> int:
    """Run the CLI with `stdin` (default: the password piped in, one line)."""
    saved = sys.stdin
    sys.stdin = stdin if stdin is not None else io.StringIO(PASSWORD + "\n")
    try:
        # The CLI runs its own event loop (asyncio.run): give it a thread of its own.
        return await asyncio.to_thread(main, list(argv))
    finally:
        sys.stdin = saved


async def test_create_admin_then_sign_in(cli_env, client, session, app, capsys):
    code = await shanhai(
        "create-user",
        "--role",
        "admin",
        "--email",
        "Root@Example.cn",
    )
    assert code == 0
    assert "created admin root@example.cn" in capsys.readouterr().out

    user = await session.scalar(select(User).where(User.email == "root@example.cn"))
    await session.commit()
    assert user is not None
    assert user.role == "admin" and user.buyer_type is None
    assert user.display_name == "Root"
    assert user.region_code == "330127"
    assert user.password_hash.startswith("$argon2id$")

    r = await sign_in(client, "root@example.cn", "a long enough password")
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json()["role"] == "admin"
    # The new admin can manage users.
    users = await client.get("/api/v1/users", headers={"Authorization": f"Bearer {token}"})
    assert users.status_code == 200


async def test_create_official_with_options(cli_env, client, session):
    code = await shanhai(
        "create-user",
        "--role",
        "official",
        "--email",
        "stats@chunan.gov.cn",
        "--display-name",
        "淳安县统计",
        "--region-code",
        "330127",
    )
    assert code == 0
    user = await session.scalar(select(User).where(User.email == "stats@chunan.gov.cn"))
    await session.commit()
    assert user is not None
    assert (user.role, user.display_name) == ("official", "淳安县统计")


async def test_duplicate_email_exits_1(cli_env, session, capsys):
    args = ["create-user", "--role", "admin", "--email", "root@example.cn"]
    assert await shanhai(*args) == 0
    capsys.readouterr()
    assert (
        await shanhai(
            "create-user",
            "--role",
            "official",
            "--email",
            "ROOT@example.cn",
        )
        == 1
    )
    assert "email_taken" in capsys.readouterr().err
    assert await count_users(session) == 1


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        (["--email", "not-an-email"], "validation_error"),
        (
            [
                "--email",
                "a@example.cn",
                "--region-code",
                "12",
            ],
            "validation_error",
        ),
        (
            [
                "--email",
                "a@example.cn",
                "--buyer-type",
                "union",
            ],
            "validation_error",
        ),
    ],
)
async def test_bad_input_exits_1(cli_env, session, capsys, extra, code):
    assert await shanhai("create-user", "--role", "admin", *extra) == 1
    assert code in capsys.readouterr().err
    assert await count_users(session) == 0


async def test_buyer_needs_a_buyer_type(cli_env, session, capsys):
    base = [
        "create-user",
        "--role",
        "buyer",
        "--email",
        "canteen@example.cn",
    ]
    assert await shanhai(*base) == 1
    assert "buyer_type" in capsys.readouterr().err
    assert await shanhai(*base, "--buyer-type", "budget_unit") == 0
    user = await session.scalar(select(User).where(User.email == "canteen@example.cn"))
    await session.commit()
    assert user is not None and user.buyer_type == "budget_unit"


# --- the password never on the command line ------------------------------------------------------


async def test_a_password_on_the_command_line_is_refused(cli_env, session, capsys):
    # It would stay in the shell's history and in every process listing.
    with pytest.raises(SystemExit) as exit_:
        await shanhai(
            "create-user", "--role", "admin", "--email", "root@example.cn", "--password", PASSWORD
        )
    assert exit_.value.code == 2
    assert "--password" in capsys.readouterr().err
    assert await count_users(session) == 0


async def test_password_piped_in_is_one_line(cli_env, client, session):
    stdin = io.StringIO("  spaces count here  \r\nsecond line is ignored\n")
    code = await shanhai("create-user", "--role", "admin", "--email", "a@example.cn", stdin=stdin)
    assert code == 0
    assert (await sign_in(client, "a@example.cn", "  spaces count here  ")).status_code == 200


async def test_a_short_piped_password_is_refused(cli_env, session, capsys):
    stdin = io.StringIO("short\n")
    code = await shanhai("create-user", "--role", "admin", "--email", "a@example.cn", stdin=stdin)
    assert code == 1
    assert "validation_error" in capsys.readouterr().err
    assert await count_users(session) == 0


async def test_nothing_piped_in_is_refused(cli_env, session, capsys):
    code = await shanhai(
        "create-user", "--role", "admin", "--email", "a@example.cn", stdin=io.StringIO("")
    )
    assert code == 1
    assert "no password" in capsys.readouterr().err
    assert await count_users(session) == 0


async def test_on_a_terminal_the_password_is_asked_twice(
    cli_env, client, session, monkeypatch, capsys
):
    answers = iter([PASSWORD, PASSWORD])
    prompts: list[str] = []

    def fake_getpass(prompt: str = "Password: ") -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    code = await shanhai(
        "create-user", "--role", "official", "--email", "o@example.cn", stdin=Terminal()
    )
    assert code == 0 and len(prompts) == 2
    assert (await sign_in(client, "o@example.cn", PASSWORD)).status_code == 200


async def test_on_a_terminal_two_different_answers_are_refused(
    cli_env, session, monkeypatch, capsys
):
    answers = iter([PASSWORD, PASSWORD + "x"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    code = await shanhai(
        "create-user", "--role", "admin", "--email", "a@example.cn", stdin=Terminal()
    )
    assert code == 1
    assert "differ" in capsys.readouterr().err
    assert await count_users(session) == 0
