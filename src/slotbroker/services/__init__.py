"""Use cases, each one transaction (a unit of work), grouped by capability: ``inventory/``,
``find_slot/``, ``booking/`` (claims, offers, leases, allocation requests, quotas), ``planner/``,
``access/`` (tokens) and the FABRIC and IVOA translations. ``retry.py`` is the one loop that reruns a
transaction that lost to a concurrent writer, for every capability."""
