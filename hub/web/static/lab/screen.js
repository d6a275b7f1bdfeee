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
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block.split("\n").filter(l => l.startsWith("data: "))
            .map(l => l.slice(6)).join("\n");
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
