"""Moving a PENDING lease with ``allow_host_swap`` (``alternates.claim_for_lease_swapping``): a conflict
that also points at a link cannot be fixed by another host, so the move stops at the first refusal
instead of walking the stand-in hosts (each one a claim attempt that fails the same way on the link).
SQLite and PostgreSQL through the ``db`` fixture."""

from __future__ import annotations

import time
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

import pytest

from planner_support import audit_clean, book, lease_rows, make_site
from slotbroker.domain.claims import ClaimItem, ConsumerStatus
from slotbroker.domain.errors import CapacityConflict
from slotbroker.services.booking import alternates
from slotbroker.services.booking.claims import ClaimService
from slotbroker.services.booking.leases import LeaseService
from slotbroker.services.booking.quotas import QuotaService
from slotbroker.services.inventory.network import NetworkService
from slotbroker.store.db import Database
from slotbroker.store.repositories.leases import HostRef, LeaseRepository
from slotbroker.wire import providers as cmd
from slotbroker.wire.leases import UpdateLease

GBPS = "BANDWIDTH_GBPS"


def at(epoch_s: int) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


class Counted:
    """Counts the claim attempts and the stand-in look-ups a lease move makes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.claims = 0
        self.lookups = 0
        claim, lookup = alternates.claim_for_lease, LeaseRepository.alternate_hosts

        def counted_claim(*args: Any, **kwargs: Any) -> None:
            self.claims += 1
            claim(*args, **kwargs)

        def counted_lookup(
            repo: LeaseRepository, host: str, classes: Collection[str], exclude: Collection[str]
        ) -> list[HostRef]:
            self.lookups += 1
            return lookup(repo, host, classes, exclude)

        monkeypatch.setattr(alternates, "claim_for_lease", counted_claim)
        monkeypatch.setattr(LeaseRepository, "alternate_hosts", counted_lookup)


def link_site(db: Database) -> tuple[dict[str, str], str]:
    """site-1 (host-a, host-b, host-c; 4 VCPU each) linked to site-2 by a 10 Gbps link."""
    hosts = make_site(db)
    make_site(db, hosts=("host-x",), name="site-2")
    link = NetworkService(db).create_link(
        cmd.CreateLink(name="l12", endpoints=("site-1", "site-2"), bandwidth_gbps=10)
    )
    return hosts, str(link.uuid)


def move(leases: LeaseService, lease: str, start: int, end: int, *, swap: bool) -> CapacityConflict:
    view = leases.get(lease, project=None)
    body = UpdateLease(generation=view.generation, start=at(start), end=at(end), allow_host_swap=swap)
    with pytest.raises(CapacityConflict) as refused:
        leases.update(lease, body, project=None)
    return refused.value


def test_a_link_conflict_ends_the_move_without_trying_stand_in_hosts(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """host-a and the link are both full in the new window (host-b, host-c are free): the refusal is the
    one a move without swapping gives, after one claim attempt and no stand-in look-up."""
    hosts, link = link_site(db)
    now = int(time.time())
    lease = book(
        db, [hosts["host-a"]], status=ConsumerStatus.PENDING, start_s=now + 1000, end_s=now + 2000,
        extra=[ClaimItem(link, GBPS, 5)],
    )  # fmt: skip
    book(
        db, [hosts["host-a"]], vcpu=4, status=ConsumerStatus.PENDING, start_s=now + 5000, end_s=now + 6000,
        extra=[ClaimItem(link, GBPS, 10)], project="beta",
    )  # fmt: skip
    leases = LeaseService(db, ClaimService(db), QuotaService(db))
    before = lease_rows(db, lease)
    plain = move(leases, lease, now + 5000, now + 6000, swap=False)
    assert {e.pointer.split("/")[2] for e in plain.errors} == {"0", "1"}  # the host and the link, both

    counted = Counted(monkeypatch)
    swapping = move(leases, lease, now + 5000, now + 6000, swap=True)

    assert (swapping.code, swapping.errors, str(swapping)) == (plain.code, plain.errors, str(plain))
    assert (counted.claims, counted.lookups) == (1, 0)
    assert lease_rows(db, lease) == before
    audit_clean(db)


def test_a_host_only_conflict_still_swaps(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same move with room on the link: host-a gives way to host-b (one look-up, two claims)."""
    hosts, link = link_site(db)
    now = int(time.time())
    lease = book(
        db, [hosts["host-a"]], status=ConsumerStatus.PENDING, start_s=now + 1000, end_s=now + 2000,
        extra=[ClaimItem(link, GBPS, 5)],
    )  # fmt: skip
    book(db, [hosts["host-a"]], vcpu=4, status=ConsumerStatus.PENDING, start_s=now + 5000, end_s=now + 6000)
    leases = LeaseService(db, ClaimService(db), QuotaService(db))
    counted = Counted(monkeypatch)
    view = leases.get(lease, project=None)
    body = UpdateLease(
        generation=view.generation, start=at(now + 5000), end=at(now + 6000), allow_host_swap=True
    )

    leases.update(lease, body, project=None)

    assert (counted.claims, counted.lookups) == (2, 1)
    assert sorted(r[0] for r in lease_rows(db, lease)) == ["host-b", "l12"]
    audit_clean(db)
