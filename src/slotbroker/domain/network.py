"""Inter-site links and facility ports: the network part of an inventory.

A link joins two sites and has a bandwidth capacity (its ``BANDWIDTH_GBPS`` inventory) and a latency.
A facility port is a site's hand-off to an external network, with a VLAN tag range and a bandwidth.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from slotbroker.domain.providers import ProviderName
from slotbroker.domain.strict import Int, Number
from slotbroker.domain.vlans import VlanSet


class LinkSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: ProviderName
    endpoints: tuple[ProviderName, ProviderName] = Field(description="The two sites the link joins.")
    bandwidth_gbps: Int = Field(ge=1, le=1_000_000, description="Capacity in Gbit/s.")
    latency_ms: Number = Field(0.0, ge=0, le=100_000, description="One-way latency in milliseconds.")

    @field_validator("endpoints")
    @classmethod
    def _distinct_ends(cls, value: tuple[str, str]) -> tuple[str, str]:
        if value[0] == value[1]:
            raise ValueError("a link must join two different sites")
        return value


class FacilityPortSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: ProviderName
    site: ProviderName = Field(description="Name of the site the port belongs to.")
    device: str | None = Field(None, max_length=200, description="Switch or device name.")
    vlans: str = Field(description="VLAN tag ranges, e.g. '100-200,300-350'.", examples=["100-200,300-350"])
    bandwidth_gbps: Int = Field(ge=1, le=1_000_000, description="Capacity in Gbit/s.")

    @field_validator("vlans")
    @classmethod
    def _canonical_vlans(cls, value: str) -> str:
        return str(VlanSet.parse(value))


def facility_port_provider_name(site: str, port: str) -> str:
    """Port names are unique per site only; the provider behind it needs a globally unique name."""
    return f"{site}/{port}"
