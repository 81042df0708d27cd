"""A typed Python client for the slotbroker HTTP API (sync and async), on httpx.

>>> from slotbroker.client import Client
>>> with Client("http://localhost:8000", token="sb_...") as api:  # doctest: +SKIP
...     for provider in api.iter_providers(kind=["site"]):
...         print(provider.name, provider.generation)

See docs/client.md for errors and retry semantics.
"""

from slotbroker.client.clients import AsyncClient, Client
from slotbroker.client.errors import (
    AllocationRequestClaimedError,
    AllocationRequestExpiredError,
    AllocationRequestNotFoundError,
    AmbiguousError,
    AuthenticationError,
    CapacityConflictError,
    ConcurrentUpdateError,
    ConflictError,
    FieldProblem,
    GoneError,
    InvalidStateError,
    JobsRunningError,
    LeaseTooLongError,
    NotFoundError,
    OfferConflictError,
    OfferExpiredError,
    OfferNotOpenError,
    OutsideExtensionWindowError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitedError,
    SlotbrokerAPIError,
    UnavailableError,
    ValidationError,
)
from slotbroker.client.jobs_calls import SseEvent
from slotbroker.client.retry import RetryPolicy, parse_retry_after
from slotbroker.wire.calendar_feeds import CreatedFeed, CreateFeed, FeedView
from slotbroker.wire.claims import (
    CandidateAllocation,
    CandidateRequest,
    Candidates,
    ClaimedAllocation,
    ClaimView,
    HostSwap,
    ProviderSummary,
    ResourceUse,
)
from slotbroker.wire.health import Health, Ready
from slotbroker.wire.jobs import (
    CreateJob,
    JobEvent,
    JobList,
    JobLogs,
    JobOut,
    LogLineOut,
    WorkloadBody,
)
from slotbroker.wire.leases import (
    CreateLease,
    LeaseItemSpec,
    LeaseList,
    LeaseView,
    QuotaView,
    SetQuota,
    UpdateLease,
)
from slotbroker.wire.offers import (
    AcceptedLease,
    OfferSetRequest,
    OfferSetStatus,
    OfferSetView,
    OfferState,
    OfferView,
    Strategy,
)
from slotbroker.wire.sites import ClassSummary, SiteList, SiteSummary

__all__ = [
    "AcceptedLease",
    "AllocationRequestClaimedError",
    "AllocationRequestExpiredError",
    "AllocationRequestNotFoundError",
    "AmbiguousError",
    "AsyncClient",
    "AuthenticationError",
    "CandidateAllocation",
    "CandidateRequest",
    "Candidates",
    "CapacityConflictError",
    "ClaimView",
    "ClaimedAllocation",
    "ClassSummary",
    "Client",
    "ConcurrentUpdateError",
    "ConflictError",
    "CreateFeed",
    "CreateJob",
    "CreateLease",
    "CreatedFeed",
    "FeedView",
    "FieldProblem",
    "GoneError",
    "Health",
    "HostSwap",
    "InvalidStateError",
    "JobEvent",
    "JobList",
    "JobLogs",
    "JobOut",
    "JobsRunningError",
    "LeaseItemSpec",
    "LeaseList",
    "LeaseTooLongError",
    "LeaseView",
    "LogLineOut",
    "NotFoundError",
    "OfferConflictError",
    "OfferExpiredError",
    "OfferNotOpenError",
    "OfferSetRequest",
    "OfferSetStatus",
    "OfferSetView",
    "OfferState",
    "OfferView",
    "OutsideExtensionWindowError",
    "PermissionDeniedError",
    "ProviderSummary",
    "QuotaExceededError",
    "QuotaView",
    "RateLimitedError",
    "Ready",
    "ResourceUse",
    "RetryPolicy",
    "SetQuota",
    "SiteList",
    "SiteSummary",
    "SlotbrokerAPIError",
    "SseEvent",
    "Strategy",
    "UnavailableError",
    "UpdateLease",
    "ValidationError",
    "WorkloadBody",
    "parse_retry_after",
]
