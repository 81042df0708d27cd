"""The Calycopis v1.0 vocabulary: kind URIs (current and legacy), the fields each part may carry, and
the documented defaults (docs/ivoa.md, "Defaults"). Plain constants, so every other module reads one
definition."""

from __future__ import annotations

import re

# -- kinds ----------------------------------------------------------------------------------------------

CURRENT_BASE = "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/"
LEGACY_BASE = "https://www.purl.org/ivoa.net/EB/schema/v1.0/types/"
_CURRENT_RE = re.compile(re.escape(CURRENT_BASE) + r"([a-z]+)/([A-Za-z0-9-]+)\.yaml")
_LEGACY_RE = re.compile(re.escape(LEGACY_BASE) + r"([a-z]+)/([A-Za-z0-9-]+)-1\.0")

KINDS: dict[str, frozenset[str]] = {
    "executable": frozenset({"docker-container", "singularity-container", "jupyter-notebook"}),
    "compute": frozenset({"simple-compute-resource"}),
    "storage": frozenset({"simple-storage-resource"}),
    "data": frozenset(
        {
            "simple-data-resource",
            "S3-data-resource",
            "rucio-data-resource",
            "ivoa-data-resource",
            "skao-data-resource",
        }
    ),
    "volume": frozenset({"simple-volume-mount"}),
}


def kind_uri(group: str, name: str) -> str:
    return f"{CURRENT_BASE}{group}/{name}.yaml"


SESSION_KIND = kind_uri("session", "scheduled-execution-session")
OFFERSET_KIND = kind_uri("offerset", "execution-offerset")
MESSAGE_KIND = "urn:slotbroker:ivoa-message"
UPDATE_KINDS = frozenset(
    {
        "uri:enum-value-update",
        kind_uri("update", "enum-value-update"),
        f"{LEGACY_BASE}update/enum-value-update-1.0",
    }
)


def canonical_kind(value: str, group: str) -> str | None:
    """The current kind URI for ``value`` (current or legacy form) if it names a kind of ``group``."""
    for pattern in (_CURRENT_RE, _LEGACY_RE):
        m = pattern.fullmatch(value)
        if m and m.group(1) == group and m.group(2) in KINDS[group]:
            return kind_uri(group, m.group(2))
    return None


# -- the fields each part may carry ---------------------------------------------------------------------

COMPONENT_FIELDS = frozenset({"kind", "meta", "costs", "metrics", "phase", "schedule"})
META_FIELDS = frozenset({"uuid", "name", "url", "description", "created", "modified", "messages", "options"})
REQUEST_FIELDS = frozenset({"executable", "compute", "storage", "data", "schedule", "costs", "metrics"})
EXTRA_REQUEST_FIELDS = frozenset({"volumes", "meta"})  # examples' top-level volume list; offer-set name
EXECUTABLE_FIELDS = {
    "jupyter-notebook": frozenset({"location"}),
    "singularity-container": frozenset({"location"}),
    "docker-container": frozenset({"image", "privileged", "command", "entrypoint", "environment", "network"}),
}
DATA_FIELDS = {
    "simple-data-resource": frozenset({"location"}),
    "S3-data-resource": frozenset({"endpoint", "template", "bucket", "object"}),
    "ivoa-data-resource": frozenset({"ivoa"}),
    "rucio-data-resource": frozenset({"rucio"}),
    "skao-data-resource": frozenset({"ivoa", "skao"}),
}
COMPUTE_FIELDS = frozenset({"cores", "memory", "volumes"})
STORAGE_FIELDS = frozenset({"data", "size"})
VOLUME_FIELDS = frozenset({"path", "mode", "resource", "resources", "cardinality"})
MINMAX_FIELDS = frozenset({"min", "max"})
MEMORY_FIELDS = frozenset({"min", "max", "units"})
UPDATE_FIELDS = frozenset({"kind", "path", "value"})

# -- defaults (docs/ivoa.md, "Defaults") -----------------------------------------------------------------

DEFAULT_CORES = 1  # the prototype's default compute: 1 core, 1 GiB (example 002 offers 2x of it)
DEFAULT_MEMORY_GIB = 1
DEFAULT_DURATION_S = 2 * 3600  # PT2H (example 002: the prototype offers 2 x 2 h)
DEFAULT_START_WINDOW_S = 24 * 3600  # start between now and now + 24 h (the prototype's look-ahead)
DEFAULT_COMPUTE_NAME = "Default compute resource"
MAX_OFFERS = 4  # the examples' offer sets hold 4 offers
MAX_CORES = 1_000_000
MAX_MEMORY_MIB = 2**50
UNITS_MIB: dict[str, float] = {
    "kB": 1000 / 2**20,
    "kiB": 1 / 1024,
    "MB": 1000**2 / 2**20,
    "MiB": 1,
    "GB": 1000**3 / 2**20,
    "GiB": 1024,
    "TB": 1000**4 / 2**20,
    "TiB": 1024**2,
    "PB": 1000**5 / 2**20,
    "PiB": 1024**3,
}
COMPONENT = "compute"  # the find-slot component every IVOA request becomes
