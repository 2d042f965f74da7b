// StreamSnatcher dashboard: renders the snapshots /events sends and posts the person's actions.
// Everything coming from the server is put in the page as text, never as HTML.
"use strict";

const token = document.querySelector('meta[name="streamsnatcher-token"]').content;
const list = document.getElementById("list");
const rowTpl = document.getElementById("row");
const rows = new Map();
let latest = [];

const running = new Set(["new", "learning", "probing", "downloading", "recording", "merging"]);

function post(path, body) {
  const opts = { method: "POST", headers: { "X-StreamSnatcher-Token": token }, credentials: "same-origin" };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  return fetch(path, opts).then(async (r) => {
    if (!r.ok) throw new Error((await r.text()).trim() || r.statusText);
    return r.status === 204 ? null : r.json();
  });
}

function fmtBytesPerSec(b) {
  if (!b) return "–";
  if (b >= 1e6) return (b / 1e6).toFixed(1) + " MB/s";
  return (b / 1e3).toFixed(0) + " kB/s";
}

function fmtETA(s) {
  if (s < 0 || !isFinite(s)) return "–";
  s = Math.round(s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const two = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${two(m)}:${two(sec)}` : `${m}:${two(sec)}`;
}

function safeHref(u) {
  try {
    const p = new URL(u);
    return p.protocol === "http:" || p.protocol === "https:" ? p.href : "";
  } catch (e) {
    return "";
  }
}

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

function makeRow(id) {
  const li = rowTpl.content.firstElementChild.cloneNode(true);
  li.dataset.id = id;
  li.querySelectorAll("button[data-action]").forEach((b) => {
    b.addEventListener("click", () => {
      const action = b.dataset.action;
      if (action === "delete" && !window.confirm("Delete this session and its segments?")) return;
      b.disabled = true;
      post(`/api/streams/${encodeURIComponent(id)}/${action}`)
        .catch((e) => setText(li.querySelector(".reason"), e.message))
        .finally(() => render(latest));
    });
  });
  return li;
}

function fill(li, s) {
  li.className = "stream " + s.state;
  const st = li.querySelector(".state");
  st.className = "state " + s.state;
  const label = s.phase && s.phase !== s.state ? `${s.state} · ${s.phase}` : s.state;
  setText(st, s.live ? `LIVE · ${fmtETA(s.recorded)} recorded · ${label}` : label);
  const where = s.host || "(unknown host)";
  setText(li.querySelector(".host"), s.title ? `${s.title} · ${where}` : where);
  const page = li.querySelector(".page");
  const href = safeHref(s.page || "");
  setText(page, s.page || "");
  if (href) page.href = href; else page.removeAttribute("href");

  const pct = s.total > 0 ? Math.min(100, (100 * s.done) / s.total) : 0;
  li.querySelector(".bar-fill").style.width = pct.toFixed(1) + "%";
  setText(li.querySelector(".segs"), s.total > 0 ? `${s.done} / ${s.total}` : `${s.done} / ?`);
  setText(li.querySelector(".missing"), String(s.missing));
  setText(li.querySelector(".gaps"), String(s.gaps));
  setText(li.querySelector(".failed"), String(s.failed));
  setText(li.querySelector(".mb"), s.mb.toFixed(1));
  setText(li.querySelector(".speed"), running.has(s.state) ? fmtBytesPerSec(s.speed) : "–");
  setText(li.querySelector(".eta"), fmtETA(s.eta));
  // One line per distinct cause (the server groups the failed segments), not the error as one wall of text.
  const causes = (s.causes || []).filter((c) => c !== s.reason);
  const why = [s.reason, ...causes, s.retries].filter(Boolean).join("\n");
  setText(li.querySelector(".reason"), why);
  setText(li.querySelector(".template"), s.template);

  const hs = li.querySelector(".headers");
  const key = s.headers.map((h) => h.name + "=" + h.value).join("\n");
  if (hs.dataset.key !== key) {
    hs.dataset.key = key;
    hs.replaceChildren(...s.headers.map((h) => {
      const span = document.createElement("span");
      span.textContent = h.name;
      span.title = h.value;
      return span;
    }));
    if (!s.headers.length) hs.textContent = "none";
  }

  const out = li.querySelector(".out");
  if (s.file) {
    let a = out.querySelector("a");
    if (!a) {
      a = document.createElement("a");
      a.className = "file";
      out.replaceChildren(a);
    }
    a.href = s.file;
    a.setAttribute("download", s.output);
    setText(a, "⬇ " + s.output);
  } else if (out.firstChild) {
    out.replaceChildren();
  }

  const done = s.state === "done";
  const active = running.has(s.state);
  for (const b of li.querySelectorAll("button[data-action]")) {
    switch (b.dataset.action) {
      case "resume": b.disabled = done || active; break;
      case "pause": b.disabled = done || !active; setText(b, s.live ? "Stop" : "Pause"); break;
      case "merge": case "allow-gaps": b.disabled = done; break;
      default: b.disabled = false;
    }
  }
}

function render(streams) {
  latest = streams;
  const seen = new Set();
  streams.forEach((s, i) => {
    seen.add(s.id);
    let li = rows.get(s.id);
    if (!li) {
      li = makeRow(s.id);
      rows.set(s.id, li);
    }
    fill(li, s);
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
  });
  for (const [id, li] of rows) {
    if (!seen.has(id)) {
      li.remove();
      rows.delete(id);
    }
  }
  document.getElementById("empty").hidden = streams.length > 0;
  setText(document.getElementById("count"), streams.length ? `(${streams.length})` : "");
}

function connect() {
  const live = document.getElementById("live");
  const es = new EventSource("/events");
  es.addEventListener("streams", (ev) => {
    live.className = "live";
    setText(live, "live");
    render(JSON.parse(ev.data));
  });
  es.addEventListener("error", () => {
    live.className = "live off";
    setText(live, "reconnecting…");
  });
}

document.getElementById("get").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const f = ev.target;
  const msg = document.getElementById("get-msg");
  const num = (name) => Number(f.elements[name].value || 0);
  const body = {
    url: f.elements.url.value.trim(),
    pad: num("pad"),
    count: num("count"),
    duration: f.elements.duration.value.trim(),
    segment_seconds: num("segment_seconds"),
    referer: f.elements.referer.value.trim(),
  };
  msg.className = "msg";
  setText(msg, "starting…");
  post("/api/get", body)
    .then((r) => {
      msg.className = "msg ok";
      setText(msg, `started session ${r.id}`);
    })
    .catch((e) => {
      msg.className = "msg err";
      setText(msg, e.message);
    });
});

connect();
