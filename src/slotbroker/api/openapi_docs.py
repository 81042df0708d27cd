"""What the interactive docs (``/docs``, ``/redoc``) show beyond the generated document: the tags in the
order users come for them (find a slot, take an offer, hold a lease, run a job; the inventory after),
and a worked example on each main operation. The pages' JavaScript and CSS are served from this server
(``fastapi-offline``'s packaged Swagger UI and ReDoc), so the docs work without internet."""

from __future__ import annotations

from typing import Any

TAGS: list[dict[str, str]] = [
    {"name": "find-slot", "description": "When and where does my request fit? Windows, not bookings."},
    {"name": "offers", "description": "Windows held for a few minutes; accept one to get a lease."},
    {"name": "leases", "description": "Your bookings: read, extend, rename, cancel; iCalendar feeds."},
    {"name": "jobs", "description": "Run work inside a lease (or as soon as possible)."},
    {"name": "sites", "description": "What each site has and what is free now."},
    {"name": "claims", "description": "Book explicit items or a find-slot window by id, in one call."},
    {"name": "allocation-candidates", "description": "Placement-style candidates for one instant."},
    {"name": "calendar", "description": "Free capacity over time."},
    {"name": "providers", "description": "The inventory: regions, sites, hosts and devices."},
    {"name": "topology", "description": "The whole inventory as one document."},
    {"name": "links", "description": "Links between sites (bandwidth over time)."},
    {"name": "facility ports", "description": "Ports to outside networks (VLANs, bandwidth)."},
    {"name": "resource classes", "description": "What can be counted and booked."},
    {"name": "traits", "description": "Qualitative properties of providers."},
    {"name": "aggregates", "description": "Named groups of providers."},
    {"name": "quotas", "description": "Per-project limits (admins)."},
    {"name": "FABRIC compatibility", "description": "FABRIC's calendar API."},
    {"name": "ivoa", "description": "IVOA ExecutionBroker (Calycopis) compatibility."},
    {"name": "health", "description": "Liveness, readiness and metrics."},
]

REQUEST = {
    "components": [
        {"name": "gpu", "resources": {"VCPU": 8, "MEMORY_MB": 32768, "GPU_A30": 1}},
        {"name": "workers", "count": 2, "resources": {"VCPU": 16, "MEMORY_MB": 65536}},
    ],
    "earliest_start": "2030-01-06T08:00:00Z",
    "latest_end": "2030-01-13T08:00:00Z",
    "duration": "PT8H",
}

# (method, path) -> {example name: (summary, request body)}
EXAMPLES: dict[tuple[str, str], dict[str, tuple[str, Any]]] = {
    ("post", "/v1/find-slot"): {
        "two components": ("A GPU host and two workers for 8 hours within a week", REQUEST),
    },
    ("post", "/v1/offer-sets"): {
        "named set": (
            "Up to three offers for the same request, named for later",
            {"request": REQUEST, "max_offers": 3, "name": "exp-7"},
        ),
    },
    ("post", "/v1/leases"): {
        "explicit items": (
            "Book 8 VCPU on one host for a day",
            {
                "name": "gpu-run",
                "start": "2030-01-06T08:00:00Z",
                "end": "2030-01-07T08:00:00Z",
                "items": [
                    {
                        "provider_uuid": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
                        "resource_class": "VCPU",
                        "amount": 8,
                    }
                ],
            },
        ),
    },
    ("patch", "/v1/leases/{lease_id}"): {
        "extend": ("Extend to a new end", {"generation": 3, "end": "2030-01-07T20:00:00Z"}),
        "rename": ("Rename (any status)", {"generation": 3, "name": "gpu-run-2"}),
    },
    ("post", "/v1/jobs"): {
        "in a lease": (
            "Run a command in a lease you hold",
            {
                "lease_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
                "provisioner": "local",
                "name": "train",
                "workload": {"command": ["python", "train.py"]},
            },
        ),
        "as soon as possible": (
            "Find a slot, take the first offer that still holds, run there",
            {"offer_set": {"request": REQUEST}, "provisioner": "local", "workload": {"command": ["true"]}},
        ),
    },
}


def decorate(doc: dict[str, Any]) -> None:
    """Add the ordered tags and the examples to a generated OpenAPI document (in place)."""
    used = {t for path in doc.get("paths", {}).values() for op in path.values() for t in op.get("tags", [])}
    doc["tags"] = [t for t in TAGS if t["name"] in used] + [
        {"name": name} for name in sorted(used - {t["name"] for t in TAGS})
    ]
    for (method, path), examples in EXAMPLES.items():
        op = doc.get("paths", {}).get(path, {}).get(method)
        if op is None:
            continue
        for content in op.get("requestBody", {}).get("content", {}).values():
            content["examples"] = {
                name: {"summary": summary, "value": value} for name, (summary, value) in examples.items()
            }
