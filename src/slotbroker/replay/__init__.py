"""Trace replay: real workloads (SWF logs, the Alibaba GPU pod list) pushed through slotbroker's scheduling,
so a policy or a capacity change can be judged on work nobody here wrote (docs/replay.md).

``trace`` reads and filters a trace, ``profile`` is the capacity step function the fast path schedules on,
``policies`` the queue disciplines, ``simulate`` the simulated clock, ``hosts`` turns run intervals into
host bookings, ``audit`` re-checks those bookings independently, ``metrics`` and ``report`` summarise,
``service_path`` drives the real services built by ``bootstrap.build_services``.
"""
