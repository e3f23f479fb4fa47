// The zkv status page: asks this node for its view of the cluster
// (GET /v1/cluster) every second and redraws the tables in place.
"use strict";

const pollEvery = 1000; // ms between views
const answerWithin = 3000; // ms before a view request counts as failed
const seen = new Map(); // node ID -> its last row, kept when it leaves the view

const byId = (id) => document.getElementById(id);

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function yesNo(b) { return b ? "yes" : "no"; }

function duration(ms) {
  if (!ms) return "-";
  return ms < 1000 ? ms + " ms" : (ms / 1000).toFixed(2) + " s";
}

function memberRow(m, leader) {
  const tr = document.createElement("tr");
  tr.dataset.node = m.node;
  const down = !m.reachable;
  tr.dataset.role = down ? "unreachable" : m.role;
  if (down) tr.className = "down";
  else if (m.node === leader) tr.className = "leader";
  cell(tr, m.node);
  if (down) {
    cell(tr, "unreachable", "bad");
    for (let i = 0; i < 8; i++) cell(tr, "-");
    cell(tr, "no", "bad").title = m.error || "";
    cell(tr, m.in_zookeeper === false ? "left ZooKeeper" : "-");
    return tr;
  }
  cell(tr, m.role);
  cell(tr, m.epoch);
  cell(tr, m.applied_revision);
  cell(tr, m.lag, m.lag > 0 ? "warn" : "");
  cell(tr, m.keys);
  cell(tr, yesNo(m.stale), m.stale ? "bad" : "");
  cell(tr, yesNo(m.ready), m.ready ? "" : "bad").title = m.not_ready || "";
  cell(tr, m.zookeeper, m.zookeeper === "connected" ? "" : "bad");
  cell(tr, m.nats, m.nats === "connected" ? "" : "bad");
  cell(tr, "yes");
  const page = cell(tr, "");
  if (m.http) {
    const a = document.createElement("a");
    a.href = location.protocol + "//" + m.http + "/";
    a.textContent = m.http;
    page.appendChild(a);
  }
  return tr;
}

function render(v) {
  byId("node").textContent = v.node;
  byId("leader").textContent = v.leader || "none";
  byId("epoch").textContent = v.epoch;
  byId("leader-revision").textContent = v.leader_revision;

  const rows = new Map();
  for (const m of v.members) rows.set(m.node, m);
  for (const [id, m] of seen) {
    if (!rows.has(id)) rows.set(id, { node: id, reachable: false, in_zookeeper: false, error: "not in ZooKeeper any more" });
  }
  for (const m of v.members) seen.set(m.node, m);
  const body = document.createElement("tbody");
  for (const id of [...rows.keys()].sort()) body.appendChild(memberRow(rows.get(id), v.leader));
  byId("members").tBodies[0].replaceWith(body);

  const eb = document.createElement("tbody");
  for (const e of [...v.elections].reverse()) {
    const tr = document.createElement("tr");
    cell(tr, new Date(e.at).toLocaleTimeString());
    cell(tr, e.leader);
    cell(tr, e.epoch);
    cell(tr, e.previous || "-");
    cell(tr, e.previous ? duration(e.leaderless_ms) : "first seen");
    eb.appendChild(tr);
  }
  byId("elections").tBodies[0].replaceWith(eb);
}

function setState(text, cls) {
  const p = byId("state");
  p.textContent = text;
  p.className = cls;
}

async function poll() {
  try {
    const r = await fetch("/v1/cluster", { cache: "no-store", signal: AbortSignal.timeout(answerWithin) });
    const body = await r.json();
    if (!r.ok) throw new Error(body.error ? body.error.code + ": " + body.error.message : "HTTP " + r.status);
    render(body);
    setState("live, updated " + new Date(body.time).toLocaleTimeString(), "live");
  } catch (e) {
    setState("this node does not answer (" + e.message + "); retrying", "bad");
  } finally {
    setTimeout(poll, pollEvery);
  }
}

poll();
