"""ORM tables. Times of allocations are integer seconds since the Unix epoch (UTC).

Why integers: the calendar engine works on integer seconds, the overlap check in SQL is the same plain
comparison on SQLite and PostgreSQL, and no time-zone conversion can creep into a capacity check.
Audit timestamps (``created_at``) are ordinary time-zone-aware datetimes.

One module on purpose: Alembic's autogenerate and ``tests/store/test_store.py`` compare one metadata
with the migrations, and every table is a few lines; the Core handles live in ``tables.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that always reads back time-zone-aware UTC.

    SQLite has no time zones and hands back naive datetimes; they are UTC because we only write UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class ResourceClassRow(Base):
    __tablename__ = "resource_classes"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # standard | device | custom
    description: Mapped[str] = mapped_column(Text, default="")


class TraitRow(Base):
    __tablename__ = "traits"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    custom: Mapped[bool] = mapped_column(default=False)


class ProviderRow(Base):
    __tablename__ = "providers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("providers.id", ondelete="RESTRICT"), index=True)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    # Operator facts provisioners read (domain.providers.Attributes), e.g. ssh_host; None when unset.
    attributes: Mapped[dict[str, str] | None] = mapped_column(JSON)
    generation: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    inventories: Mapped[list[InventoryRow]] = relationship(
        back_populates="provider", cascade="all, delete-orphan", order_by="InventoryRow.resource_class"
    )
    traits: Mapped[list[ProviderTraitRow]] = relationship(
        cascade="all, delete-orphan", order_by="ProviderTraitRow.trait"
    )
    aggregates: Mapped[list[ProviderAggregateRow]] = relationship(
        cascade="all, delete-orphan", order_by="ProviderAggregateRow.aggregate"
    )


class InventoryRow(Base):
    __tablename__ = "inventories"
    __table_args__ = (
        CheckConstraint("total >= 1", name="total_positive"),
        CheckConstraint("reserved >= 0 AND reserved <= total", name="reserved_in_range"),
        CheckConstraint("min_unit >= 1 AND min_unit <= max_unit", name="units_ordered"),
        CheckConstraint("step_size >= 1", name="step_positive"),
        CheckConstraint("allocation_ratio > 0", name="ratio_positive"),
    )

    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True)
    resource_class: Mapped[str] = mapped_column(
        ForeignKey("resource_classes.name", ondelete="RESTRICT"), primary_key=True, index=True
    )
    total: Mapped[int] = mapped_column(BigInteger)
    reserved: Mapped[int] = mapped_column(BigInteger, default=0)
    min_unit: Mapped[int] = mapped_column(BigInteger, default=1)
    max_unit: Mapped[int] = mapped_column(BigInteger)
    step_size: Mapped[int] = mapped_column(BigInteger, default=1)
    allocation_ratio: Mapped[float] = mapped_column(Float, default=1.0)

    provider: Mapped[ProviderRow] = relationship(back_populates="inventories")


class ProviderTraitRow(Base):
    __tablename__ = "provider_traits"

    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True)
    trait: Mapped[str] = mapped_column(
        ForeignKey("traits.name", ondelete="RESTRICT"), primary_key=True, index=True
    )


class ProviderAggregateRow(Base):
    __tablename__ = "provider_aggregates"

    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True)
    aggregate: Mapped[str] = mapped_column(String(200), primary_key=True, index=True)


class LinkRow(Base):
    """Attributes of a ``link`` provider; its bandwidth is the provider's BANDWIDTH_GBPS inventory."""

    __tablename__ = "links"
    __table_args__ = (CheckConstraint("site_a_id <> site_b_id", name="distinct_ends"),)

    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True)
    site_a_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="RESTRICT"), index=True)
    site_b_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="RESTRICT"), index=True)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)

    provider: Mapped[ProviderRow] = relationship(foreign_keys=[provider_id])
    site_a: Mapped[ProviderRow] = relationship(foreign_keys=[site_a_id])
    site_b: Mapped[ProviderRow] = relationship(foreign_keys=[site_b_id])


class FacilityPortRow(Base):
    """Attributes of a ``facility_port`` provider (VLAN and BANDWIDTH_GBPS are its inventories)."""

    __tablename__ = "facility_ports"
    __table_args__ = (UniqueConstraint("site_id", "port_name"),)

    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="RESTRICT"), index=True)
    port_name: Mapped[str] = mapped_column(String(200))
    device: Mapped[str | None] = mapped_column(String(200))
    vlans: Mapped[str] = mapped_column(Text)

    provider: Mapped[ProviderRow] = relationship(foreign_keys=[provider_id])
    site: Mapped[ProviderRow] = relationship(foreign_keys=[site_id])


class ConsumerRow(Base):
    """Who owns allocations: an offer's ``hold`` (with an expiry) or a ``lease``."""

    __tablename__ = "consumers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)  # hold | lease
    name: Mapped[str] = mapped_column(String(200), default="")
    project: Mapped[str] = mapped_column(String(200), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    start_s: Mapped[int] = mapped_column(BigInteger)
    end_s: Mapped[int] = mapped_column(BigInteger)
    expires_s: Mapped[int | None] = mapped_column(BigInteger)
    generation: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # A lease's component -> host names, one per instance (JSON), as the accepted window placed them; NULL
    # for leases booked from explicit items.
    placement: Mapped[str | None] = mapped_column(Text)

    allocations: Mapped[list[AllocationRow]] = relationship(
        back_populates="consumer", cascade="all, delete-orphan"
    )


class AllocationRow(Base):
    """An amount of one class on one provider for the half-open interval [start_s, end_s)."""

    __tablename__ = "allocations"
    __table_args__ = (
        CheckConstraint("amount >= 1", name="amount_positive"),
        CheckConstraint("end_s > start_s", name="interval_nonempty"),
        Index("ix_allocations_usage", "provider_id", "resource_class", "start_s", "end_s"),
        Index("ix_allocations_vlan", "provider_id", "vlan_tag"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consumer_id: Mapped[int] = mapped_column(ForeignKey("consumers.id", ondelete="CASCADE"), index=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="RESTRICT"))
    resource_class: Mapped[str] = mapped_column(ForeignKey("resource_classes.name", ondelete="RESTRICT"))
    amount: Mapped[int] = mapped_column(BigInteger)
    start_s: Mapped[int] = mapped_column(BigInteger)
    end_s: Mapped[int] = mapped_column(BigInteger)
    vlan_tag: Mapped[int | None] = mapped_column(Integer)

    consumer: Mapped[ConsumerRow] = relationship(back_populates="allocations")


CALENDAR_SHARDS = 16


def calendar_shard(key: int) -> int:
    """The ``calendar_state`` row (1..CALENDAR_SHARDS) a writer with ``key`` bumps."""
    return key % CALENDAR_SHARDS + 1


class CalendarStateRow(Base):
    """The calendar generation, kept in CALENDAR_SHARDS rows whose SUM is the generation.

    Every committed capacity or allocation change bumps one row in its own transaction, so the sum moves
    exactly when such a change commits. One row would be correct too, but its lock would be held through
    every claim's commit and queue all claims behind each other; writers on different providers now bump
    different rows."""

    __tablename__ = "calendar_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger, default=0)


class ApiTokenRow(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    project: Mapped[str] = mapped_column(String(200), index=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class CalendarFeedRow(Base):
    """A read-only calendar feed of one project's leases: calendar apps send its secret in the URL, so it
    is a token of its own (it reads the feed and nothing else) that can be listed and revoked."""

    __tablename__ = "calendar_feeds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    project: Mapped[str] = mapped_column(String(200), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class FindSlotJobRow(Base):
    """A long find-slot query answered asynchronously; any replica can report it (results live here).

    ``runner_until_s`` is the running process's claim on the job: past it (the process died), a replica
    that reads the job takes it over and runs it again, at most ``MAX_RUNS`` times in all (a query that
    kills its process must not kill every replica in turn); ``runs`` counts them.
    """

    __tablename__ = "find_slot_jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project: Mapped[str] = mapped_column(String(200), index=True)
    status: Mapped[str] = mapped_column(String(16))  # pending | running | done | failed
    request: Mapped[str] = mapped_column(Text)
    result: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_s: Mapped[int] = mapped_column(BigInteger, index=True)
    runner_until_s: Mapped[int | None] = mapped_column(BigInteger)
    runs: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class BrokerSecretRow(Base):
    """A secret the replicas on one database share, made once (e.g. the key that signs allocation
    request ids, when ``SLOTBROKER_SECRET_KEY`` does not give one)."""

    __tablename__ = "broker_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class OfferSetRow(Base):
    """An IVOA-style offer set: the request and its offers; accepting one rejects the others."""

    __tablename__ = "offer_sets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    project: Mapped[str] = mapped_column(String(200), index=True)
    status: Mapped[str] = mapped_column(String(16))  # OPEN | ACCEPTED | REJECTED | EXPIRED | EMPTY
    request: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_s: Mapped[int] = mapped_column(BigInteger, index=True)
    generation: Mapped[int] = mapped_column(BigInteger, default=0)


class OfferRow(Base):
    """One offer; its capacity is held by ``consumer_id`` (a hold that becomes the lease on accept)."""

    __tablename__ = "offers"
    __table_args__ = (UniqueConstraint("offer_set_id", "position"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    offer_set_id: Mapped[str] = mapped_column(ForeignKey("offer_sets.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    strategy: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), index=True)  # OFFERED | ACCEPTED | REJECTED | EXPIRED
    consumer_id: Mapped[int | None] = mapped_column(
        ForeignKey("consumers.id", ondelete="SET NULL"), index=True
    )
    window: Mapped[str] = mapped_column(Text)  # the window as JSON (start, end, placement, routes, ports)
    expires_s: Mapped[int] = mapped_column(BigInteger)


class LeaseEventRow(Base):
    """A lease's scheduled events (start, before_end, end). Fired at most once: ``fired_at`` is set in
    the same transaction as the event's effect, and a unique (consumer, kind) makes duplicates impossible.
    """

    __tablename__ = "lease_events"
    __table_args__ = (
        UniqueConstraint("consumer_id", "kind"),
        Index("ix_lease_events_due", "fired_at", "due_s"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consumer_id: Mapped[int] = mapped_column(ForeignKey("consumers.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # start | before_end | end
    due_s: Mapped[int] = mapped_column(BigInteger)
    fired_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class ProjectQuotaRow(Base):
    """Per-project limits on one class: concurrent amount and/or resource-hours booked in the future."""

    __tablename__ = "project_quotas"

    project: Mapped[str] = mapped_column(String(200), primary_key=True)
    resource_class: Mapped[str] = mapped_column(String(255), primary_key=True)
    max_concurrent: Mapped[int | None] = mapped_column(BigInteger)
    max_resource_hours: Mapped[int | None] = mapped_column(BigInteger)


class JobRow(Base):
    """A job run inside a lease by a provisioner (docs/planner.md). Times are integer milliseconds since
    the Unix epoch (steps are scheduled below a second). The ``step`` column *is* the work queue: a state
    change and the enqueue of the next step are one UPDATE, so they commit together or not at all.

    ``claimed_by``/``claimed_until_ms`` lease a step to one worker; a crashed worker's claim runs out and
    the step is picked up again (every provisioner call is idempotent by the job id). ``version`` is bumped
    by every write so a worker whose claim was taken over cannot commit a stale result.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_due", "step", "due_ms"),
        Index("ix_jobs_provisioner_state", "provisioner", "state"),
        Index("ix_jobs_finished", "finished_ms"),
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    project: Mapped[str] = mapped_column(String(200), index=True)
    lease_uuid: Mapped[str] = mapped_column(String(36), index=True)
    provisioner: Mapped[str] = mapped_column(String(64))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    workload: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), index=True)
    step: Mapped[str | None] = mapped_column(String(16))
    due_ms: Mapped[int] = mapped_column(BigInteger)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_until_ms: Mapped[int | None] = mapped_column(BigInteger)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    expire_requested: Mapped[bool] = mapped_column(default=False)
    reason: Mapped[str | None] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    provision_id: Mapped[str | None] = mapped_column(String(200))
    provision_started_ms: Mapped[int | None] = mapped_column(BigInteger)
    released_attempt: Mapped[int] = mapped_column(Integer, default=0)
    releases: Mapped[int] = mapped_column(Integer, default=0)
    run_id: Mapped[str | None] = mapped_column(String(200))
    run_stopped: Mapped[bool] = mapped_column(default=False)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    updated_ms: Mapped[int] = mapped_column(BigInteger)
    finished_ms: Mapped[int | None] = mapped_column(BigInteger)
    # JSON list of the uuids of the hosts failed attempts ran on: a retry moves the lease off them and
    # never back (NULL: none yet).
    tried_hosts: Mapped[str | None] = mapped_column(Text)


class JobTransitionRow(Base):
    """One state change of a job, recorded once (a job enters each state at most once)."""

    __tablename__ = "job_transitions"
    __table_args__ = (UniqueConstraint("job_seq", "to_state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_seq: Mapped[int] = mapped_column(ForeignKey("jobs.seq", ondelete="CASCADE"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    at_ms: Mapped[int] = mapped_column(BigInteger)
    detail: Mapped[str] = mapped_column(Text, default="")


class JobLogRow(Base):
    """A line of a job's log: the planner's own notes (``planner``) and the run's output (``run``)."""

    __tablename__ = "job_logs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_seq: Mapped[int] = mapped_column(ForeignKey("jobs.seq", ondelete="CASCADE"), index=True)
    at_ms: Mapped[int] = mapped_column(BigInteger)
    stream: Mapped[str] = mapped_column(String(16))
    line: Mapped[str] = mapped_column(Text)


class IvoaOfferSetRow(Base):
    """What an IVOA client sent with an offer set (names, executable, storage, data, volumes), echoed in
    every session: the offer set itself lives in ``offer_sets``."""

    __tablename__ = "ivoa_offer_sets"

    offer_set_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project: Mapped[str] = mapped_column(String(200))
    created_s: Mapped[int] = mapped_column(Integer)
    document: Mapped[str] = mapped_column(Text)
