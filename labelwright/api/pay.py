"""Pay (a project's managers): bring the ledger up to date, per-annotator earnings, the ledger itself."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from labelwright.api.deps import Caller, store_of
from labelwright.errors import ValidationError
from labelwright.services import pay, policy
from labelwright.timefmt import day_start


def _day(value: str | None, field: str) -> float | None:
    if value is None:
        return None
    try:
        return day_start(value)
    except ValueError:
        raise ValidationError("a day as YYYY-MM-DD", field=field) from None


def build_router() -> APIRouter:
    r = APIRouter()

    @r.post("/projects/{project}/pay/settle", summary="Bring the ledger up to date (manager)")
    def pay_settle(project: str, request: Request, user: Caller):
        store = store_of(request)
        return pay.settle(store, policy.manage_project(store, user, project).project)

    @r.get("/projects/{project}/pay", summary="Per annotator: items, active hours, earnings, effective "
                                               "hourly rate, below the fair rate (manager)")
    def pay_summary(project: str, request: Request, user: Caller):
        store = store_of(request)
        p = policy.manage_project(store, user, project).project
        pay.settle(store, p)
        return pay.summary(store, p)

    @r.get("/projects/{project}/ledger", summary="Ledger entries, JSON or CSV, by period and annotator (manager)")
    def ledger(project: str, request: Request, user: Caller,
               start: str | None = Query(None, description="YYYY-MM-DD, inclusive"),
               end: str | None = Query(None, description="YYYY-MM-DD, exclusive"), annotator: str | None = None,
               format: str = Query("json", pattern="^(json|csv)$")):
        store = store_of(request)
        p = policy.manage_project(store, user, project).project
        pay.settle(store, p)
        rows = pay.ledger_rows(store, p, start=_day(start, "start"), end=_day(end, "end"), annotator=annotator)
        if format == "csv":
            name = f"{p.slug}-ledger" + (f"-{annotator}" if annotator else "") + (f"-{start}" if start else "") + ".csv"
            return Response(pay.ledger_csv(rows), media_type="text/csv",
                            headers={"Content-Disposition": f'attachment; filename="{name}"'})
        return rows

    return r
