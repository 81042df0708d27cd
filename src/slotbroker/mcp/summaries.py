"""The short text that goes with each tool's structured result: what an agent needs to take the next step."""

from __future__ import annotations

from slotbroker.wire.find_slot import ExplanationView, FindSlotResult
from slotbroker.wire.jobs import JobLogs, JobOut
from slotbroker.wire.leases import CompactionReport, LeaseCompaction, LeaseList, LeaseView
from slotbroker.wire.offers import AcceptedLease, OfferSetView, OfferView


def explanation(why: ExplanationView | None) -> str:
    if why is None:
        return "Nothing fits."
    reasons = "; ".join(
        f"{b.reason}: {b.detail}"
        + (f" (earliest if relaxed: {b.earliest_if_relaxed.isoformat()})" if b.earliest_if_relaxed else "")
        for b in why.blockers
    )
    text = f"Nothing fits. {reasons}" if reasons else "Nothing fits."
    if why.earliest_after_range is not None:
        text += f" Earliest start after the range: {why.earliest_after_range.isoformat()}."
    return text


def found(result: FindSlotResult) -> str:
    if not result.windows:
        return explanation(result.explanation)
    first = result.windows[0]
    sites = ", ".join(sorted(set(first.sites.values())))
    return (
        f"{len(result.windows)} window(s). First: {first.start.isoformat()} to {first.end.isoformat()} "
        f"at {sites}. Hold one with create_offers."
    )


def offer_set(view: OfferSetView) -> str:
    if not view.offers:
        return f"Offer set {view.id} is {view.status.value}. " + explanation(view.explanation)
    lines = [f"Offer set {view.id} is {view.status.value}; each offer holds its capacity until it expires:"]
    lines += [
        f"- {o.id} ({o.strategy.value}): {o.start.isoformat()} to {o.end.isoformat()} at "
        f"{', '.join(sorted(set(o.sites.values())))}, {o.state.value} until {o.expires.isoformat()}"
        for o in view.offers
    ]
    lines.append("Accept one with accept_offer; reject the rest to free them now.")
    return "\n".join(lines)


def accepted(lease: AcceptedLease) -> str:
    return (
        f"Lease {lease.uuid} is {lease.status}: {lease.start.isoformat()} to {lease.end.isoformat()} at "
        f"{', '.join(sorted(set(lease.sites.values())))}. Run work in it with create_job (lease_id)."
    )


def offer(view: OfferView) -> str:
    return f"Offer {view.id} is {view.state.value}."


def lease(view: LeaseView) -> str:
    return (
        f"Lease {view.id} ({view.project}) is {view.status}: {view.start.isoformat()} to "
        f"{view.end.isoformat()}, {len(view.items)} item(s), generation {view.generation}."
    )


def compaction(moved: LeaseCompaction) -> str:
    view = moved.lease
    if moved.moved:
        return (
            f"Lease {view.id} now starts at {view.start.isoformat()} "
            f"(was {moved.previous_start.isoformat()}), generation {view.generation}."
        )
    return f"Lease {view.id} stays at {view.start.isoformat()}: {moved.reason or 'nothing earlier fits'}."


def compactions(report: CompactionReport) -> str:
    text = f"{report.moved} of {len(report.items)} lease(s) moved earlier" + (": " if report.items else ".")
    text += "; ".join(
        f"{o.lease} {o.previous_start.isoformat() if o.previous_start else '?'} -> {o.start.isoformat()}"
        if o.moved and o.start
        else f"{o.lease} stays ({o.reason})"
        for o in report.items
    )
    return text


def leases(page: LeaseList) -> str:
    text = f"{len(page.items)} lease(s)" + (": " if page.items else ".")
    text += "; ".join(f"{v.id} {v.status} {v.start.isoformat()} to {v.end.isoformat()}" for v in page.items)
    if page.next_cursor:
        text += f" More: pass cursor={page.next_cursor}."
    return text


def job(view: JobOut) -> str:
    text = f"Job {view.id} in lease {view.lease_id} is {view.state.value}"
    if view.exit_code is not None:
        text += f" (exit code {view.exit_code})"
    if view.error:
        text += f": {view.error}"
    return text + "."


def logs(page: JobLogs) -> str:
    body = "\n".join(f"[{line.stream}] {line.line}" for line in page.items)
    more = f"\n(more: after={page.next_after})" if page.next_after is not None else ""
    return (body or "No log lines yet.") + more
