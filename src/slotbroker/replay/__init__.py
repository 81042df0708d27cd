"""Trace replay: real workloads (SWF logs, the Alibaba GPU pod list) pushed through slotbroker's scheduling,
so a policy or a capacity change can be judged on work nobody here wrote (docs/replay.md).

``trace`` reads and filters a trace, ``profile`` the pool the fast path schedules on (an engine StepTable),
``policies`` the queue disciplines, ``simulate`` the simulated clock, ``hosts`` turns run intervals into
host bookings, ``audit`` re-checks those bookings independently, ``metrics``, ``runner``, ``report`` and
``svg`` summarise and draw, ``published`` reads the baseline table, ``service_path`` drives the real
services built by ``bootstrap.build_services`` and ``compare`` puts it beside the fast path; ``alibaba``
places the GPU pods on their nodes.
"""
