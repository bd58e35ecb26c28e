"""Job retries, dead letters, the scheduler lease and the embedded schedule, on real backends.

The retry middleware runs on an in-process broker with a real database (SQLite): a job that
keeps failing runs three times with growing, jittered delays and is then a dead letter with
its arguments and last error; one that recovers is not. The lease is exercised on Redis.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from taskiq import InMemoryBroker

from server.admin.__main__ import main as admin_main
from server.container import Domain, build_domain, build_realtime
from server.lease import RedisLease
from server.resources import Resources, open_resources
from server.services.clock import Clock
from server.settings import Settings
from server.tasks.broker import build_broker
from server.tasks.middleware import ATTEMPT, MAX_ATTEMPTS, backoff
from server.tasks.schedule import LocalSchedule, Periodic
from server.tasks.scheduler import build_scheduler
from tests.fixtures.redis_server import OwnRedis
from tests.fixtures.services import REDIS_URL, migrate
from tests.fixtures.settings import make_settings


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[tuple[Resources, Domain]]:
    """Resources and use cases on a fresh SQLite file, jobs in process, fast retries."""
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    await asyncio.to_thread(migrate, url)
    settings = make_settings(url, None, "sb:", tmp_path / "media", task_retry_base_s=0.02)
    async with open_resources(settings) as resources:
        clock = Clock()
        domain = build_domain(resources, build_realtime(resources, clock), clock)
        resources.broker.state.domain = domain
        await resources.broker.startup()
        try:
            yield resources, domain
        finally:
            await resources.broker.shutdown()


def test_backoff_grows_fourfold_and_is_jittered_between_half_and_one_and_a_half() -> None:
    """After attempt 1 about base, after attempt 2 about 4 x base, never in step."""
    assert backoff(1, 2.0, 0.0) == 1.0
    assert backoff(1, 2.0, 0.5) == 2.0
    assert backoff(2, 2.0, 0.5) == 8.0
    assert backoff(2, 2.0, 0.999) < 12.0


async def test_a_job_that_keeps_failing_is_retried_then_dead_lettered(
    embedded: tuple[Resources, Domain],
) -> None:
    """Three attempts, labelled 1..3, then one dead letter with the args and last error."""
    resources, domain = embedded
    broker = resources.broker
    assert isinstance(broker, InMemoryBroker)
    seen: list[int] = []

    async def flaky(item: str, context: object = None) -> None:
        seen.append(len(seen) + 1)
        raise RuntimeError(f"broken {item} #{len(seen)}")

    task = broker.register_task(flaky, task_name="test.flaky")
    await task.kiq("abc")
    for _ in range(200):
        await broker.wait_all()
        if await domain.dead_letters.waiting():
            break
        await asyncio.sleep(0.02)
    assert seen == [1, 2, 3]
    (letter,) = await domain.dead_letters.list()
    assert (letter.task, letter.args, letter.attempts) == ("test.flaky", ["abc"], MAX_ATTEMPTS)
    assert "broken abc #3" in letter.last_error
    assert await domain.dead_letters.purge(replayed_only=True) == 0
    assert await domain.dead_letters.purge(replayed_only=False) == 1


async def test_a_job_that_recovers_is_not_dead_lettered(
    embedded: tuple[Resources, Domain],
) -> None:
    """Fails once, succeeds on the retry (which carries attempt 2)."""
    resources, domain = embedded
    broker = resources.broker
    attempts: list[object] = []

    async def once_broken() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("first time")
        return "fine"

    task = broker.register_task(once_broken, task_name="test.once_broken")
    await task.kiq()
    for _ in range(100):
        await broker.wait_all()
        if len(attempts) == 2:
            break
        await asyncio.sleep(0.02)
    assert len(attempts) == 2
    assert await domain.dead_letters.waiting() == 0
    assert ATTEMPT == "attempt"


async def test_the_lease_has_one_holder_and_passes_on_release_or_expiry(own_prefix: str) -> None:
    """Only one of two holds it; the holder renews; released or expired, the other takes it."""
    redis = Redis.from_url(REDIS_URL)
    key = f"{own_prefix}scheduler:lease"
    first, second = RedisLease(redis, key, 0.5), RedisLease(redis, key, 0.5)
    try:
        assert await first.hold() is True
        assert await second.hold() is False
        assert await first.hold() is True  # renewal
        await first.release()
        assert await second.hold() is True
        await first.release()  # not the holder: changes nothing
        assert await first.hold() is False
        await asyncio.sleep(0.7)  # the holder stopped renewing
        assert await first.hold() is True
    finally:
        await redis.delete(key)
        await redis.aclose()


async def test_a_scheduler_started_before_redis_waits_for_it(
    owned_redis: OwnRedis, tmp_path: Path
) -> None:
    """Started while Redis is down, the scheduler waits, then starts once Redis answers.

    It exited with a traceback. Now it installs the periodic jobs and takes the lease.
    """
    owned_redis.kill()
    settings = make_settings(f"sqlite:///{tmp_path / 'db'}", owned_redis.url, "sbsched:", tmp_path)
    scheduler = build_scheduler(settings)
    starting = asyncio.create_task(scheduler.startup())
    await asyncio.sleep(1.0)
    assert not starting.done()
    await owned_redis.astart()
    await asyncio.wait_for(starting, 15)
    try:
        assert scheduler.lease is not None and await scheduler.lease.hold()
        schedules = await scheduler.sources[0].get_schedules()
        assert {s.task_name for s in schedules} >= {"reminders.due_soon", "retention.purge"}
    finally:
        await scheduler.shutdown()
        # taskiq-redis's list source never closes its pool (its shutdown is the base no-op);
        # the scheduler process exits after it, a test does not.
        await scheduler.sources[0]._connection_pool.disconnect()  # type: ignore[attr-defined]


async def test_a_job_queued_before_the_workers_group_exists_is_delivered(
    own_prefix: str, tmp_path: Path
) -> None:
    """A job queued before the workers' group exists reaches the worker that creates it.

    A node that met Redis down at start queues before any group exists. Created at the
    stream's end (taskiq's default), the group skipped such a job for good.
    """
    settings = make_settings(f"sqlite:///{tmp_path / 'db'}", REDIS_URL, own_prefix, tmp_path)
    node, worker = build_broker(settings), build_broker(settings)
    for broker in (node, worker):
        broker.register_task(_noop, task_name="test.noop")
    try:
        sent = await node.find_task("test.noop").kiq()  # type: ignore[union-attr]
        await worker.startup()  # declares the group, as a worker process does
        received = await asyncio.wait_for(anext(aiter(worker.listen())), 10)
        assert sent.task_id.encode() in received.data
        await received.ack()  # type: ignore[misc]
    finally:
        await worker.shutdown()
        await node.shutdown()
        redis = Redis.from_url(REDIS_URL)
        await redis.delete(f"{own_prefix}tasks")
        await redis.aclose()


async def _noop() -> None:
    """A job that does nothing."""


async def test_the_embedded_schedule_queues_its_jobs_every_interval(
    embedded: tuple[Resources, Domain],
) -> None:
    """LocalSchedule kicks each job on the in-process broker; a failing kick is survived."""
    resources, _domain = embedded
    broker = resources.broker
    runs: list[str] = []

    async def tick() -> None:
        runs.append("tick")

    broker.register_task(tick, task_name="test.tick")
    schedule = LocalSchedule(broker, [Periodic("test.tick", 1), Periodic("test.missing", 1)])
    schedule.start()
    try:
        for _ in range(40):
            await broker.wait_all()
            if len(runs) >= 2:
                break
            await asyncio.sleep(0.1)
    finally:
        await schedule.stop()
    assert len(runs) >= 2


async def _dead_verification(settings: Settings) -> uuid.UUID:
    """A registered user whose verification email is a dead letter."""
    async with open_resources(settings) as resources:
        clock = Clock()
        domain = build_domain(resources, build_realtime(resources, clock), clock)
        user = await domain.auth.register(
            email="dlq.user@example.com",
            username="dlq_user",
            password="a-long-enough-pass-1",
            display_name=None,
        )
        return await domain.dead_letters.record(
            "email.verification", [str(user.id)], {}, 3, "MailError('down')"
        )


def test_admin_dlq_replays_on_the_embedded_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """list, show, replay (the job runs in the command), purge; unknown ids are errors."""
    url = f"sqlite:///{tmp_path / 'dlq.db'}"
    migrate(url)
    settings = make_settings(url, None, "sb:", tmp_path / "media")
    letter_id = asyncio.run(_dead_verification(settings))
    for name, value in {
        "DATABASE_URL": url,
        "MAIL_DIR": settings.mail_dir,
        "REDIS_URL": "",
    }.items():
        monkeypatch.setenv(name, value)
    mail = Path(settings.mail_dir)
    assert admin_main(["dlq", "list"]) == 0
    assert str(letter_id) in capsys.readouterr().out
    assert admin_main(["dlq", "show", str(letter_id)]) == 0
    assert "MailError('down')" in capsys.readouterr().out
    assert not mail.exists()
    assert admin_main(["dlq", "replay", str(letter_id)]) == 0
    assert "email.verification queued again" in capsys.readouterr().out
    (written,) = mail.glob("*.eml")
    assert "verify-email?token=" in written.read_text()
    assert admin_main(["dlq", "list"]) == 0
    assert str(letter_id) not in capsys.readouterr().out
    assert admin_main(["dlq", "list", "--all"]) == 0
    assert "replayed" in capsys.readouterr().out
    assert admin_main(["dlq", "show", str(uuid.uuid4())]) == 1
    assert admin_main(["dlq", "purge"]) == 0
    assert "purged 1" in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:  # argparse: a usage line, not a traceback
        admin_main(["dlq", "list", "--limit", "-1"])
    assert refused.value.code == 2
    assert "must be a number 1..10000, not '-1'" in capsys.readouterr().err
    monkeypatch.setenv("ENV", "nowhere")
    assert admin_main(["dlq", "list"]) == 2


def test_a_replay_that_fails_again_on_the_embedded_default_is_dead_lettered_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """SMTP still down: the command waits for the job's retries and their dead letter.

    The command exited once the first run failed, with its retry queued in the process that
    was ending: the job was neither done nor dead-lettered.
    """
    url = f"sqlite:///{tmp_path / 'dlq.db'}"
    migrate(url)
    settings = make_settings(url, None, "sb:", tmp_path / "media")
    letter_id = asyncio.run(_dead_verification(settings))
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    for name, value in {
        "DATABASE_URL": url,
        "REDIS_URL": "",
        "SMTP_URL": f"smtp://127.0.0.1:{port}?timeout=2",
        "TASK_RETRY_BASE_S": "0.01",
    }.items():
        monkeypatch.setenv(name, value)
    assert admin_main(["dlq", "replay", str(letter_id)]) == 0
    capsys.readouterr()
    assert admin_main(["dlq", "list"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert "waiting" in line and "email.verification" in line and " x3 " in line, line
    assert str(letter_id) not in line  # a new letter; the replayed one is done with
