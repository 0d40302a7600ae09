// btclient's web page: everything goes through the Transmission RPC this
// page was served with, the X-Transmission-Session-Id handshake included.
"use strict";

const RPC = "/transmission/rpc";
const FIELDS = ["id", "name", "hashString", "status", "error", "errorString", "percentDone",
  "totalSize", "rateDownload", "rateUpload", "peersConnected", "metadataPercentComplete"];
const STATUS = ["Stopped", "Waiting to check", "Checking", "Waiting to download",
  "Downloading", "Waiting to seed", "Seeding"];
const REFRESH_MS = 1500;

let sessionId = "";

// rpc calls one method; a 409 hands out the session id and the call is sent
// again once with it.
async function rpc(method, args) {
  const body = JSON.stringify({ method, arguments: args || {} });
  for (let attempt = 0; attempt < 2; attempt++) {
    const resp = await fetch(RPC, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Transmission-Session-Id": sessionId },
      body,
      credentials: "same-origin",
    });
    if (resp.status === 409) {
      sessionId = resp.headers.get("X-Transmission-Session-Id") || "";
      continue;
    }
    if (!resp.ok && !(resp.headers.get("Content-Type") || "").startsWith("application/json")) {
      throw new Error("HTTP " + resp.status + ": " + (await resp.text()).trim());
    }
    const out = await resp.json();
    if (out.result !== "success") {
      throw new Error(out.result);
    }
    return out.arguments || {};
  }
  throw new Error("the server kept refusing the session id");
}

function bytes(n) {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
}

function rate(n) { return bytes(n) + "/s"; }

function stateOf(t) {
  if (t.error) return "Error: " + t.errorString;
  if (t.status === 4 && t.metadataPercentComplete < 1) return "Fetching metadata";
  return STATUS[t.status] || "Unknown";
}

function say(text, kind) {
  const m = document.getElementById("message");
  m.textContent = text;
  m.className = kind || "";
}

// cell makes a table cell holding text.
function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function button(label, cls, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.className = cls;
  b.addEventListener("click", onClick);
  return b;
}

// act runs an action on one torrent, then refreshes at once.
async function act(method, args, done) {
  try {
    await rpc(method, args);
    if (done) say(done, "ok");
  } catch (e) {
    say(method + ": " + e.message, "error");
  }
  refresh();
}

function row(t) {
  const tr = document.createElement("tr");
  tr.dataset.id = t.id;
  tr.dataset.hash = t.hashString;
  tr.appendChild(cell(t.name, "name"));

  const progress = document.createElement("td");
  const bar = document.createElement("progress");
  bar.max = 1;
  bar.value = t.percentDone;
  const pct = document.createElement("span");
  pct.className = "pct";
  pct.textContent = Math.floor(t.percentDone * 1000) / 10 + " %";
  progress.append(bar, pct);
  tr.appendChild(progress);

  tr.appendChild(cell(t.totalSize ? bytes(t.totalSize) : "?", "num"));
  const state = stateOf(t);
  tr.appendChild(cell(state, "state state-" + state.split(":")[0].toLowerCase().replace(/ /g, "-")));
  tr.appendChild(cell(rate(t.rateDownload), "num down"));
  tr.appendChild(cell(rate(t.rateUpload), "num up"));
  tr.appendChild(cell(String(t.peersConnected), "num peers"));

  const actions = document.createElement("td");
  actions.className = "actions";
  if (t.status === 0) {
    actions.appendChild(button("Start", "start", () => act("torrent-start", { ids: [t.id] })));
  } else {
    actions.appendChild(button("Stop", "stop", () => act("torrent-stop", { ids: [t.id] })));
  }
  actions.appendChild(button("Remove", "remove", () => {
    if (confirm("Remove " + t.name + "? Its files stay.")) {
      act("torrent-remove", { ids: [t.id] }, "removed " + t.name);
    }
  }));
  actions.appendChild(button("Remove + data", "remove remove-data", () => {
    if (confirm("Remove " + t.name + " and delete its files?")) {
      act("torrent-remove", { ids: [t.id], "delete-local-data": true }, "removed " + t.name + " and its files");
    }
  }));
  tr.appendChild(actions);
  return tr;
}

let refreshing = false;

async function refresh() {
  if (refreshing) return;
  refreshing = true;
  try {
    const [got, stats] = await Promise.all([rpc("torrent-get", { fields: FIELDS }), rpc("session-stats")]);
    const rows = document.getElementById("rows");
    rows.replaceChildren(...got.torrents.map(row));
    document.getElementById("empty").hidden = got.torrents.length > 0;
    document.getElementById("totals").textContent =
      stats.torrentCount + " torrents · ↓ " + rate(stats.downloadSpeed) + " · ↑ " + rate(stats.uploadSpeed);
    document.body.dataset.updated = String(Date.now());
  } catch (e) {
    say("cannot reach the daemon: " + e.message, "error");
  } finally {
    refreshing = false;
  }
}

function added(out) {
  const t = out["torrent-added"] || out["torrent-duplicate"];
  return (out["torrent-duplicate"] ? "already there: " : "added: ") + t.name;
}

async function addMagnet(ev) {
  ev.preventDefault();
  const input = document.getElementById("magnet");
  const link = input.value.trim();
  if (!link) return;
  try {
    const out = await rpc("torrent-add", { filename: link, paused: document.getElementById("paused").checked });
    say(added(out), "ok");
    input.value = "";
  } catch (e) {
    say("add: " + e.message, "error");
  }
  refresh();
}

// base64 of a file's bytes, as torrent-add's metainfo.
function readBase64(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result).replace(/^data:[^,]*,/, ""));
    r.onerror = () => reject(r.error);
    r.readAsDataURL(file);
  });
}

async function addFiles(ev) {
  for (const file of ev.target.files) {
    try {
      const metainfo = await readBase64(file);
      const out = await rpc("torrent-add", { metainfo, paused: document.getElementById("paused").checked });
      say(added(out), "ok");
    } catch (e) {
      say(file.name + ": " + e.message, "error");
    }
  }
  ev.target.value = "";
  refresh();
}

// search asks the overlay's index (btclient-search); each result is added
// with one click, as its magnet link.
async function search(ev) {
  ev.preventDefault();
  const query = document.getElementById("query").value.trim();
  if (!query) return;
  const table = document.getElementById("results");
  try {
    const out = await rpc("btclient-search", { query, limit: 50 });
    const rows = out.results.map((r) => {
      const tr = document.createElement("tr");
      tr.dataset.hash = r.info_hash;
      tr.appendChild(cell(r.name, "name"));
      tr.appendChild(cell(bytes(r.size), "num"));
      tr.appendChild(cell(String(r.providers), "num providers"));
      tr.appendChild(cell(r.info_hash, "hash"));
      const actions = document.createElement("td");
      actions.appendChild(button("Add", "add-result", async () => {
        try {
          say(added(await rpc("torrent-add", { filename: r.magnet, paused: document.getElementById("paused").checked })), "ok");
        } catch (e) {
          say("add: " + e.message, "error");
        }
        refresh();
      }));
      tr.appendChild(actions);
      return tr;
    });
    document.getElementById("result-rows").replaceChildren(...rows);
    table.hidden = false;
    say(rows.length + (rows.length === 1 ? " result" : " results") + " for “" + query + "”", "ok");
  } catch (e) {
    table.hidden = true;
    say("search: " + e.message, "error");
  }
}

document.getElementById("add-form").addEventListener("submit", addMagnet);
document.getElementById("search-form").addEventListener("submit", search);
document.getElementById("file").addEventListener("change", addFiles);
refresh();
setInterval(refresh, REFRESH_MS);
