"""Find-slot use case: validate against the inventory, search the cached calendar index, cache answers,
and run long queries as jobs whose results any replica can report.

Requests are clamped to the present: a window cannot start in the past, and allocations that ended
before now are not loaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from slotbroker.domain.errors import FieldError, NotFound, SlotbrokerError, ValidationFailed
from slotbroker.domain.request import Component, LinkRequest, PortRequest, SlotRequest, parse_request
from slotbroker.engine import Bucket, CalendarView, calendar_view, find_slots
from slotbroker.services.find_slot.calendar_cache import CachedIndex, CalendarCache, Catalog
from slotbroker.services.find_slot.present import result_view
from slotbroker.store.calendar_changes import Holding
from slotbroker.store.db import Database
from slotbroker.store.models import FindSlotJobRow
from slotbroker.store.unit_of_work import UnitOfWork
from slotbroker.wire.find_slot import FindSlotJob, FindSlotResult

log = logging.getLogger("slotbroker.find_slot")

RUNNER_TTL_S = 120  # a runner's claim on a job: past it (its process died), a reader takes the job over
MAX_RUNS = 2  # runs of one job in all; then it is reported failed (worker_lost): it may be what kills them
# Called on each fresh answer (not on cache hits): gives its windows allocation-request ids.
WindowHook = Callable[[FindSlotResult, SlotRequest, CachedIndex, str], FindSlotResult]


@dataclass(frozen=True)
class FindSlotSettings:
    max_range_s: int = 90 * 86400
    async_cost: float = 200.0  # range days x (instances + links + ports) above which the answer is a job
    cache_ttl_s: float = 30.0
    cache_size: int = 256
    job_ttl_s: int = 3600
    job_workers: int = 2
    budget_ms: float | None = 2000.0  # per synchronous search; None: no limit (find-slot jobs have none)


def _deadline(budget_ms: float) -> Callable[[], bool]:
    """True once ``budget_ms`` of wall time have passed since this call."""
    end = time.monotonic() + budget_ms / 1000

    def out_of_time() -> bool:
        return time.monotonic() > end

    return out_of_time


def estimated_cost(req: SlotRequest) -> float:
    """Roughly proportional to the work of a search: the range in days times the things to place."""
    days = (req.latest_end_s - req.range_start_s) / 86400
    return days * (req.instances + len(req.links) + len(req.facility_ports))


# the models whose checks span several of their fields, by where they sit in a request
_CROSS_FIELD_MODELS: dict[str, type[BaseModel]] = {
    "": SlotRequest,
    "components": Component,
    "links": LinkRequest,
    "facility_ports": PortRequest,
}


def _point_at_field(error: FieldError) -> FieldError:
    """Checks that span several fields report at their object (the request, or one of its list items);
    point at the field their message names ("b: a link joins two different components")."""
    name = error.detail.partition(":")[0]
    parts = error.pointer.split("/")
    where = "" if error.pointer == "" else parts[1] if len(parts) == 3 and parts[2].isdigit() else None
    model = _CROSS_FIELD_MODELS.get(where) if where is not None else None
    if model is not None and name in model.model_fields:
        return FieldError(f"{error.pointer}/{name}", error.detail)
    return error


class FindSlotService:
    def __init__(self, db: Database, cache: CalendarCache, settings: FindSlotSettings | None = None) -> None:
        self.db = db
        self.calendar = cache
        self.settings = settings or FindSlotSettings()
        self._answers: OrderedDict[str, tuple[float, int, FindSlotResult]] = OrderedDict()
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self.window_hook: WindowHook | None = None

    # -- validation ----------------------------------------------------------------------------------------
    def parse(self, doc: Any, *, now_s: int | None = None) -> SlotRequest:
        """Validate ``doc`` fully: shape, classes, traits, and that named sites, hosts and ports exist.

        Names are checked against the catalog cached with the calendar index (catalog and topology
        changes bump the calendar generation), so validation costs no query of its own.
        """
        now = int(time.time()) if now_s is None else now_s
        return self._parse(doc, self.calendar.current(now).catalog, now)

    def _parse(self, doc: Any, catalog: Catalog, now: int) -> SlotRequest:
        try:
            req = parse_request(
                doc,
                max_range_s=self.settings.max_range_s,
                custom_classes=catalog.custom_classes,
                custom_traits=catalog.custom_traits,
                known_classes=catalog.custom_classes | catalog.stocked_classes,
            )
        except ValidationFailed as exc:
            raise ValidationFailed(exc.detail, [_point_at_field(f) for f in exc.errors]) from None
        problems: list[FieldError] = []
        for i, comp in enumerate(req.components):
            if comp.site is not None and comp.site not in catalog.sites:
                problems.append(FieldError(f"/components/{i}/site", f"unknown site {comp.site!r}"))
            if comp.host is not None and comp.host not in catalog.hosts:
                problems.append(FieldError(f"/components/{i}/host", f"unknown host {comp.host!r}"))
        for i, port in enumerate(req.facility_ports):
            if (port.site, port.port) not in catalog.ports:
                problems.append(
                    FieldError(
                        f"/facility_ports/{i}/port", f"no facility port {port.port!r} at site {port.site!r}"
                    )
                )
        if problems:
            raise ValidationFailed(f"the request names {len(problems)} unknown provider(s)", problems)
        if req.latest_start_s < now:
            raise ValidationFailed(
                "the requested range lies in the past",
                [FieldError("/latest_end", "no start at or after now fits the range")],
            )
        return req

    @staticmethod
    def clamp(doc: dict[str, Any], req: SlotRequest, now_s: int) -> dict[str, Any]:
        """The same request, starting no earlier than now (rounded up to the minute)."""
        if req.range_start_s >= now_s:
            return doc
        start = datetime.fromtimestamp(-(-now_s // 60) * 60, UTC)
        out = dict(doc)
        if out.get("start_within"):
            _, _, tail = str(out["start_within"]).partition("/")
            out["start_within"] = f"{start.isoformat()}/{tail}"
        else:
            out["earliest_start"] = start.isoformat()
        return out

    # -- synchronous search --------------------------------------------------------------------------------
    def find(
        self, doc: dict[str, Any], *, now_s: int | None = None, project: str = "", budget: bool = True
    ) -> FindSlotResult:
        """One search; ``budget`` False for find-slot jobs, which run to the end of the range."""
        now = int(time.time()) if now_s is None else now_s
        cached_index = self.calendar.current(now)
        req = self._parse(doc, cached_index.catalog, now)
        return self._clamped_search(doc, req, cached_index, now, project, budget=budget)

    def find_without(
        self, doc: dict[str, Any], holding: Holding, cached_index: CachedIndex, *, now_s: int
    ) -> tuple[SlotRequest, FindSlotResult]:
        """``find`` on ``cached_index`` as if ``holding`` were gone (``CalendarCache.without``): the answer
        the same request would get once that consumer were cancelled, with the consumer still holding
        its capacity (a lease re-placed in one move, ``booking/lease_rebook.py``). Never cached (it is
        not the calendar's answer at that generation) and no window hook (no claimable id: the caller
        moves its own lease). Returns the request as parsed, and the answer."""
        req = self._parse(doc, cached_index.catalog, now_s)
        clamped = self.clamp(doc, req, now_s)
        if clamped is not doc:
            req = self._parse(clamped, cached_index.catalog, now_s)
        limit = self.settings.budget_ms
        with self.calendar.without(cached_index, holding) as index:
            found = find_slots(
                index, req, out_of_time=None if limit is None else _deadline(limit), explain=req.explain
            )
        return req, result_view(found, req.range_start_s, req.latest_end_s)

    def answer(
        self,
        doc: dict[str, Any],
        *,
        project: str,
        job: bool = False,
        now_s: int | None = None,
        arrived: float | None = None,
    ) -> FindSlotResult | FindSlotJob:
        """``POST /v1/find-slot``: a job when the caller asks for one (``job``) or the search looks long,
        else the answer; invalid requests fail at once either way. One calendar read serves both the
        validation and the search: each read asks the database for the generation, so a second one was
        a second round trip (on SQLite, a second transaction) on every answer. ``arrived``
        (``time.monotonic()`` when the request had arrived) lets a generation read that began since then
        serve it (``shared_reads.py``): requests queued behind one another share one."""
        now = int(time.time()) if now_s is None else now_s
        cached_index = self.calendar.current(now, arrived=arrived)
        req = self._parse(doc, cached_index.catalog, now)
        if job or self.should_defer(req):
            return self.submit(doc, project=project, now_s=now)
        return self._clamped_search(doc, req, cached_index, now, project, budget=True)

    def _clamped_search(
        self,
        doc: dict[str, Any],
        req: SlotRequest,
        cached_index: CachedIndex,
        now: int,
        project: str,
        *,
        budget: bool,
    ) -> FindSlotResult:
        clamped = self.clamp(doc, req, now)
        if clamped is not doc:
            req = self._parse(clamped, cached_index.catalog, now)
        return self._search(req, clamped, cached_index, project, budget=budget)

    def _search(
        self,
        req: SlotRequest,
        doc: dict[str, Any],
        cached_index: CachedIndex,
        project: str = "",
        *,
        budget: bool = True,
    ) -> FindSlotResult:
        key = hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest() + project
        with self._lock:
            hit = self._answers.get(key)
            if hit is not None and hit[1] == cached_index.generation and hit[0] > time.monotonic():
                self._answers.move_to_end(key)
                return hit[2].model_copy(update={"cached": True})
        limit = self.settings.budget_ms if budget else None
        found = find_slots(
            cached_index.index,
            req,
            out_of_time=None if limit is None else _deadline(limit),
            explain=req.explain,
        )
        result = result_view(found, req.range_start_s, req.latest_end_s)
        if self.window_hook is not None:
            result = self.window_hook(result, req, cached_index, project)
        if not result.complete:
            return result  # not cached: with less load, the same search may finish
        with self._lock:
            self._answers[key] = (
                time.monotonic() + self.settings.cache_ttl_s,
                cached_index.generation,
                result,
            )
            while len(self._answers) > self.settings.cache_size:
                self._answers.popitem(last=False)
        return result

    def should_defer(self, req: SlotRequest) -> bool:
        return estimated_cost(req) > self.settings.async_cost

    # -- jobs ----------------------------------------------------------------------------------------------
    def submit(self, doc: dict[str, Any], *, project: str, now_s: int | None = None) -> FindSlotJob:
        """Validate now (errors answer at once), then search in the background."""
        now = int(time.time()) if now_s is None else now_s
        req = self.parse(doc, now_s=now)
        doc = self.clamp(doc, req, now)
        job_id = str(uuid.uuid4())
        with UnitOfWork(self.db) as uow:
            uow.find_slot_jobs.purge_expired(now)
            uow.find_slot_jobs.add(
                FindSlotJobRow(
                    id=job_id,
                    project=project,
                    status="pending",
                    request=json.dumps(doc),
                    expires_s=now + self.settings.job_ttl_s,
                    runner_until_s=now + RUNNER_TTL_S,
                    runs=1,
                )
            )
            uow.commit()
        self._start(job_id)
        return self.job(job_id, project=None)

    def _start(self, job_id: str) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.settings.job_workers, thread_name_prefix="find-slot")
        self._pool.submit(self._run_job, job_id)

    def _take_over(self, job_id: str, now: int) -> bool:
        """Claim a job whose runner's claim ran out (its process died), if runs are left: one guarded
        UPDATE, so of several replicas reading it at once exactly one wins and runs it."""
        with UnitOfWork(self.db) as uow:
            taken = uow.find_slot_jobs.take_over(
                job_id, now_s=now, runner_until_s=now + RUNNER_TTL_S, max_runs=MAX_RUNS
            )
            uow.commit()
        if taken:
            log.warning("find-slot job %s: its runner stopped; running it again here", job_id)
            self._start(job_id)
        return taken

    def _run_job(self, job_id: str) -> None:
        with UnitOfWork(self.db) as uow:
            row = uow.find_slot_jobs.get(job_id)
            if row is None or row.status not in ("pending", "running"):
                return
            row.status = "running"
            row.runner_until_s = int(time.time()) + RUNNER_TTL_S
            doc, project = json.loads(row.request), row.project
            uow.commit()
        status, result, error = "done", None, None
        try:
            result = self.find(doc, project=project, budget=False).model_dump_json()
        except SlotbrokerError as exc:
            status = "failed"
            error = json.dumps(
                {
                    "code": exc.code,
                    "detail": exc.detail,
                    "errors": [{"pointer": f.pointer, "detail": f.detail} for f in exc.errors],
                }
            )
        except Exception as exc:
            status, error = "failed", json.dumps({"code": "internal_error", "detail": type(exc).__name__})
        with UnitOfWork(self.db) as uow:
            row = uow.find_slot_jobs.get(job_id)
            if row is not None:
                row.status, row.result, row.error = status, result, error
                row.finished_at = datetime.now(UTC)
                uow.commit()

    def job(self, job_id: str, *, project: str | None, now_s: int | None = None) -> FindSlotJob:
        """A job's state; ``project`` None means any project (admins). A job whose runner stopped (its
        process died and its claim ran out) is taken over and run again here, up to ``MAX_RUNS`` runs in
        all; after that it is reported failed with code ``worker_lost``."""
        now = int(time.time()) if now_s is None else now_s
        row = self._read_job(job_id, project, now)
        if _orphaned(row, now) and self._take_over(job_id, now):
            row = self._read_job(job_id, project, now)
        status, error = row.status, json.loads(row.error) if row.error else None
        if _orphaned(row, now) and row.runs >= MAX_RUNS:
            status = "failed"
            error = {"code": "worker_lost", "detail": f"its process stopped {row.runs} times; not run again"}
        created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
        return FindSlotJob(
            id=row.id,
            status=status,
            created_at=created,
            finished_at=row.finished_at,
            result=FindSlotResult.model_validate_json(row.result) if row.result else None,
            error=error,
        )

    def _read_job(self, job_id: str, project: str | None, now: int) -> FindSlotJobRow:
        with UnitOfWork(self.db, readonly=True) as uow:
            row = uow.find_slot_jobs.detached(job_id)
        if row is None or (project is not None and row.project != project) or row.expires_s < now:
            raise NotFound(f"no find-slot job {job_id}")
        return row

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    # -- calendar view -------------------------------------------------------------------------------------
    def calendar_view(self, start_s: int, end_s: int, bucket: Bucket, kinds: frozenset[str]) -> CalendarView:
        if end_s <= start_s:
            raise ValidationFailed("end must be after start", [FieldError("#/query/end", "not after start")])
        try:
            return calendar_view(self.calendar.current().index, start_s, end_s, bucket, kinds)
        except ValueError as exc:
            raise ValidationFailed(str(exc), [FieldError("#/query/resolution", str(exc))]) from exc


def _orphaned(row: FindSlotJobRow, now: int) -> bool:
    """Unfinished, and its runner's claim ran out: the process running it is gone."""
    return row.status in ("pending", "running") and (row.runner_until_s or 0) < now
