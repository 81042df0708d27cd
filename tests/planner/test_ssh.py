"""The ``ssh`` provisioner against a real OpenSSH server (tests/ssh_server.py) on two loopback "hosts"
(127.0.0.2 and 127.0.0.3): a lease on both runs the job on both, with each run's output in the job's
logs; cancelling the job or its lease kills the remote processes; a run killed behind the broker's back
fails the job; a wrong host key is refused; a host that does not answer fails the job with its name in
the error; a retried submit starts no second copy. Host addresses come from the
topology's host attributes, which the first test follows from import to the provisioner's allocation.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import text

import ssh_server
from planner_support import book, make_planner, run, spec, wait_state, wait_until
from slotbroker.api.app import create_app
from slotbroker.config import Settings
from slotbroker.domain.errors import ValidationFailed
from slotbroker.domain.jobs import Workload
from slotbroker.domain.topology import Topology
from slotbroker.services.access.tokens import Role, TokenService
from slotbroker.services.booking.claims import ClaimService
from slotbroker.services.booking.leases import LeaseService
from slotbroker.services.booking.quotas import QuotaService
from slotbroker.services.inventory.topology import TopologyService
from slotbroker.services.planner.allocations import load_lease
from slotbroker.services.planner.provisioners.base import Provision, ProvisionerContext, load
from slotbroker.services.planner.provisioners.ssh import SshProvisioner, make_provisioner
from slotbroker.services.planner.provisioners.ssh_remote import SshSettings, target_of
from slotbroker.services.planner.settings import PlannerSettings, ProvisionerPolicy, RetryPolicy
from slotbroker.services.planner.worker import WorkerPool
from slotbroker.store import migrate
from slotbroker.store.db import Database
from slotbroker.store.unit_of_work import UnitOfWork
from ssh_server import SshServer

Hosts = dict[str, dict[str, str]]
WRITES = ("offer_sets", "offers", "consumers", "allocations", "jobs")


@pytest.fixture(scope="module")
def sshd() -> Iterator[SshServer]:
    with ssh_server.ssh_server() as server:
        yield server


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[Database]:
    """The SSH behaviour does not depend on the database: these tests use SQLite only."""
    database = Database(f"sqlite:///{tmp_path}/slotbroker.db")
    migrate.upgrade(database.engine)
    yield database
    database.dispose()


def settings_for(server: SshServer, tmp: Path, **changes: object) -> SshSettings:
    values: dict[str, object] = {
        "key_path": str(server.client_key),
        "known_hosts_path": str(server.known_hosts),
        "run_dir": str(tmp / "runs"),
        "connect_timeout_s": 5.0,
        "grace_s": 2.0,
    }
    values.update(changes)
    return SshSettings(**values)  # type: ignore[arg-type]


def planner_settings() -> PlannerSettings:
    policy = ProvisionerPolicy(
        readiness_timeout_s=20.0,
        poll_interval_s=0.2,
        call_timeout_s=30.0,
        retry=RetryPolicy(max_attempts=1, alternates=False),
    )
    return PlannerSettings(
        workers=4,
        claim_ttl_s=30.0,
        idle_poll_s=0.05,
        retention_s=3600.0,
        purge_interval_s=3600.0,
        max_log_lines=50,
        max_log_line_bytes=300,
        provisioners={"ssh": policy},
    )


def site_with(db: Database, hosts: Hosts) -> dict[str, str]:
    """A site of hosts with the given attributes, imported as a topology document; name -> uuid."""
    doc = Topology.model_validate(
        {
            "providers": [
                {
                    "name": "site-ssh",
                    "kind": "site",
                    "children": [
                        {"name": name, "kind": "host", "inventories": {"VCPU": 4}, "attributes": attrs}
                        for name, attrs in hosts.items()
                    ],
                }
            ]
        }
    )
    service = TopologyService(db)
    service.import_(doc)
    exported = service.export()
    return {str(h.name): str(h.uuid) for h in exported.providers[0].children}


def loopback_hosts(server: SshServer) -> Hosts:
    return {
        f"host-{i}": {"ssh_host": address, "ssh_port": str(server.port), "ssh_user": server.user}
        for i, address in enumerate(server.addresses)
    }


def processes_with(word: str) -> list[int]:
    """Pids of live processes with ``word`` as one of their arguments."""
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            args = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if word.encode() in args and state != "Z":
            found.append(int(entry))
    return found


@pytest.fixture
def reap() -> Iterator[list[str]]:
    """Markers of the processes a test starts on the hosts: whatever the test's outcome, none of them
    outlives it (the test's own checks run first)."""
    markers: list[str] = []
    yield markers
    for marker in markers:
        for pid in processes_with(marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def run_job(db: Database, ssh: SshProvisioner, lease: str, workload: Workload, until: list[str]) -> str:
    planner = make_planner(db, {"ssh": ssh}, planner_settings())
    job = planner.create(spec(lease, provisioner="ssh", workload=workload))

    async def scenario() -> None:
        pool = WorkerPool(planner)
        pool.start()
        try:
            await wait_state(planner, job.id, until, timeout=60)
        finally:
            await pool.stop()
            await ssh.close()

    run(scenario(), timeout=90)
    return job.id


# -- host attributes: topology -> store -> allocation --------------------------------------------------------
def test_host_attributes_travel_from_the_topology_to_the_allocation(db: Database) -> None:
    hosts = {"host-a": {"ssh_host": "10.0.0.5", "ssh_port": "2222"}, "host-b": {}}
    uuids = site_with(db, hosts)
    lease = book(db, [uuids["host-a"], uuids["host-b"]])
    with UnitOfWork(db, readonly=True) as uow:
        found = load_lease(uow, lease, int(time.time()))
    assert found.allocation is not None
    assert found.allocation.hosts == ("host-a", "host-b")
    assert [(h, dict(found.allocation.host_attributes[h])) for h in found.allocation.hosts] == [
        ("host-a", {"ssh_host": "10.0.0.5", "ssh_port": "2222"}),
        ("host-b", {}),
    ]
    exported = TopologyService(db).export().providers[0].children
    assert [c.attributes for c in exported] == [{"ssh_host": "10.0.0.5", "ssh_port": "2222"}, None]
    # a re-import without them clears them
    site_with(db, {"host-a": {}, "host-b": {}})
    assert all(c.attributes is None for c in TopologyService(db).export().providers[0].children)


def test_attribute_names_and_values_are_checked() -> None:
    def doc(attrs: object) -> dict[str, object]:
        return {"providers": [{"name": "s", "kind": "site", "attributes": attrs}]}

    for bad in ({"SSH-HOST": "x"}, {"ssh_port": 22}, {"ssh_host": "x" * 2000}):
        with pytest.raises(ValidationError):
            Topology.model_validate(doc(bad))
    assert Topology.model_validate(doc({"ssh_host": "h"})).providers[0].attributes == {"ssh_host": "h"}


def test_without_sshd_the_tests_skip_except_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ssh_server, "find_sshd", lambda: None)
    monkeypatch.setattr(ssh_server, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        ssh_server.require_sshd()
    monkeypatch.setattr(ssh_server, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="required when CI=true"):
        ssh_server.require_sshd()


# -- configuration and bad input --------------------------------------------------------------------------
def test_key_and_known_hosts_are_required(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLOTBROKER_SSH_KEY", raising=False)
    monkeypatch.delenv("SLOTBROKER_SSH_KNOWN_HOSTS", raising=False)
    with pytest.raises(ValueError, match="SLOTBROKER_SSH_KEY is not set"):
        make_provisioner(ProvisionerContext())
    key = tmp_path / "key"
    key.write_text("k")
    monkeypatch.setenv("SLOTBROKER_SSH_KEY", str(key))
    monkeypatch.setenv("SLOTBROKER_SSH_KNOWN_HOSTS", str(tmp_path / "missing"))
    with pytest.raises(ValueError, match=r"SLOTBROKER_SSH_KNOWN_HOSTS=.*not a readable file"):
        make_provisioner(ProvisionerContext())
    (tmp_path / "known").write_text("")
    monkeypatch.setenv("SLOTBROKER_SSH_KNOWN_HOSTS", str(tmp_path / "known"))
    made = load("ssh", ProvisionerContext(max_log_lines=7))  # the entry point
    assert isinstance(made, SshProvisioner)
    assert (made.settings.key_path, made.max_log_lines, made.min_role.value) == (str(key), 7, "operator")


def test_bad_environment_names_are_refused_when_the_job_is_created(sqlite: Database, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    ssh = SshProvisioner(SshSettings(str(tmp_path / "f"), str(tmp_path / "f")))
    planner = make_planner(sqlite, {"ssh": ssh}, planner_settings())
    lease = book(sqlite, [site_with(sqlite, {"h": {}})["h"]])
    workload = Workload(command=("true",), env={"BAD-NAME": "x", "SLOTBROKER_JOB_ID": "y", "OK": "a'b"})
    with pytest.raises(ValidationFailed) as caught:
        planner.create(spec(lease, provisioner="ssh", workload=workload))
    assert sorted(p.pointer for p in caught.value.errors) == [
        "/workload/env/BAD-NAME",
        "/workload/env/SLOTBROKER_JOB_ID",
    ]
    with pytest.raises(ValidationFailed, match="cannot run"):
        planner.create(spec(lease, provisioner="ssh", workload=Workload()))


def test_post_jobs_refuses_bad_environment_names_before_anything_is_written(
    sqlite: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "f").write_text("")
    monkeypatch.setenv("SLOTBROKER_PROVISIONERS", "simulated,ssh")
    monkeypatch.setenv("SLOTBROKER_SSH_KEY", str(tmp_path / "f"))
    monkeypatch.setenv("SLOTBROKER_SSH_KNOWN_HOSTS", str(tmp_path / "f"))
    settings = Settings(
        database_url=sqlite.url, migrate_on_start=False, event_loop_interval_s=0, planner_workers=0
    )
    site_with(sqlite, {"h": {"ssh_host": "127.0.0.2"}})
    secret = TokenService(sqlite).create(project="science", role=Role.OPERATOR, name="op")
    now = datetime.now(UTC)
    request = {
        "components": [{"name": "c", "resources": {"VCPU": 1}}],
        "earliest_start": now.isoformat(),
        "latest_end": (now + timedelta(hours=6)).isoformat(),
        "duration": "PT1H",
    }
    body = {
        "provisioner": "ssh",
        "workload": {"command": ["true"], "env": {"BAD NAME": "x"}},
        "offer_set": {"request": request, "strategies": ["earliest"], "max_offers": 2},
    }

    def written() -> list[int]:
        with sqlite.engine.connect() as conn:
            return [int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()) for t in WRITES]

    before = written()
    with TestClient(create_app(settings, db=sqlite)) as client:
        r = client.post("/v1/jobs", json=body, headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 422, r.text
    assert [e["pointer"] for e in r.json()["errors"]] == ["/workload/env/BAD NAME"]
    assert written() == before


# -- against sshd ------------------------------------------------------------------------------------------


@pytest.mark.ssh
def test_a_two_host_lease_runs_the_job_on_both_hosts(
    sshd: SshServer, sqlite: Database, tmp_path: Path
) -> None:
    uuids = site_with(sqlite, loopback_hosts(sshd))
    lease = book(sqlite, list(uuids.values()))
    ssh = SshProvisioner(settings_for(sshd, tmp_path), max_log_lines=50, max_log_line_bytes=300)
    hostile = 'it\'s $(touch pwned) `touch pwned2`; "quoted" $HOME'
    script = (
        'set -- $SSH_CONNECTION; echo "ran on $3 as $SLOTBROKER_HOST"; echo "$GREETING"; '
        "printf 'not utf-8: \\377\\n'; printf '%0500d\\n' 0"  # and a line longer than the 300-byte bound
    )
    workload = Workload(command=("sh", "-c", script), env={"GREETING": hostile})
    job_id = run_job(sqlite, ssh, lease, workload, ["succeeded", "failed"])
    planner = make_planner(sqlite, {"ssh": ssh}, planner_settings())
    job = planner.get(job_id)
    lines = [ln.line for ln in planner.logs(job_id) if ln.stream == "run"]
    assert job.state == "succeeded", (job, lines, sshd.log.read_text()[-2000:])
    assert (
        sorted(lines)
        == sorted(
            [
                "[host-0] ran on 127.0.0.2 as host-0",
                "[host-1] ran on 127.0.0.3 as host-1",
                f"[host-0] {hostile}",
                f"[host-1] {hostile}",
                "[host-0] not utf-8: \ufffd",
                "[host-1] not utf-8: \ufffd",
                ("[host-0] " + "0" * 300)[:300],  # the planner keeps 300 bytes of a line, prefix included
                ("[host-1] " + "0" * 300)[:300],
            ]
        )
    )
    assert list((tmp_path / "runs").iterdir()) == []  # released: the run directories are gone


@pytest.mark.ssh
def test_the_job_fails_when_one_host_fails(sshd: SshServer, sqlite: Database, tmp_path: Path) -> None:
    lease = book(sqlite, list(site_with(sqlite, loopback_hosts(sshd)).values()))
    ssh = SshProvisioner(settings_for(sshd, tmp_path))
    script = 'if [ "$SLOTBROKER_RUN_INDEX" = 1 ]; then echo broken; exit 4; fi; echo fine'
    job_id = run_job(sqlite, ssh, lease, Workload(command=("sh", "-c", script)), ["succeeded", "failed"])
    job = make_planner(sqlite, {"ssh": ssh}, planner_settings()).get(job_id)
    assert (job.state, job.exit_code, job.error) == ("failed", 4, "exit code 4 on host-1"), job


@pytest.mark.ssh
def test_cancel_kills_the_remote_processes(
    sshd: SshServer, sqlite: Database, tmp_path: Path, reap: list[str]
) -> None:
    lease = book(sqlite, list(site_with(sqlite, loopback_hosts(sshd)).values()))
    ssh = SshProvisioner(settings_for(sshd, tmp_path))
    planner = make_planner(sqlite, {"ssh": ssh}, planner_settings())
    marker = f"1000.{uuid.uuid4().int % 10**12:012d}"  # a sleep argument no other process has
    reap.append(marker)
    workload = Workload(command=("sh", "-c", 'echo started; sleep "$1"; echo never', "sh", marker))
    job = planner.create(spec(lease, provisioner="ssh", workload=workload))

    async def scenario() -> None:
        pool = WorkerPool(planner)
        pool.start()
        try:
            await wait_state(planner, job.id, ["running"], timeout=60)
            deadline = asyncio.get_running_loop().time() + 20
            while len(processes_with(marker)) < 6 and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.1)
            # on each host: the run's wrapper, the workload's sh, its sleep (all with the marker as argument)
            assert len(processes_with(marker)) == 6
            await asyncio.to_thread(planner.cancel, job.id)
            await wait_state(planner, job.id, ["canceled"], timeout=60)
        finally:
            await pool.stop()
            await ssh.close()

    run(scenario(), timeout=120)
    assert processes_with(marker) == []
    assert list((tmp_path / "runs").iterdir()) == []


@pytest.mark.ssh
def test_cancelling_the_lease_stops_the_job_on_every_host(
    sshd: SshServer, sqlite: Database, tmp_path: Path, reap: list[str]
) -> None:
    lease = book(sqlite, list(site_with(sqlite, loopback_hosts(sshd)).values()))
    ssh = SshProvisioner(settings_for(sshd, tmp_path))
    planner = make_planner(sqlite, {"ssh": ssh}, planner_settings())
    leases = LeaseService(sqlite, ClaimService(sqlite), QuotaService(sqlite))
    planner.register(leases)
    marker = f"1000.{uuid.uuid4().int % 10**12:012d}"
    reap.append(marker)
    job = planner.create(spec(lease, provisioner="ssh", workload=Workload(command=("sleep", marker))))

    async def scenario() -> None:
        pool = WorkerPool(planner)
        pool.start()
        try:
            await wait_state(planner, job.id, ["running"], timeout=60)
            await wait_until(lambda: len(processes_with(marker)) == 4, timeout=20, what="the runs")
            await asyncio.to_thread(leases.cancel, lease, project=None)
            await wait_state(planner, job.id, ["expired"], timeout=60)
        finally:
            await pool.stop()
            await ssh.close()

    run(scenario(), timeout=120)
    assert processes_with(marker) == []
    assert list((tmp_path / "runs").iterdir()) == []


@pytest.mark.ssh
def test_a_broker_restart_in_the_middle_finds_the_runs_again(
    sshd: SshServer, sqlite: Database, tmp_path: Path, reap: list[str]
) -> None:
    lease = book(sqlite, list(site_with(sqlite, loopback_hosts(sshd)).values()))
    flag = str(tmp_path / f"go-{uuid.uuid4().hex}")  # the runs wait for it; also their marker argument
    reap.append(flag)
    script = 'echo started; while [ ! -f "$1" ]; do sleep 0.1; done; echo finished'
    workload = Workload(command=("sh", "-c", script, "sh", flag))
    first = SshProvisioner(settings_for(sshd, tmp_path))
    before = make_planner(sqlite, {"ssh": first}, planner_settings())
    job = before.create(spec(lease, provisioner="ssh", workload=workload))

    async def scenario() -> None:
        pool = WorkerPool(before)
        pool.start()
        await wait_state(before, job.id, ["running"], timeout=60)
        await wait_until(lambda: len(processes_with(flag)) == 4, timeout=20, what="the runs")
        await pool.stop()
        await first.close()  # the broker process is gone; its runs go on on the hosts
        second = SshProvisioner(settings_for(sshd, tmp_path))  # a new process knows nothing
        after = make_planner(sqlite, {"ssh": second}, planner_settings())
        pool = WorkerPool(after, exclusive=True)
        pool.start()
        try:
            await asyncio.sleep(1.0)  # reconciled, polling the runs it found again
            assert after.get(job.id).state == "running"
            assert len(processes_with(flag)) == 4  # no second copy was started
            Path(flag).touch()
            await wait_state(after, job.id, ["succeeded", "failed"], timeout=60)
        finally:
            await pool.stop()
            await second.close()

    run(scenario(), timeout=150)
    done = before.get(job.id)
    lines = sorted(ln.line for ln in before.logs(job.id) if ln.stream == "run")
    assert done.state == "succeeded", (done, lines)
    assert lines == sorted(f"[host-{i}] {word}" for i in (0, 1) for word in ("started", "finished"))
    assert any("reconciled after restart" in ln.line for ln in before.logs(job.id))
    assert list((tmp_path / "runs").iterdir()) == []


@pytest.mark.ssh
def test_a_run_that_vanishes_fails_the_job(
    sshd: SshServer, sqlite: Database, tmp_path: Path, reap: list[str]
) -> None:
    lease = book(sqlite, list(site_with(sqlite, loopback_hosts(sshd)).values()))
    ssh = SshProvisioner(settings_for(sshd, tmp_path))
    planner = make_planner(sqlite, {"ssh": ssh}, planner_settings())
    marker = f"1000.{uuid.uuid4().int % 10**12:012d}"
    reap.append(marker)
    job = planner.create(spec(lease, provisioner="ssh", workload=Workload(command=("sleep", marker))))

    async def scenario() -> None:
        pool = WorkerPool(planner)
        pool.start()
        try:
            await wait_state(planner, job.id, ["running"], timeout=60)
            await wait_until(lambda: len(processes_with(marker)) == 4, timeout=20, what="the runs")
            for pid in processes_with(marker):  # killed behind the broker's back: no exit code recorded
                os.kill(pid, signal.SIGKILL)
            await wait_state(planner, job.id, ["failed"], timeout=60)
        finally:
            await pool.stop()
            await ssh.close()

    run(scenario(), timeout=120)
    error = planner.get(job.id).error or ""
    assert "is gone" in error, error
    assert "no exit code" in error, error


@pytest.mark.ssh
def test_a_retried_submit_starts_no_second_copy(
    sshd: SshServer, sqlite: Database, tmp_path: Path, reap: list[str]
) -> None:
    lease = book(sqlite, list(site_with(sqlite, loopback_hosts(sshd)).values()))
    with UnitOfWork(sqlite, readonly=True) as uow:
        allocation = load_lease(uow, lease, int(time.time())).allocation
    assert allocation is not None
    marker = f"1000.{uuid.uuid4().int % 10**12:012d}"
    reap.append(marker)
    workload = Workload(command=("sleep", marker))

    async def scenario() -> None:
        first, second = (SshProvisioner(settings_for(sshd, tmp_path)) for _ in range(2))
        try:
            first_host = allocation.hosts[0]
            target = target_of(first_host, allocation.host_attributes[first_host], None)
            opened = await asyncio.gather(*(first._connect(target) for _ in range(5)))
            assert len({id(c) for c in opened}) == 1  # jobs on one host at once share one connection
            provision = Provision(await first.provision(allocation, "job-1#1"), allocation)
            await first.submit(workload, provision, "job-1")
            # another broker process (a worker that took over the claim) repeats the call with the same key
            again = Provision(await second.provision(allocation, "job-1#1"), allocation)
            assert await second.submit(workload, again, "job-1") == "job-1"
            assert len(processes_with(marker)) == 4  # on each host a wrapper and one sleep, not two
            assert (await second.run_status("job-1")).phase.value == "running"
            await second.cancel("job-1")
            status = await second.run_status("job-1")
            assert status.phase.value == "canceled"
            await second.cancel("job-1")  # idempotent
            await second.release(again.provision_id)
            await second.release(again.provision_id)
        finally:
            await first.close()
            await second.close()

    run(scenario(), timeout=60)
    assert processes_with(marker) == []


@pytest.mark.ssh
def test_a_wrong_host_key_is_refused(sshd: SshServer, sqlite: Database, tmp_path: Path) -> None:
    lease = book(sqlite, list(site_with(sqlite, loopback_hosts(sshd)).values()))
    ssh = SshProvisioner(settings_for(sshd, tmp_path, known_hosts_path=str(sshd.wrong_known_hosts)))
    marker = f"ran-{uuid.uuid4().hex}"
    job_id = run_job(sqlite, ssh, lease, Workload(command=("touch", marker)), ["failed", "succeeded"])
    job = make_planner(sqlite, {"ssh": ssh}, planner_settings()).get(job_id)
    assert job.state == "failed"
    assert "host key not verified" in (job.error or ""), job.error
    assert not (tmp_path / "runs").exists()  # nothing ran anywhere


@pytest.mark.ssh
def test_a_host_that_does_not_answer_fails_the_job(sshd: SshServer, sqlite: Database, tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts TCP connections (the kernel does) but never says a word
        silent.bind(("127.0.0.4", 0))
        silent.listen(8)
        hosts = loopback_hosts(sshd)
        hosts["host-mute"] = {"ssh_host": "127.0.0.4", "ssh_port": str(silent.getsockname()[1])}
        lease = book(sqlite, list(site_with(sqlite, hosts).values()))
        settings = settings_for(sshd, tmp_path, connect_timeout_s=5.0, default_user=sshd.user)
        ssh = SshProvisioner(settings)
        job_id = run_job(sqlite, ssh, lease, Workload(command=("true",)), ["failed", "succeeded"])
    job = make_planner(sqlite, {"ssh": ssh}, planner_settings()).get(job_id)
    assert job.state == "failed"
    assert "host-mute" in (job.error or ""), job.error
    assert "no answer" in (job.error or ""), job.error
