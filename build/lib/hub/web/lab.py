"""The lab turnaround big screen (检验标本全程监控大屏, S8) and its API.

``GET /lab/screen`` one self-contained page (no CDN: hospital networks have no internet), with
no data in it, so it needs no token: a personal view asks for one in the page;
``GET /lab/overview`` the JSON snapshot; ``GET /lab/stream`` the live changes as Server-Sent
Events; ``POST /lab/alerts/{id}/ack`` a TAT alert taken in charge (``{"by", "note"}``);
``POST /lab/critical/{id}/ack`` a critical value reported to a clinician who read it back
(``{"by": {"number", "name"}, "clinician": {"number", "name"}, "read_back"}``).

With ``JIANHU_LAB__OPEN_SCREEN=true`` the wall display on the lab's trusted network reads the
screen without a token; acknowledgements always need one and are audited."""

import asyncio
import contextlib
from typing import Any

import orjson
from aiohttp import web

from hub.lab.critical_alerts import AlertStateError, Staff, UnknownAlertError
from hub.lab.screen import KPI_RULE
from hub.lab.service import LabService
from hub.lab.tat import AlertError
from hub.settings import Role
from hub.web.auth import RequestHandler, allow
from hub.web.errors import problem
from hub.web.keys import PRINCIPAL, RUNTIME

HEARTBEAT_S = 15.0  # a comment line: proxies keep the stream open, a gone screen is noticed
READERS = (Role.SCREEN, Role.CLINICIAN, Role.OPS)
ACKNOWLEDGERS = (Role.CLINICIAN, Role.OPS)
STATISTICS_READERS = (Role.CLINICIAN, Role.OPS, Role.SCREEN)


def add_routes(app: web.Application) -> None:
    open_screen = app[RUNTIME].settings.lab.open_screen

    def reading(handler: RequestHandler) -> RequestHandler:
        return handler if open_screen else allow(*READERS)(_own(handler))

    app.router.add_get("/lab/screen", screen)  # the page holds no data: it asks for a token
    app.router.add_get("/lab/overview", reading(overview))
    app.router.add_get("/lab/stream", reading(stream))
    app.router.add_get("/lab/statistics", allow(*STATISTICS_READERS)(statistics))
    app.router.add_post("/lab/alerts/{id:.+}/ack", allow(*ACKNOWLEDGERS)(acknowledge_tat))
    app.router.add_post("/lab/critical/{id}/ack", allow(*ACKNOWLEDGERS)(acknowledge_critical))
    app.on_shutdown.append(_close_streams)


def _own(handler: RequestHandler) -> RequestHandler:
    """A separate function to mark, so the open and the guarded routes never share a mark."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        return await handler(request)

    return guarded


def _service(request: web.Request) -> LabService | None:
    """The lab service when this process holds the lab queues; a standby's memory is stale,
    so it neither shows nor takes acknowledgements (a load balancer's check moves on)."""
    service = request.app[RUNTIME].lab
    return service if service is not None and service.active else None


def _no_service() -> web.Response:
    return problem(
        503,
        "transient",
        "the lab screen is served by the process that holds the lab queues (lab.fhir, lab.hl7);"
        " this process does not, or is their standby",
    )


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json")


async def screen(request: web.Request) -> web.StreamResponse:
    return web.Response(
        text=SCREEN_HTML,
        content_type="text/html",
        charset="utf-8",
        headers={"Cache-Control": "no-cache", "Content-Security-Policy": CSP},
    )


async def overview(request: web.Request) -> web.StreamResponse:
    service = _service(request)
    if service is None:
        return _no_service()
    return _json(service.view.overview())


async def statistics(request: web.Request) -> web.StreamResponse:
    """TAT statistics per department, test group and day; ``?rule=`` names another span."""
    service = _service(request)
    if service is None:
        return _no_service()
    try:
        return _json(service.view.statistics(request.query.get("rule", KPI_RULE)))
    except KeyError:
        return problem(400, "invalid", f"no TAT rule {request.query.get('rule')!r}")


async def stream(request: web.Request) -> web.StreamResponse:
    """One queue per connection; a None from the service ends the stream (shutdown)."""
    service = _service(request)
    if service is None:
        return _no_service()
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # nginx in front must not hold events back
        }
    )
    queue = service.subscribe()
    try:
        await response.prepare(request)
        await response.write(b"retry: 2000\n: connected\n\n")
        while True:
            try:
                async with asyncio.timeout(HEARTBEAT_S):
                    event = await queue.get()
            except TimeoutError:
                await response.write(b": heartbeat\n\n")
                continue
            if event is None:
                break
            await response.write(event)
    except ConnectionResetError:
        pass  # the screen went away; its queue goes below
    finally:
        service.unsubscribe(queue)
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response


async def _close_streams(app: web.Application) -> None:
    if (service := app[RUNTIME].lab) is not None:
        service.close_screens()


async def _body(request: web.Request) -> dict[str, Any] | web.Response:
    try:
        body = await request.json(loads=orjson.loads)
    except ValueError:
        return problem(400, "invalid", "the body is not JSON")
    if not isinstance(body, dict):
        return problem(400, "invalid", "the body is a JSON object")
    return body


async def acknowledge_tat(request: web.Request) -> web.StreamResponse:
    service = _service(request)
    if service is None:
        return _no_service()
    body = await _body(request)
    if isinstance(body, web.Response):
        return body
    alert_id = request.match_info["id"]
    by, note = str(body.get("by") or "").strip(), str(body.get("note") or "")
    if not by:
        return problem(400, "required", "'by' names who took charge")
    if alert_id not in {a.id for a in service.engine.alerts()}:
        return problem(404, "not-found", "no open alert with this id")
    try:
        alert = service.acknowledge_tat(alert_id, by, note, request[PRINCIPAL].subject)
    except AlertError as exc:
        return problem(409, "conflict", str(exc))
    return _json(service.view.tat_json(alert))


def _staff(body: dict[str, Any], key: str) -> Staff:
    found = body.get(key)
    found = found if isinstance(found, dict) else {}
    return Staff(str(found.get("number") or "").strip(), str(found.get("name") or "").strip())


async def acknowledge_critical(request: web.Request) -> web.StreamResponse:
    service = _service(request)
    if service is None:
        return _no_service()
    body = await _body(request)
    if isinstance(body, web.Response):
        return body
    try:
        alert = await service.acknowledge_critical(
            request.match_info["id"],
            by=_staff(body, "by"),
            clinician=_staff(body, "clinician"),
            read_back=str(body.get("read_back") or ""),
            caller=request[PRINCIPAL].subject,
        )
    except UnknownAlertError:
        return problem(404, "not-found", "no critical-value alert with this id")
    except AlertStateError as exc:
        return problem(409, "conflict", str(exc))
    except ValueError as exc:
        return problem(400, "required", str(exc))
    return _json(service.view.critical_json(alert.as_json()))


# Everything inline: no script or style from elsewhere may run on the screen.
CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'"
)

SCREEN_HTML = """<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>检验标本全程监控</title>
<style>
* { box-sizing: border-box; }
body { margin: 0; background: #0b1630; color: #e6edf7; font-size: 18px;
  font-family: "Microsoft YaHei", "PingFang SC", "WenQuanYi Zen Hei", "Noto Sans CJK SC",
  sans-serif; }
header { display: flex; align-items: center; justify-content: space-between;
  padding: 12px 24px; background: #102347; border-bottom: 2px solid #1f4c8f; }
h1 { margin: 0; font-size: 30px; letter-spacing: 4px; }
#live { font-size: 16px; padding: 4px 12px; border-radius: 12px; background: #7a2a2a; }
#live.on { background: #1d6b3a; }
#clock { font-size: 24px; font-variant-numeric: tabular-nums; }
.kpis { display: grid; grid-template-columns: repeat(7, 1fr); gap: 12px; padding: 12px 24px; }
.kpi { background: #13294f; border-radius: 8px; padding: 10px; text-align: center; }
.kpi b { display: block; font-size: 34px; color: #5ec8ff; }
.kpi.bad b { color: #ff5d5d; }
.kpi span { font-size: 15px; color: #a9b8d3; }
section h2 { margin: 0 0 8px; font-size: 22px; }
#critical-panel { margin: 0 24px 12px; padding: 10px 14px; border-radius: 8px;
  background: #2a0f17; border: 2px solid #ff3b3b; }
#critical-panel.empty { border-color: #2f3d5c; background: #101d38; }
#critical { display: flex; flex-wrap: wrap; gap: 10px; }
.crit { padding: 10px 14px; border-radius: 8px; background: #b3121b; min-width: 320px;
  animation: flash 1s steps(2, start) infinite; }
.crit.level1, .crit.level2, .crit.level3 { outline: 3px solid #ffd400; }
.crit .who { font-size: 22px; font-weight: bold; }
.crit .what { font-size: 24px; margin: 4px 0; }
.crit .meta { font-size: 15px; color: #ffe0e0; }
@keyframes flash { 50% { background: #5a0a10; } }
.board { display: grid; grid-template-columns: repeat(6, 1fr); gap: 12px; padding: 0 24px 24px; }
.col { background: #101d38; border-radius: 8px; padding: 10px; min-height: 300px; }
.col h3 { margin: 0 0 8px; display: flex; justify-content: space-between; font-size: 22px; }
.col h3 .n { color: #5ec8ff; font-variant-numeric: tabular-nums; }
.tube { margin: 6px 0; padding: 6px 8px; border-radius: 6px; font-size: 15px;
  background: #6e1c1c; border-left: 6px solid #ff4d4d; }
.tube.acked { background: #4d3d10; border-left-color: #ffc400; }
.tube .late { float: right; font-weight: bold; }
.empty-note { color: #6f7f9e; font-size: 15px; }
button { font: inherit; font-size: 15px; cursor: pointer; border: 0; border-radius: 4px;
  padding: 3px 10px; background: #e6edf7; color: #0b1630; }
dialog { background: #13294f; color: #e6edf7; border: 1px solid #5ec8ff; border-radius: 8px; }
dialog label { display: block; margin: 6px 0; }
dialog input { font: inherit; width: 100%; }
#error { color: #ff8080; min-height: 1.2em; }
</style>
</head>
<body>
<header>
  <h1>检验标本全程监控</h1>
  <span id="live">连接中</span>
  <span id="clock"></span>
</header>
<div class="kpis">
  <div class="kpi"><b id="k-flight">-</b><span>在检标本</span></div>
  <div class="kpi bad"><b id="k-overdue">-</b><span>超时未处理</span></div>
  <div class="kpi bad"><b id="k-critical">-</b><span>危急值待确认</span></div>
  <div class="kpi"><b id="k-reported">-</b><span>今日报告</span></div>
  <div class="kpi"><b id="k-median">-</b><span>TAT 中位数（分钟）</span></div>
  <div class="kpi"><b id="k-p90">-</b><span>TAT P90（分钟）</span></div>
  <div class="kpi"><b id="k-within">-</b><span>TAT 达标率</span></div>
</div>
<section id="critical-panel" class="empty">
  <h2>危急值 <small id="critical-note">暂无待确认危急值</small></h2>
  <div id="critical"></div>
</section>
<div class="board" id="board"></div>
<dialog id="login">
  <form method="dialog">
    <h2>检验标本全程监控</h2>
    <p id="login-note">此大屏需要授权后查看</p>
    <label>访问令牌 <input id="login-token" type="password" autocomplete="off"></label>
    <button value="ok" id="login-ok">进入</button>
  </form>
</dialog>
<dialog id="ack">
  <form method="dialog" id="ack-form">
    <h2 id="ack-title">确认</h2>
    <div id="ack-fields"></div>
    <label>访问令牌 <input id="ack-token" type="password" autocomplete="off"></label>
    <div id="error"></div>
    <button value="ok" id="ack-ok">确认</button> <button value="cancel">取消</button>
  </form>
</dialog>
<script>
"use strict";
const COLUMNS = [["collect", "待采集"], ["receive", "待接收"], ["register", "待登记"],
  ["test", "检测中"], ["review", "待审核"], ["report", "待发布"]];
const state = { stages: {}, alerts: new Map(), critical: new Map(), kpi: {} };
let token = sessionStorage.getItem("lab-token") || "";
const hash = new URLSearchParams(location.hash.slice(1));
if (hash.get("token")) {
  token = hash.get("token");
  sessionStorage.setItem("lab-token", token);
  history.replaceState(null, "", location.pathname);
}
function headers() { return token ? { Authorization: "Bearer " + token } : {}; }
function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}
function hhmm(iso) { return iso ? new Date(iso).toTimeString().slice(0, 5) : ""; }
function minutesSince(iso) { return Math.floor((Date.now() - new Date(iso).getTime()) / 60000); }
function span(minutes) {
  if (minutes < 60) return minutes + " 分";
  if (minutes < 1440) return Math.floor(minutes / 60) + " 小时 " + (minutes % 60) + " 分";
  return Math.floor(minutes / 1440) + " 天";
}

function applySnapshot(data) {
  state.stages = {};
  for (const s of data.stages) state.stages[s.key] = s.count;
  state.alerts = new Map(data.alerts.map(a => [a.id, a]));
  state.critical = new Map(data.critical.map(c => [c.id, c]));
  state.kpi = data.kpi;
}
function applyEvent(event) {
  if (event.type === "tat") {
    if (event.kind === "cleared") state.alerts.delete(event.alert.id);
    else state.alerts.set(event.alert.id, event.alert);
  } else if (event.type === "critical") {
    if (event.alert.state === "open") state.critical.set(event.alert.id, event.alert);
    else state.critical.delete(event.alert.id);
  } else if (event.type === "stages") {
    for (const s of event.stages) state.stages[s.key] = s.count;
  } else if (event.type === "kpi") {
    state.kpi = event.kpi;
  } else if (event.type === "reload") {
    load().catch(error => console.warn(error));
    return;
  }
  render();
}

function render() {
  const k = state.kpi || {};
  const open = [...state.alerts.values()];
  const inFlight = Object.values(state.stages).reduce((sum, n) => sum + n, 0);
  document.getElementById("k-flight").textContent = inFlight;
  document.getElementById("k-overdue").textContent = open.filter(a => !a.acknowledgement).length;
  document.getElementById("k-critical").textContent = state.critical.size;
  document.getElementById("k-reported").textContent = k.reported_today ?? "-";
  document.getElementById("k-median").textContent = k.median_minutes ?? "-";
  document.getElementById("k-p90").textContent = k.p90_minutes ?? "-";
  document.getElementById("k-within").textContent =
    k.within_target === null || k.within_target === undefined ? "-" : k.within_target + "%";
  renderCritical();
  renderBoard(open);
}

function renderCritical() {
  const box = document.getElementById("critical");
  box.replaceChildren();
  const items = [...state.critical.values()].sort((a, b) => a.raised.localeCompare(b.raised));
  document.getElementById("critical-panel").className = items.length ? "" : "empty";
  document.getElementById("critical-note").textContent =
    items.length ? items.length + " 条待确认" : "暂无待确认危急值";
  for (const c of items) {
    const card = el("div", "crit level" + c.level);
    card.dataset.id = c.id;
    card.append(el("div", "who", [c.patient || "未知患者", c.ward, c.bed && c.bed + "床"]
      .filter(Boolean).join("  ")));
    for (const f of c.findings) card.append(el("div", "what", f.name + " " + f.value));
    const left = Math.ceil((new Date(c.due).getTime() - Date.now()) / 60000);
    card.append(el("div", "meta", "报警 " + hhmm(c.raised) + "  " +
      (left >= 0 ? "剩余 " + left + " 分钟确认" : "已超时 " + (-left) + " 分钟") +
      (c.level ? "  已升级" + c.level + "级" : "")));
    const button = el("button", "", "确认");
    button.addEventListener("click", () => askCritical(c));
    card.append(button);
    box.append(card);
  }
}

function renderBoard(open) {
  const board = document.getElementById("board");
  board.replaceChildren();
  for (const [key, label] of COLUMNS) {
    const col = el("div", "col");
    col.dataset.column = key;
    const h = el("h3", "", label);
    h.append(el("span", "n", state.stages[key] ?? 0));
    col.append(h);
    const late = open.filter(a => a.column === key).sort((a, b) => a.due.localeCompare(b.due));
    if (!late.length) col.append(el("div", "empty-note", "无超时标本"));
    for (const a of late) {
      const tube = el("div", a.acknowledgement ? "tube acked" : "tube");
      tube.dataset.id = a.id;
      tube.append(el("span", "late", "超时 " + span(Math.max(minutesSince(a.due), 0))));
      tube.append(el("div", "", (a.barcode || "无条码") + " " + (a.test_group || "")));
      tube.append(el("div", "", a.label + (a.priority === "stat" ? " · 急" : "") +
        (a.department ? " · " + a.department : "")));
      if (a.acknowledgement) tube.append(el("div", "", "已确认：" + a.acknowledgement.by));
      else {
        const button = el("button", "", "确认");
        button.addEventListener("click", () => askTat(a));
        tube.append(button);
      }
      col.append(tube);
    }
    board.append(col);
  }
}

function field(id, label) {
  const wrap = el("label", "", label + " ");
  const input = el("input");
  input.id = id;
  input.autocomplete = "off";
  wrap.append(input);
  return wrap;
}
// The hub's own diagnostics are English: the lab worker at the wall reads why in Chinese.
const REFUSED = { 401: "访问令牌无效或未填写", 403: "此访问令牌无权确认",
  404: "该报警已不存在", 409: "该报警已被确认或已关闭" };
function refusal(status, missing) {
  if (status === 400) return missing;
  return REFUSED[status] || "服务器错误（" + status + "），请稍后重试";
}
function ask(title, fields, missing, send) {
  const dialog = document.getElementById("ack");
  document.getElementById("ack-title").textContent = title;
  document.getElementById("ack-fields").replaceChildren(...fields);
  document.getElementById("ack-token").value = token;
  document.getElementById("error").textContent = "";
  dialog.onclose = async () => {
    if (dialog.returnValue !== "ok") return;
    const typed = document.getElementById("ack-token").value.trim();
    let problem = null;
    try {
      const response = await send(typed);
      if (!response.ok) problem = refusal(response.status, missing);
      else if (typed) {  // kept for the screen only once it worked: a typo must not lock it out
        token = typed;
        sessionStorage.setItem("lab-token", token);
      }
    } catch (error) {
      console.warn(error);
      problem = "无法连接服务器，请稍后重试";
    }
    if (problem) {  // the dialog comes back with what was typed, so only the fix is retyped
      document.getElementById("error").textContent = "确认失败：" + problem;
      dialog.showModal();
    }
  };
  dialog.showModal();
}
function value(id) { return document.getElementById(id).value.trim(); }
function post(path, body, typed) {
  const auth = typed ? { Authorization: "Bearer " + typed } : headers();
  return fetch(path, { method: "POST", body: JSON.stringify(body),
    headers: { ...auth, "Content-Type": "application/json" } });
}
function askCritical(c) {
  ask("危急值确认：" + c.text, [field("f-by-no", "检验科工号"), field("f-by-name", "检验科姓名"),
    field("f-cl-no", "临床工号"), field("f-cl-name", "临床人员姓名"), field("f-read", "复述内容")],
    "请填写双方的工号、姓名和临床人员的复述内容",
    (typed) => post("/lab/critical/" + encodeURIComponent(c.id) + "/ack", {
      by: { number: value("f-by-no"), name: value("f-by-name") },
      clinician: { number: value("f-cl-no"), name: value("f-cl-name") },
      read_back: value("f-read") }, typed));
}
function askTat(a) {
  ask("超时确认：" + (a.barcode || "") + " " + a.label,
    [field("f-who", "确认人"), field("f-note", "备注")], "请填写确认人",
    (typed) => post("/lab/alerts/" + encodeURIComponent(a.id) + "/ack",
      { by: value("f-who"), note: value("f-note") }, typed));
}

async function load() {
  const response = await fetch("/lab/overview", { headers: headers(), cache: "no-store" });
  if (!response.ok) throw new Error("overview " + response.status);
  applySnapshot(await response.json());
  render();
}
function setLive(on) {
  const live = document.getElementById("live");
  live.className = on ? "on" : "";
  live.textContent = on ? "实时" : "重新连接中";
}
function sleep(ms) { return new Promise(done => setTimeout(done, ms)); }
// A personal view (the wall display not open) asks for its token in the page: a browser
// cannot send one with the page itself, and the page holds no data.
function askToken(status) {
  return new Promise(done => {
    const dialog = document.getElementById("login");
    document.getElementById("login-note").textContent =
      status === 403 ? "此访问令牌无权查看大屏，请换一个" : "此大屏需要授权后查看";
    document.getElementById("login-token").value = "";
    dialog.onclose = () => {
      const typed = document.getElementById("login-token").value.trim();
      if (typed) {
        token = typed;
        sessionStorage.setItem("lab-token", token);
      }
      done();
    };
    dialog.showModal();
  });
}

// Server-Sent Events read through fetch, so a personal view can send its token; the stream is
// opened before the snapshot is read, so no change falls between the two.
async function follow() {
  for (;;) {
    try {
      const response = await fetch("/lab/stream", { headers: headers(), cache: "no-store" });
      if (response.status === 401 || response.status === 403) {
        setLive(false);
        await askToken(response.status);
        continue;
      }
      if (!response.ok || !response.body) throw new Error("stream " + response.status);
      await load();
      setLive(true);
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value: chunk, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(chunk, { stream: true });
        let end;
        while ((end = buffer.indexOf("\\n\\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block.split("\\n").filter(l => l.startsWith("data: "))
            .map(l => l.slice(6)).join("\\n");
          if (data) applyEvent(JSON.parse(data));
        }
      }
    } catch (error) {
      console.warn(error);
    }
    setLive(false);
    await sleep(2000);
  }
}
function tick() {
  const now = new Date().toLocaleString("zh-CN", { hour12: false });
  document.getElementById("clock").textContent = now;
}
tick();
setInterval(tick, 1000);
setInterval(render, 15000);  // the minutes overdue and left move on without events
follow();
</script>
</body>
</html>
"""
