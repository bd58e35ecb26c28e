"""``python -m server.admin``: dispatch, and the seed command's refusals (no database)."""

from __future__ import annotations

import pytest

from server.admin import seed
from server.admin.__main__ import build_parser, main


def test_seed_is_a_subcommand() -> None:
    """The parser dispatches ``seed`` to the seed module with its options."""
    args = build_parser().parse_args(["seed", "--users", "10", "--groups", "2"])
    assert args.run is seed.run
    assert (args.users, args.groups, args.groups_per_user) == (10, 2, 2)


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    """No command: usage and exit status 2, as argparse does."""
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


@pytest.mark.parametrize("env", ["production", " Production "])
def test_seed_refuses_production(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    """ENV=production: nothing is touched, status 2 and a clear message."""
    args = build_parser().parse_args(["seed", "--users", "10", "--groups", "2"])
    environ = {"ENV": env, "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    assert seed.run(args, environ) == 2
    assert "refusing to run with ENV=production" in capsys.readouterr().err


def test_seed_refuses_an_impossible_plan(capsys: pytest.CaptureFixture[str]) -> None:
    """More groups than users is reported, not attempted."""
    args = build_parser().parse_args(["seed", "--users", "1", "--groups", "2"])
    assert seed.run(args, {}) == 2
    assert "groups <= users" in capsys.readouterr().err


def test_seed_reports_bad_settings(capsys: pytest.CaptureFixture[str]) -> None:
    """A staging environment without secrets is refused by the settings check."""
    args = build_parser().parse_args(["seed", "--users", "2", "--groups", "1"])
    assert seed.run(args, {"ENV": "staging"}) == 2
    assert "JWT_SECRET" in capsys.readouterr().err
