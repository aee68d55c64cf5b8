"""Two real `openpayer worker` processes share one database: every scheduled run and every message is
handled exactly once (on PostgreSQL through row claims with SKIP LOCKED; SQLite is checked too)."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
from sqlalchemy import Engine, func, select
from tests.jobs.conftest import SmtpServer
from tests.live import free_port

from openpayer.app import Services
from openpayer.db import write_transaction
from openpayer.email.tables import email_message
from openpayer.jobs.tables import job_attempt, job_run

OPENPAYER = str(Path(sys.executable).parent / "openpayer")
MESSAGES = 30


def start_worker(name: str, services: Services, smtp_port: int, *options: str) -> subprocess.Popen[str]:
    env = dict(
        os.environ,
        OPENPAYER_DATABASE_URL=services.settings.resolved_database_url,
        OPENPAYER_HOME=str(services.settings.home),
        OPENPAYER_SECRET_KEY="test-secret",
        OPENPAYER_JOBS_HOST_NAME=name,
        OPENPAYER_JOBS_POLL_SECONDS="0.1",
        OPENPAYER_JOBS_CLEANUP_EVERY="1",
        OPENPAYER_SMTP_URL=f"smtp://127.0.0.1:{smtp_port}",
        PYTHONUNBUFFERED="1",
        COLUMNS="200",
    )
    return subprocess.Popen(
        [OPENPAYER, "worker", *options], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def wait_ready(worker: subprocess.Popen[str], deadline: float) -> None:
    """Read the worker's output on a thread (a line may sit in the pipe's text buffer, where select() on
    the file descriptor no longer sees it) until it says it is ready."""
    assert worker.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    stdout = worker.stdout
    threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
    output = []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            if worker.poll() is not None:
                break
            continue
        output.append(line)
        if "ready" in line:
            return
    raise AssertionError(f"worker did not start: {''.join(output)}")


def test_two_worker_processes_handle_each_scheduled_run_and_each_message_once(
    services: Services, smtp_server: SmtpServer
) -> None:
    engine: Engine = services.engine
    smtp_server.relay.delay = 0.1  # long enough that both workers are busy at once
    workers = [start_worker(name, services, smtp_server.port) for name in ("worker-a", "worker-b")]
    try:
        for worker in workers:
            wait_ready(worker, time.monotonic() + 60)
        with write_transaction(engine) as conn:
            ids = [
                services.background.email.send(
                    conn,
                    to=f"dev{n}@example.org",
                    template="test_message",
                    context={"deployment": "d", "sent_at": "t", "recipient": "r"},
                    cause="test.two-workers",
                )
                for n in range(MESSAGES)
            ]
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                sent = conn.execute(select(func.count()).where(email_message.c.status == "sent")).scalar_one()
                cleanups = conn.execute(
                    select(func.count()).where(
                        job_run.c.job == "oauth.cleanup", job_run.c.status == "succeeded"
                    )
                ).scalar_one()
            if sent == MESSAGES and cleanups >= 4:
                break
            time.sleep(0.2)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        codes = [worker.wait(30) for worker in workers]
    assert codes == [0, 0]

    with engine.connect() as conn:
        messages = conn.execute(select(email_message).where(email_message.c.id.in_(ids))).all()
        runs = conn.execute(select(job_run)).all()
        attempts = conn.execute(select(job_attempt)).all()
    assert {m.status for m in messages} == {"sent"}
    assert {m.attempts for m in messages} == {1}
    received = Counter(smtp_server.relay.message_ids())
    assert received == Counter({m.message_id: 1 for m in messages})  # each message reached the relay once

    per_run = Counter(a.run_id for a in attempts)
    assert set(per_run.values()) == {1}  # no run was attempted twice
    assert {a.outcome for a in attempts} <= {"succeeded", "running"}  # running: stopped mid-cleanup
    delivery_hosts = {a.host for a in attempts if a.job == "email.deliver"}
    assert delivery_hosts == {"worker-a", "worker-b"}  # both really worked, concurrently

    cleanup_slots = sorted(r.scheduled_for for r in runs if r.job == "oauth.cleanup")
    assert len(cleanup_slots) >= 4
    assert len(set(cleanup_slots)) == len(cleanup_slots)  # one run per slot, though both hosts scheduled each
    assert {r.host for r in runs if r.job == "oauth.cleanup"} <= {"worker-a", "worker-b"}


def test_a_worker_serves_its_job_and_email_counters_on_its_metrics_port(
    services: Services, smtp_server: SmtpServer
) -> None:
    port = free_port()
    worker = start_worker("worker-m", services, smtp_server.port, "--metrics-port", str(port))
    try:
        wait_ready(worker, time.monotonic() + 60)
        with write_transaction(services.engine) as conn:
            services.background.email.send(
                conn,
                to="dev@example.org",
                template="test_message",
                context={"deployment": "d", "sent_at": "t", "recipient": "r"},
                cause="test.metrics",
            )
        sent = 'openpayer_emails_sent_total{backend="smtp"} 1.0'
        delivered = 'openpayer_job_attempts_total{job="email.deliver",outcome="succeeded"} 1.0'
        cleaned = re.compile(r'openpayer_job_attempts_total\{job="oauth.cleanup",outcome="succeeded"\} [1-9]')
        deadline = time.monotonic() + 60
        text = ""
        # The mail is counted when it is sent, its job's attempt when the job returns, a moment later.
        while time.monotonic() < deadline:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            if sent in text and delivered in text and cleaned.search(text):
                break
            time.sleep(0.2)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    assert sent in text
    assert delivered in text
    assert cleaned.search(text)
