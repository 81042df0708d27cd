"""OpenAPI links: which response of a create operation feeds the id of which other operation.

A client (or a stateful fuzzer) reading the document learns from them that the ``uuid`` a
``POST /v1/providers`` answers is the ``{uuid}`` of ``GET /v1/providers/{uuid}``, and so on for every
resource the API creates. Links are declared by method and path, not by operationId, because FastAPI
derives operationIds from function names; ``add_links`` resolves them and fails loudly when a route
named here no longer exists, so the table cannot drift silently from the routes.
"""

from __future__ import annotations

from typing import Any

Operation = tuple[str, str]  # (method, path)

_PROVIDER = "/v1/providers/{uuid}"
_PROVIDER_TARGETS: tuple[Operation, ...] = (
    ("get", _PROVIDER),
    ("put", _PROVIDER),
    ("delete", _PROVIDER),
    ("get", f"{_PROVIDER}/inventories"),
    ("put", f"{_PROVIDER}/inventories"),
    ("put", f"{_PROVIDER}/inventories/{{resource_class}}"),
    ("delete", f"{_PROVIDER}/inventories/{{resource_class}}"),
    ("get", f"{_PROVIDER}/traits"),
    ("put", f"{_PROVIDER}/traits"),
    ("get", f"{_PROVIDER}/aggregates"),
    ("put", f"{_PROVIDER}/aggregates"),
)
_LEASE = "/v1/leases/{lease_id}"
_LEASE_TARGETS: tuple[Operation, ...] = (
    ("get", _LEASE),
    ("patch", _LEASE),
    ("delete", _LEASE),
    ("post", f"{_LEASE}/cancel"),
    ("post", f"{_LEASE}/compact"),
    ("get", f"{_LEASE}.ics"),
)
_JOB = "/v1/jobs/{job_id}"
_JOB_TARGETS: tuple[Operation, ...] = (
    ("get", _JOB),
    ("post", f"{_JOB}/cancel"),
    ("get", f"{_JOB}/logs"),
    ("get", f"{_JOB}/events"),
)
_OFFER_TARGETS: tuple[Operation, ...] = (
    ("get", "/v1/offers/{offer_id}"),
    ("post", "/v1/offers/{offer_id}/accept"),
    ("post", "/v1/offers/{offer_id}/reject"),
)
_IVOA_SESSION_TARGETS: tuple[Operation, ...] = (
    ("get", "/ivoa/sessions/{uuid}"),
    ("post", "/ivoa/sessions/{uuid}"),
)
_QUOTA = "/v1/quotas/{project}/{resource_class}"
_QUOTA_PARAMS = {"project": "$response.body#/project", "resource_class": "$response.body#/resource_class"}


def _each(targets: tuple[Operation, ...], params: dict[str, str]) -> list[tuple[Operation, dict[str, str]]]:
    return [(target, params) for target in targets]


def _table() -> dict[tuple[str, str, str], list[tuple[Operation, dict[str, str]]]]:
    """(method, path, status) of a source response -> the operations its body feeds, with parameters."""
    uuid = {"uuid": "$response.body#/uuid"}
    ivoa_set = [(("get", "/ivoa/offersets/{uuid}"), {"uuid": "$response.body#/meta/uuid"})]
    ivoa_set += _each(_IVOA_SESSION_TARGETS, {"uuid": "$response.body#/offers/0/meta/uuid"})
    return {
        ("post", "/v1/providers", "201"): _each(_PROVIDER_TARGETS, uuid),
        ("post", "/v1/resource-classes", "201"): _each(
            (("get", "/v1/resource-classes/{name}"), ("delete", "/v1/resource-classes/{name}")),
            {"name": "$response.body#/name"},
        ),
        ("put", "/v1/traits/{name}", "201"): _each(
            (("get", "/v1/traits/{name}"), ("put", "/v1/traits/{name}"), ("delete", "/v1/traits/{name}")),
            {"name": "$response.body#/name"},
        ),
        ("post", "/v1/links", "201"): _each(
            (("get", "/v1/links/{uuid}"), ("put", "/v1/links/{uuid}"), ("delete", "/v1/links/{uuid}")), uuid
        ),
        ("post", "/v1/facility-ports", "201"): _each(
            (
                ("get", "/v1/facility-ports/{uuid}"),
                ("put", "/v1/facility-ports/{uuid}"),
                ("delete", "/v1/facility-ports/{uuid}"),
            ),
            uuid,
        ),
        ("post", "/v1/find-slot", "202"): [
            (("get", "/v1/find-slot/jobs/{job_id}"), {"job_id": "$response.body#/id"})
        ],
        ("post", "/v1/claims", "201"): [
            (("delete", "/v1/claims/{consumer_uuid}"), {"consumer_uuid": "$response.body#/uuid"})
        ],
        ("post", "/v1/offer-sets", "201"): [
            *_each(
                (
                    ("get", "/v1/offer-sets/{set_id}"),
                    ("patch", "/v1/offer-sets/{set_id}"),
                    ("post", "/v1/offer-sets/{set_id}/renew"),
                ),
                {"set_id": "$response.body#/id"},
            ),
            *_each(_OFFER_TARGETS, {"offer_id": "$response.body#/offers/0/id"}),
        ],
        ("post", "/v1/offers/{offer_id}/accept", "200"): _each(
            _LEASE_TARGETS, {"lease_id": "$response.body#/uuid"}
        ),
        ("post", "/v1/leases", "201"): _each(_LEASE_TARGETS, {"lease_id": "$response.body#/id"}),
        ("put", _QUOTA, "200"): [
            (("get", "/v1/quotas/{project}"), {"project": "$response.body#/project"}),
            (("get", _QUOTA), _QUOTA_PARAMS),
            (("put", _QUOTA), _QUOTA_PARAMS),
            (("delete", _QUOTA), _QUOTA_PARAMS),
        ],
        ("post", "/v1/jobs", "201"): _each(_JOB_TARGETS, {"job_id": "$response.body#/id"}),
        ("post", "/v1/calendar-feeds", "201"): [
            (("delete", "/v1/calendar-feeds/{feed_id}"), {"feed_id": "$response.body#/id"}),
            (("get", "/v1/ical/{secret}.ics"), {"secret": "$response.body#/secret"}),
        ],
        ("post", "/ivoa/requests", "200"): ivoa_set,
        ("post", "/ivoa/offersets", "200"): ivoa_set,
    }


# Allocation requests have no path of their own: their ids are claimed in a body.
_BODY_LINKS: dict[tuple[str, str, str], tuple[Operation, dict[str, str]]] = {
    ("post", "/v1/find-slot", "200"): (
        ("post", "/v1/claims"),
        {"allocation_request": "$response.body#/windows/0/allocation_request"},
    ),
    ("get", "/v1/allocation-candidates", "200"): (
        ("post", "/v1/claims"),
        {"allocation_request": "$response.body#/allocation_requests/0/id"},
    ),
}


def add_links(doc: dict[str, Any]) -> None:
    """Add the links of ``_table`` and ``_BODY_LINKS`` to the responses of ``doc`` (edited in place)."""
    paths = doc["paths"]

    def links_of(method: str, path: str, status: str) -> dict[str, Any]:
        links: dict[str, Any] = paths[path][method]["responses"][status].setdefault("links", {})
        return links

    for (method, path, status), targets in _table().items():
        links = links_of(method, path, status)
        for (t_method, t_path), parameters in targets:
            operation_id = paths[t_path][t_method]["operationId"]
            links[operation_id] = {"operationId": operation_id, "parameters": dict(parameters)}
    for (method, path, status), ((t_method, t_path), body) in _BODY_LINKS.items():
        operation_id = paths[t_path][t_method]["operationId"]
        links_of(method, path, status)[operation_id] = {
            "operationId": operation_id,
            "requestBody": dict(body),
        }
