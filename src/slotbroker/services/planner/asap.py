"""A job "as soon as possible": offers for a request, the first that still holds accepted, the job created
in the new lease, and that lease cancelled again if the job is refused.

Three units of work and a compensation, not one transaction: the offers and the lease are the booking
service's, the job the planner's, and each commits on its own. What makes the sequence safe is its order
(the provisioner is admitted before anything is written) and the compensation (a lease made only for a
refused job does not keep its capacity).
"""

from __future__ import annotations

from slotbroker.domain.errors import CapacityConflict, FieldError, NotFound, ValidationFailed
from slotbroker.domain.jobs import JobSpec, Workload
from slotbroker.services.access.tokens import Role
from slotbroker.services.booking.leases import LeaseService
from slotbroker.services.booking.offer_states import OfferConflict
from slotbroker.services.booking.offers import OfferService
from slotbroker.services.planner import Planner
from slotbroker.wire.jobs import JobOut
from slotbroker.wire.offers import OfferSetRequest, OfferSetStatus


class JobAsap:
    def __init__(self, planner: Planner, offers: OfferService, leases: LeaseService) -> None:
        self.planner = planner
        self.offers = offers
        self.leases = leases

    def create(
        self,
        offer_set: OfferSetRequest,
        *,
        provisioner: str,
        workload: Workload,
        priority: int = 0,
        job_id: str | None = None,
        name: str = "",
        project: str,
        visible: str | None,
        role: Role | None = None,
    ) -> JobOut:
        """The job, in a lease made for it from ``offer_set`` on behalf of ``project``. ``visible``: the
        project whose jobs the caller sees (None: every project), for the idempotent replay of
        ``job_id``, which makes no new offers. Pointers of invalid requests are into ``/offer_set``."""
        self.planner.admit(provisioner, role, workload)  # before offers, a lease or a job are written
        existing = self._existing(job_id, visible)
        if existing is not None:
            return existing
        lease_id = self._lease(offer_set, project)
        spec = JobSpec(lease_id, provisioner, workload, priority=priority, job_id=job_id, name=name)
        try:
            return self.planner.create(spec, project=visible, role=role)
        except Exception:  # do not keep a lease made for a job that was refused
            self.leases.cancel(lease_id, project=None)
            raise

    def _existing(self, job_id: str | None, visible: str | None) -> JobOut | None:
        if job_id is None:
            return None
        try:
            return self.planner.get(job_id, project=visible)
        except NotFound:
            return None

    def _lease(self, request: OfferSetRequest, project: str) -> str:
        """Make offers and accept the first that still holds; the new lease's id."""
        try:
            offers = self.offers.create(request, project=project)
        except ValidationFailed as exc:  # its pointers are into the offer set, which the body nests
            moved = [FieldError(f"/offer_set{f.pointer}", f.detail) for f in exc.errors]
            raise ValidationFailed(exc.detail, moved, exc.code) from None
        if offers.status == OfferSetStatus.EMPTY or not offers.offers:
            raise CapacityConflict(
                "nothing fits the request", [FieldError("/offer_set/request", "no window with capacity")]
            )
        last: OfferConflict | None = None
        for offer in sorted(offers.offers, key=lambda o: o.position):
            try:
                return self.offers.accept(offer.id, project=project).uuid
            except OfferConflict as exc:  # expired or taken meanwhile: the next one
                last = exc
        assert last is not None
        raise last


__all__ = ["JobAsap"]
