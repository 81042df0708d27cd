"""The session's Slurm test cluster (``tests/slurm_cluster.py``): started once, shared by the ``slurm``
tests, shut down at the end of the session. Each test names its own reservations and leases, so they
do not depend on each other's leftovers."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from slurm_cluster import SlurmCluster, require_slurm, start_cluster


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    require_slurm()
    cluster, root = start_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
