"""Providers: anything with capacity, arranged in a tree (region -> site -> host -> device).

Links and facility ports are providers too (kinds ``link`` and ``facility_port``) so that bandwidth and
VLAN tags are allocated by the very same allocation rows and capacity check as cores and GPUs.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from slotbroker.domain.strict import Number

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@/+-]{0,199}$"
AGGREGATE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$"
NAME_RE = re.compile(NAME_PATTERN)

ProviderName = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
AggregateName = Annotated[str, StringConstraints(pattern=AGGREGATE_PATTERN)]
TraitName = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{0,254}$")]


class ProviderKind(StrEnum):
    REGION = "region"
    SITE = "site"
    HOST = "host"
    DEVICE = "device"
    LINK = "link"
    FACILITY_PORT = "facility_port"


TREE_KINDS: frozenset[ProviderKind] = frozenset(
    {ProviderKind.REGION, ProviderKind.SITE, ProviderKind.HOST, ProviderKind.DEVICE}
)

# Which kinds may hang under which parent kind (None: a root). A site may be a root when a testbed has
# no regions; a region may not sit under anything.
ALLOWED_PARENTS: dict[ProviderKind, frozenset[ProviderKind | None]] = {
    ProviderKind.REGION: frozenset({None}),
    ProviderKind.SITE: frozenset({None, ProviderKind.REGION}),
    ProviderKind.HOST: frozenset({ProviderKind.SITE}),
    ProviderKind.DEVICE: frozenset({ProviderKind.HOST}),
    ProviderKind.LINK: frozenset({None}),
    ProviderKind.FACILITY_PORT: frozenset({ProviderKind.SITE}),
}


def parent_problem(kind: ProviderKind, parent_kind: ProviderKind | None) -> str | None:
    allowed = ALLOWED_PARENTS[kind]
    if parent_kind in allowed:
        return None
    names = sorted("none" if k is None else k.value for k in allowed)
    got = "no parent" if parent_kind is None else f"a {parent_kind.value}"
    return f"a {kind.value} cannot have {got}; allowed parents: {', '.join(names)}"


class Location(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    lat: Number = Field(ge=-90, le=90, description="Latitude in degrees.")
    lon: Number = Field(ge=-180, le=180, description="Longitude in degrees.")


# Host attributes: operator-set facts a provisioner needs to reach a provider (an SSH address, a Slurm
# node name), kept with the inventory so they follow the host through imports, exports and lease moves.
# They are strings only and never come from a job request (docs/topology-format.md, "attributes").
ATTRIBUTE_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
MAX_ATTRIBUTES = 64
AttributeName = Annotated[str, StringConstraints(pattern=ATTRIBUTE_NAME_PATTERN)]
AttributeValue = Annotated[str, StringConstraints(max_length=1024)]
Attributes = dict[AttributeName, AttributeValue]
