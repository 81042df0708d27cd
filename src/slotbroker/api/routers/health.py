"""Liveness, readiness and metrics: unauthenticated, for load balancers and Prometheus."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from slotbroker.api.problems import problem_response, responses
from slotbroker.bootstrap import Services
from slotbroker.store import migrate
from slotbroker.wire.health import Health, Ready

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is alive")
def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Ready,
    responses=responses(503),
    summary="The database is reachable and migrated to head",
)
def readyz(request: Request) -> Response | Ready:
    svc: Services = request.app.state.services
    try:
        with svc.db.engine.connect() as conn:
            generation = int(
                conn.execute(text("SELECT COALESCE(SUM(generation), 0) FROM calendar_state")).scalar() or 0
            )
        current = migrate.current_revision(svc.db.engine)
    except Exception as exc:
        return problem_response(503, "unavailable", f"database unreachable: {type(exc).__name__}")
    if current != migrate.head_revision():
        return problem_response(
            503, "unavailable", f"database at migration {current}, head is {migrate.head_revision()}"
        )
    return Ready(
        status="ok", database=svc.db.engine.dialect.name, migration=current, calendar_generation=generation
    )


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics",
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
