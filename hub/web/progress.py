"""Long work in the ops API: ``GET /ops/progress`` (every piece of work the store knows of, the
latest first) and ``GET /ops/progress/{work}``: units done of the total, the rate, the state
(running, finished, stopped) and the checkpoint a resumed run starts after. The work may run in
this process (a scheduled job) or another (``jianhu report backfill`` in a terminal)."""

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from hub.base import hospital_time
from hub.base.progress import RUNNING, WorkProgress
from hub.settings import Role
from hub.web.auth import allow
from hub.web.errors import problem
from hub.web.keys import RUNTIME

STALLED = timedelta(minutes=5)  # a running back-fill reports at least once a span


def add_routes(app: web.Application) -> None:
    app.router.add_get("/ops/progress", list_progress)
    app.router.add_get("/ops/progress/{work}", show_progress)


@allow(Role.OPS)
async def list_progress(request: web.Request) -> web.Response:
    found = await request.app[RUNTIME].store.jobs.progress()
    return web.json_response([_shown(p) for p in found])


@allow(Role.OPS)
async def show_progress(request: web.Request) -> web.Response:
    work = request.match_info["work"]
    found = await request.app[RUNTIME].store.jobs.progress(work)
    if not found:
        return problem(404, "not-found", f"no work named {work!r} has run")
    return web.json_response(_shown(found[0]))


def _shown(progress: WorkProgress) -> dict[str, Any]:
    shown = asdict(progress)
    shown["started"] = hospital_time.shown(progress.started)
    shown["updated"] = hospital_time.shown(progress.updated)
    # a run that was killed says "running" for ever: after STALLED without news, say so
    quiet = datetime.now(UTC) - progress.updated
    shown["stalled"] = progress.state == RUNNING and quiet > STALLED
    elapsed = (progress.updated - progress.started).total_seconds()
    # this run's rate: what a resumed run found done does not count
    done_here = progress.done - progress.resumed_at
    running = progress.state == RUNNING and not shown["stalled"]
    rate = done_here / elapsed if elapsed > 0 and running else None
    shown["percent"] = round(100 * progress.done / progress.total, 1) if progress.total else 100.0
    shown["rate_per_s"] = round(rate, 2) if rate else None
    left = (progress.total - progress.done) / rate if rate else None
    shown["seconds_left"] = round(left) if left is not None else None
    return shown
