// coursegen dashboard: polls the JSON API about once a second; no libraries, no CDN.
"use strict";

const POLL_MS = 1000;
const IDLE_MS = 5000;
const TERMINAL = ["completed", "failed", "cancelled"];

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.json();
}

function live(ok) {
  const badge = document.getElementById("live");
  badge.classList.toggle("stale", !ok);
  badge.textContent = ok ? "live" : "offline, retrying";
}

function age(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 86400) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} d`;
}

const money = (usd) => `$${Number(usd || 0).toFixed(4)}`;
const badge = (status) => el("span", { class: "badge", "data-status": status, text: status });

function loop(tick) {
  const run = async () => {
    let delay = POLL_MS;
    try {
      delay = (await tick()) || POLL_MS;
      live(true);
    } catch (err) {
      live(false);
    }
    setTimeout(run, delay);
  };
  run();
}

// -- the course list --------------------------------------------------------------------------

function coursesPage() {
  const form = document.getElementById("filters");
  const params = new URLSearchParams(location.search);
  for (const name of ["status", "variant", "q"]) {
    if (params.get(name)) form.elements[name].value = params.get(name);
  }
  const refresh = async () => {
    const query = new URLSearchParams();
    for (const name of ["status", "variant", "q"]) {
      const value = form.elements[name].value.trim();
      if (value) query.set(name, value);
    }
    history.replaceState(null, "", query.toString() ? `?${query}` : location.pathname);
    const body = await getJSON(`/api/courses?${query}`);
    renderCourses(body.courses);
    document.getElementById("count").textContent = `${body.count} shown`;
  };
  form.addEventListener("input", () => refresh().catch(() => live(false)));
  form.addEventListener("submit", (event) => event.preventDefault());
  loop(refresh);
}

function renderCourses(rows) {
  const body = document.getElementById("rows");
  if (!rows.length) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: "7", class: "muted", text: "none" })));
    return;
  }
  body.replaceChildren(...rows.map((c) => {
    const link = el("a", { href: `/courses/${c.course_id}` }, el("code", { text: c.course_id }));
    const title = c.title ? el("div", { class: "muted", text: c.title }) : "";
    const bar = el("div", { class: "bar" }, el("div", { style: `width:${c.percent}%` }));
    return el("tr", { "data-course": c.course_id },
      el("td", {}, link, title),
      el("td", {}, badge(c.status)),
      el("td", { text: c.variant }),
      el("td", {}, bar, c.progress),
      el("td", { class: "num", text: age(c.age_s) }),
      el("td", { class: "num", text: money(c.cost_usd) }),
      el("td", { class: "muted", text: (c.updated_at || "").replace("T", " ").slice(0, 19) }));
  }));
}

// -- one course -------------------------------------------------------------------------------

function coursePage() {
  const id = document.getElementById("course").dataset.course;
  let version = -1;
  let eventsSeen = 0;
  let status = "";
  loop(async () => {
    const course = await getJSON(`/api/courses/${id}`);
    renderCourse(course);
    const active = !TERMINAL.includes(course.status);
    if (course.version !== version || active) {
      renderGantt(await getJSON(`/api/courses/${id}/gantt`));
    }
    if (course.version !== version) {
      const log = await getJSON(`/api/courses/${id}/events?after=${eventsSeen}`);
      renderEvents(log);
      eventsSeen += log.events.length;
      if (course.status !== status || active) await refreshDiagrams(id);
      version = course.version;
      status = course.status;
    }
    return active ? POLL_MS : IDLE_MS;
  });
  operatorForm(id);
}

function renderCourse(c) {
  document.getElementById("title").textContent = c.title || c.course_id;
  const state = document.getElementById("status");
  state.textContent = c.status;
  state.dataset.status = c.status;
  document.getElementById("progress").textContent = `${c.done}/${c.total} tasks`;
  document.getElementById("progress-bar").style.width = `${c.percent}%`;
  document.getElementById("variant").textContent = c.variant || "";
  document.getElementById("version").textContent = c.version;
  document.getElementById("age").textContent = age(c.age_s);
  document.getElementById("cost").textContent = money(c.cost_usd);
  const failure = document.getElementById("failure");
  failure.hidden = !c.failure;
  failure.textContent = c.failure ? `Failed: ${c.failure.reason || ""}` : "";
  const queued = document.getElementById("queued");
  queued.hidden = !c.queued;
  queued.textContent = c.queued
    ? `Queued: position ${c.queued.position} of tenant ${c.tenant}, since ${c.queued.since}: ${c.queued.reason}`
    : "";
  const held = document.getElementById("held");
  held.hidden = !(c.held && c.held.length);
  held.textContent = held.hidden ? ""
    : `Held until ${c.held[0].until} (${c.held.map((h) => h.task).join(", ")}): ${c.held[0].reason}`;
  const rows = c.tasks.map((t) => el("tr", { "data-task": t.task },
    el("td", {}, el("code", { text: t.task })),
    el("td", {}, badge(t.status)),
    el("td", { class: "num", text: t.attempts }),
    el("td", { class: "num", text: t.duration_ms === null ? "" : (t.duration_ms / 1000).toFixed(2) }),
    el("td", { class: "num", text: money(t.cost_usd) }),
    el("td", { class: "muted", text: t.error || "" })));
  document.querySelector("#tasks tbody").replaceChildren(...rows);
  renderOutputs(c.links);
}

function renderOutputs(links) {
  const box = document.getElementById("outputs");
  const files = Object.entries(links.files);
  if (!files.length && !links.frames.length) return;
  const list = el("ul", {}, ...files.map(([name, href]) =>
    el("li", {}, el("a", { href, target: "_blank", rel: "noopener", text: name }))));
  const frames = el("div", { class: "frames" }, ...links.frames.slice(0, 24).map((href) =>
    el("a", { href, target: "_blank", rel: "noopener" }, el("img", { src: href, alt: "key frame" }))));
  const note = el("p", { class: "muted", text: `${links.frame_count} frames` });
  box.replaceChildren(list, note, frames);
}

function renderGantt(g) {
  const box = document.getElementById("gantt");
  const span = g.span_s || 1;
  const pct = (s) => `${Math.min(100, (100 * s) / span).toFixed(3)}%`;
  const rows = g.rows.map((task) => {
    const lane = el("div", { class: "lane" });
    for (const bar of g.bars.filter((b) => b.task === task)) {
      const end = bar.end_s === null ? span : bar.end_s;
      if (bar.queued_s !== null && bar.queued_s < bar.start_s) {
        lane.append(el("div", { class: "seg queued",
          style: `left:${pct(bar.queued_s)};width:${pct(bar.start_s - bar.queued_s)}` }));
      }
      const done = bar.progress === null || bar.progress === undefined ? "" : `, ${Math.round(100 * bar.progress)}% done`;
      const seg = el("div", {
        class: `seg ${bar.outcome}${bar.stuck ? " stuck" : ""}`, "data-outcome": bar.stuck ? "stuck" : bar.outcome,
        title: `${task} attempt ${bar.attempt}: ${bar.stuck ? "stuck" : bar.outcome}${done}, ${(end - bar.start_s).toFixed(2)} s`,
        style: `left:${pct(bar.start_s)};width:${pct(Math.max(end - bar.start_s, 0))}`,
      });
      if (bar.outcome === "running" && bar.progress !== null && bar.progress !== undefined) {
        seg.append(el("div", { class: "fill", style: `width:${(100 * bar.progress).toFixed(1)}%` }));
      }
      lane.append(seg);
    }
    return el("div", { class: "row", "data-task": task }, el("div", { class: "name", text: task }), lane);
  });
  const ticks = el("div", { class: "ticks" });
  for (let i = 0; i <= 5; i++) {
    ticks.append(el("span", { class: "tick", style: `left:${i * 20}%`, text: `${((span * i) / 5).toFixed(1)} s` }));
  }
  const axis = el("div", { class: "axis" }, el("div", {}), ticks);
  box.replaceChildren(...(rows.length ? [...rows, axis] : [el("p", { class: "muted", text: "no task has started yet" })]));
}

function renderEvents(log) {
  const v = log.verification;
  const badgeNode = document.getElementById("verification");
  badgeNode.className = `verify ${v.ok ? "ok" : "bad"}`;
  badgeNode.textContent = v.ok
    ? `verified: ${v.events} events, hash chain and head agree`
    : `FAILED at version ${v.first_bad_version}: ${v.problem}`;
  const body = document.querySelector("#events tbody");
  for (const e of log.events) {
    body.prepend(el("tr", { "data-version": e.version },
      el("td", { class: "num", text: e.version }),
      el("td", { class: "muted", text: e.time.replace("T", " ").slice(11, 23) }),
      el("td", { text: e.event }),
      el("td", { class: "muted", text: e.actor }),
      el("td", {}, el("code", { text: e.task })),
      el("td", { class: "num", text: e.attempt }),
      el("td", { class: "muted", text: e.detail })));
  }
}

async function refreshDiagrams(id) {
  for (const box of document.querySelectorAll("[data-diagram-box]")) {
    const name = box.dataset.diagramBox;
    const response = await fetch(`/diagrams/${name}.svg?course=${id}&inline=1`);
    if (response.ok) box.innerHTML = await response.text();  // our own server's SVG
  }
}

function operatorForm(id) {
  const form = document.getElementById("operator");
  const out = document.getElementById("operator-result");
  form.elements.token.value = sessionStorage.getItem("coursegen-token") || "";
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const action = event.submitter ? event.submitter.value : "pause";
    const token = form.elements.token.value;
    sessionStorage.setItem("coursegen-token", token);
    const response = await fetch(`/operator/courses/${id}/${action}`, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Authorization: `Bearer ${token}`,
        "X-Coursegen-Operator": form.elements.operator.value,
      },
      body: JSON.stringify({ reason: form.elements.reason.value }),
    });
    const body = await response.json().catch(() => ({}));
    out.textContent = response.ok ? `${action}: done` : `${action}: ${body.title || response.status}: ${body.detail || ""}`;
  });
}

if (document.body.dataset.page === "courses") coursesPage();
if (document.body.dataset.page === "course") coursePage();
