"""Use cases, each one transaction (a unit of work): inventory, find-slot, booking (claims, offers,
leases, allocation requests, quotas), the planner, and the FABRIC and IVOA translations."""
