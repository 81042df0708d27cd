"""Importers turn published cluster descriptions into topology documents.

Why: find-slot and the calendar should be exercised on inventories that real operators run, not only on
hand-written toys. Each importer reads one public format and returns a ``Topology`` that
``validate_topology`` accepts; what a format does not say (GPU models, locations) is documented, not
invented.
"""

from slotbroker.importers.alibaba import parse_alibaba_nodes
from slotbroker.importers.swf_machines import parse_swf_machines

__all__ = ["parse_alibaba_nodes", "parse_swf_machines"]
