"""The planner: jobs run inside leases by provisioners (docs/planner.md, docs/decisions/0012-planner.md).

Public API for the HTTP / CLI / procrastinate layers:

* ``Planner(db, settings=..., provisioners=...)``: ``create``, ``get``, ``list``, ``cancel``, ``logs``,
  ``purge``, ``register(lease_hooks)``, ``on_lease_event``, ``on_before_end``, ``run_job``; a job comes
  back as ``wire.jobs.JobOut`` (``views.job_out`` maps a stored job).
* ``WorkerPool(planner, workers=...)``: the embedded asyncio pool (``await pool.run()`` /
  ``pool.start()``; ``await pool.stop()``).
* ``steps.run_claimed`` / ``step_commit.commit``: the step handlers any worker (procrastinate) can call.
"""

from __future__ import annotations

from slotbroker.domain.jobs import JobSpec, JobState, Workload
from slotbroker.services.planner.service import Planner
from slotbroker.services.planner.settings import PlannerSettings, ProvisionerPolicy, RetryPolicy
from slotbroker.services.planner.views import job_out
from slotbroker.services.planner.worker import WorkerPool

__all__ = [
    "JobSpec",
    "JobState",
    "Planner",
    "PlannerSettings",
    "ProvisionerPolicy",
    "RetryPolicy",
    "WorkerPool",
    "Workload",
    "job_out",
]
