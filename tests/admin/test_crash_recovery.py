"""The endpoint killed with SIGKILL under load and restarted: no acknowledged request lost, none filed twice.

`s3access admin serve` runs as a real process on a SQLite store. 50 clients (alice and bob) submit without
pause; a submission that meets a connection error waits in the client's outbox and is resent, same key,
until answered. The server is killed mid-traffic and restarted on the same store and port, twice.
Afterwards the store must hold exactly one request per acknowledged key, with the id that key was answered
with, and an audit log without gaps.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mlspace_s3magic.access_requests.client import AdminClient, AdminRefused, AdminUnreachable
from mlspace_s3magic.access_requests.outbox import Outbox
from mlspace_s3magic.admin.store import open_store
from mlspace_s3magic.core.access import NewAccessRequest
from mlspace_s3magic.core.aws import Aws
from mlspace_s3magic.core.grant import AccessLevel
from mlspace_s3magic.sandbox.state import SandboxState

from .conftest import free_port

CLIENTS = 50
CRASHES = 2
ACKS_BETWEEN_CRASHES = 150  # traffic is flowing (and some of it in flight) when the kill comes
STARTUP_SECONDS = 30.0
ADMIN_ARN = "arn:aws:iam::111111111111:user/admin"
# Registered or not, all valid; the prefix is unique per key, so no submission is a pending duplicate.
BUCKETS = ("BucketToBeShared", "partner-shared-readonly", "some-unregistered-bucket")


class ServerProcess:
    """`python -m mlspace_s3magic.cli admin serve` with the sandbox admin's credentials; output to a log."""

    def __init__(self, sandbox: SandboxState, port: int, store: Path, log: Path):
        self.url = f"http://127.0.0.1:{port}"
        self.command = [
            sys.executable,
            "-m",
            "mlspace_s3magic.cli",
            "admin",
            "serve",
            "--port",
            str(port),
            "--store",
            f"sqlite://{store}",
            "--sts-endpoint",
            sandbox.endpoint_url,
            "--admin-arn",
            ADMIN_ARN,
            "--proofs-per-minute",  # 50 clients without pause: far over what a notebook is allowed
            "1000000",
        ]
        self.environment = sandbox.process_environment("admin", os.environ)
        self.store = store
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                self.command, env=self.environment, stdout=output, stderr=subprocess.STDOUT
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def wait_until_answering(self, client: AdminClient) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert self.process is not None
            assert self.process.poll() is None, f"the server exited:\n{self.log.read_text()[-3000:]}"
            try:
                client.buckets()
                return
            except AdminUnreachable:
                assert time.monotonic() < deadline, (
                    f"the server never answered:\n{self.log.read_text()[-3000:]}"
                )
                time.sleep(0.05)


@dataclass
class Tally:
    """What the clients saw, shared between their threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    acknowledged: dict[str, str] = field(default_factory=dict)  # key -> the request id it was answered with
    resent: set[str] = field(default_factory=set)  # keys that met a connection error at least once
    first_sent: dict[str, float] = field(default_factory=dict)  # key -> when it was first sent (epoch)
    unreachable: int = 0
    refusals: list[str] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)

    def count(self) -> int:
        with self.lock:
            return len(self.acknowledged)


def _submit_until_stopped(client: AdminClient, stop: threading.Event, tally: Tally, seed: int) -> None:
    """Submit new keys until ``stop``. One the server did not answer waits in the client's outbox, which is
    flushed (the same key resent) until the server answers, as a notebook does once the endpoint is back."""
    chance = random.Random(seed)
    while not stop.is_set():
        key = uuid.uuid4().hex
        new = NewAccessRequest(
            bucket=chance.choice(BUCKETS),
            prefix=f"run/{key}/",
            access=chance.choice(list(AccessLevel)),
            reason="crash recovery test",
            idempotency_key=key,
        )
        with tally.lock:
            tally.first_sent[key] = time.time()
        try:
            request = client.submit(new)
            give_up = None  # once stopping, a key still unanswered gets a bounded time (a dead server)
            while request is None:
                with tally.lock:
                    tally.unreachable += 1
                    tally.resent.add(key)
                if stop.is_set():
                    give_up = give_up or time.monotonic() + STARTUP_SECONDS
                    if time.monotonic() > give_up:
                        with tally.lock:
                            tally.abandoned.append(key)
                        return
                time.sleep(chance.uniform(0.02, 0.1))
                with suppress(AdminUnreachable):
                    request = next(sent for sent in client.flush_outbox() if sent.idempotency_key == key)
        except AdminRefused as refused:
            with tally.lock:
                tally.refusals.append(f"{key}: {refused}")
            continue
        with tally.lock:
            tally.acknowledged[key] = request.id


def _wait_for_acks(tally: Tally, at_least: int, server: ServerProcess) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while tally.count() < at_least:
        assert time.monotonic() < deadline, (
            f"only {tally.count()} of {at_least} acknowledged; refusals {tally.refusals[:3]}\n"
            f"{server.log.read_text()[-3000:]}"
        )
        time.sleep(0.01)


@pytest.fixture
def server(sandbox: SandboxState, tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(sandbox, free_port(), tmp_path / "admin.db", tmp_path / "server.log")
    yield process
    process.stop()


def test_acknowledged_requests_survive_sigkill_once_each(
    sandbox: SandboxState, server: ServerProcess, tmp_path: Path
) -> None:
    identities = {name: sandbox.aws_for(name).with_pool(CLIENTS) for name in ("alice@demo", "bob@demo")}
    clients = [_client(server.url, identities, number, tmp_path) for number in range(CLIENTS)]
    server.start()
    server.wait_until_answering(clients[0])

    stop, tally = threading.Event(), Tally()
    threads = [
        threading.Thread(target=_submit_until_stopped, args=(client, stop, tally, number), daemon=True)
        for number, client in enumerate(clients)
    ]
    for thread in threads:
        thread.start()
    kills: list[float] = []  # when each SIGKILL was sent (epoch seconds, as the server stamps requests)
    acknowledged_at_last_kill = 0
    try:
        for crash in range(1, CRASHES + 1):
            _wait_for_acks(tally, ACKS_BETWEEN_CRASHES * crash, server)
            server.kill()
            kills.append(time.time())
            acknowledged_at_last_kill = tally.count()
            server.start()  # the clients keep resending meanwhile; they find it once it listens
        _wait_for_acks(tally, ACKS_BETWEEN_CRASHES * (CRASHES + 1), server)
    finally:
        stop.set()
        deadline = time.monotonic() + STARTUP_SECONDS + 10
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads)
    server.stop()
    for client in clients:
        client.close()

    assert tally.refusals == [], tally.refusals[:5]
    assert tally.abandoned == []
    assert [new for client in clients if client.outbox for new in client.outbox.pending()] == []
    assert tally.unreachable > 0 and tally.resent, "no submission was in flight when the server was killed"
    assert tally.count() > acknowledged_at_last_kill, "nothing was acknowledged after the last restart"

    store = open_store(f"sqlite://{server.store}")
    try:
        requests = store.list_requests()
        audit = store.audit()
    finally:
        store.close()
    # The case idempotency keys exist for: filed, then the answer lost with the server; the resend found it.
    lost_answers = [
        request
        for request in requests
        if request.idempotency_key in tally.resent
        and any(
            tally.first_sent[request.idempotency_key] <= kill and request.created_at.timestamp() <= kill
            for kill in kills
        )
    ]
    assert lost_answers, "no request was filed and then had its answer lost in a crash"
    keys = Counter(request.idempotency_key for request in requests)
    assert [key for key, times in keys.items() if times > 1] == [], "a key was filed twice"
    stored = {request.idempotency_key: request.id for request in requests}
    assert stored == tally.acknowledged  # every acknowledged key, with its id, and nothing unacknowledged
    assert len(requests) == len(tally.acknowledged) == len(set(tally.acknowledged.values()))
    assert [entry.seq for entry in audit] == list(range(1, len(requests) + 1))
    assert {entry.request_id for entry in audit if entry.action == "submit"} == set(stored.values())
    with closing(sqlite3.connect(server.store)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT COUNT(*) FROM idempotency_keys").fetchone() == (len(requests),)


def _client(url: str, identities: dict[str, Aws], number: int, folder: Path) -> AdminClient:
    """Alice and bob alternate; clients of one identity share its AWS clients, each makes its own proof."""
    names = sorted(identities)
    outbox = Outbox(folder / f"outbox-{number}")
    return AdminClient(url, aws=identities[names[number % len(names)]], outbox=outbox)
