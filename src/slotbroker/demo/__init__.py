"""Demo data: a FABRIC-like testbed topology and synthetic bookings on it.

Why: the API, the UI and the benchmarks need a realistic, reproducible inventory and calendar without a
database dump of a real testbed. Everything here is deterministic (bookings for a given seed).
"""

from slotbroker.demo.bookings import BookedAmount, Booking, synthetic_bookings
from slotbroker.demo.fabric import fabric_like_topology

__all__ = ["BookedAmount", "Booking", "fabric_like_topology", "synthetic_bookings"]
