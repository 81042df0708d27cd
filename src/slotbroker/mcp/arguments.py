"""The tools' input schemas, generated from the models the API itself validates.

A tool that sends a request body takes that body's fields as its arguments, so its input schema *is* the
wire (or domain) model's JSON schema and the API's problem pointers (``/duration``, ``/provisioner``) name
the tool's own arguments. The body goes to the API unvalidated here: the API is the one validator.

The few arguments a tool reads itself (ids, a new end time, paging) are the small models below; they
borrow their field definitions from the wire models where one exists, so a constraint is written once.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from slotbroker.domain.request import SlotRequest
from slotbroker.domain.strict import Int
from slotbroker.wire.jobs import CreateJob
from slotbroker.wire.leases import UpdateLease
from slotbroker.wire.offers import OfferSetRequest

Schema = dict[str, Any]


class Arguments(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OfferRef(Arguments):
    offer_id: str = Field(min_length=1, max_length=64, description="An offer's id (from create_offers).")


class LeaseRef(Arguments):
    lease_id: str = Field(min_length=1, max_length=64, description="A lease's id (from accept_offer).")


class CancelLease(LeaseRef):
    force: bool = Field(
        False,
        description="Cancel even while jobs run in the lease (they are stopped); without it such a lease "
        "is refused with jobs_running naming them.",
    )


class JobRef(Arguments):
    job_id: str = Field(min_length=1, max_length=64, description="A job's id (from create_job).")


class JobLogsArgs(JobRef):
    after: Int | None = Field(
        None, ge=0, description="Only lines after this id (next_after of the last call)."
    )
    limit: Int | None = Field(None, ge=1, le=1000, description="At most this many lines.")


class ExtendLease(LeaseRef):
    end: AwareDatetime = Field(description="The lease's new end: ISO 8601 with an offset.")
    generation: Int | None = Field(
        None,
        ge=0,
        description="The generation you read (get_lease); omitted: the lease is read first. A stale one "
        "is refused with concurrent_update.",
    )
    allow_host_swap: bool = Field(True, description=UpdateLease.model_fields["allow_host_swap"].description)


class CompactLease(LeaseRef):
    generation: Int | None = Field(
        None,
        ge=0,
        description="The generation you read (get_lease); omitted: the lease is read first. A stale one "
        "is refused with concurrent_update.",
    )
    allow_host_swap: bool = Field(True, description=UpdateLease.model_fields["allow_host_swap"].description)


class ListLeases(Arguments):
    status: list[str] | None = Field(None, description="PENDING, ACTIVE, ENDED, CANCELLED or ERROR.")
    project: str | None = Field(None, description="Admins only: another project's leases.")
    start: AwareDatetime | None = Field(None, description="Only leases overlapping [start, end).")
    end: AwareDatetime | None = None
    cursor: str | None = Field(None, description="The next_cursor of the previous page.")
    limit: Int | None = Field(None, ge=1, le=500)
    name: str | None = Field(
        None, min_length=1, max_length=200, description="Only leases whose name or id starts with this."
    )
    site: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="Only leases holding a host, port or link end at this site.",
    )


class NoArguments(Arguments):
    pass


def schema_of(model: type[BaseModel]) -> Schema:
    return model.model_json_schema()


def _slot_request_into(schema: Schema, properties: Schema) -> Schema:
    """``schema`` with ``properties["request"]`` (a free-form find-slot request) replaced by the
    SlotRequest schema, its definitions merged into ``schema``'s."""
    slot = SlotRequest.model_json_schema()
    schema.setdefault("$defs", {}).update(slot.pop("$defs", {}))
    described = properties["request"].get("description", "")
    properties["request"] = {**slot, "description": described}
    return schema


def find_slot_schema() -> Schema:
    return schema_of(SlotRequest)


def offer_set_schema() -> Schema:
    schema = copy.deepcopy(schema_of(OfferSetRequest))
    return _slot_request_into(schema, schema["properties"])


def create_job_schema() -> Schema:
    schema = copy.deepcopy(schema_of(CreateJob))
    return _slot_request_into(schema, schema["$defs"]["OfferSetRequest"]["properties"])
