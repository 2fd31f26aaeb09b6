/* roam field: the live dashboard.
 *
 * Plain JavaScript, no build step; Plotly (served by roam field from /static, no internet
 * needed) draws the map. Everything comes from the server-sent events of /api/events:
 *   event: state  the whole field (GET /api/state's JSON), at connect and every second;
 *   event: line   {board, host, via, line} for each log line as it arrives.
 * The stream reconnects by itself (EventSource's own retry, plus a watchdog when it stalls).
 *
 * For the benchmark: window.roamLatency gets {board, b, s, recv_ms} for every line received;
 * document.body.dataset.ready is "1" once the first state has been drawn.
 */
"use strict";

(function () {
  const FEED_MAX = 50; // lines shown
  const FEED_KEEP = 500; // lines kept (so the filter can be switched off again)
  const LATENCY_MAX = 20000;
  const MAP_MIN_MS = 500; // at most two map redraws a second
  const FEED_MIN_MS = 100;
  const REBOOT_RECENT_S = 60;
  const STALE_MS = 5000; // no message for this long: the stream is stuck, open a new one
  const QUIET_EVENTS = new Set(["app_tx", "app_rx", "log_stats"]);
  const WARN = "#e8590c";
  const COLOR = { agent: "#1864ab", fixed: "#495057", mobile: "#6741d9", link: "#7950f2" };
  const MODE_TEXT = {
    running: "running",
    silent: "silent",
    never: "never heard",
    safe_mode: "safe mode",
    repl: "at the REPL",
  };

  window.roamLatency = window.roamLatency || [];
  const latency = window.roamLatency;

  const $ = (id) => document.getElementById(id);
  let state = null;
  let addrName = {}; // home address -> board name
  let lastStateMs = 0;
  let rendered = false;

  // -- small helpers ---------------------------------------------------------------------------

  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === null || v === undefined || v === false) continue;
        if (k === "class") el.className = v;
        else el.setAttribute(k, v === true ? "" : String(v));
      }
    }
    for (const c of kids.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : String(c));
    }
    return el;
  }

  function dur(s) {
    if (s === null || s === undefined || !isFinite(s)) return "?";
    if (s < 0) s = 0;
    if (s < 10) return s.toFixed(1) + " s";
    if (s < 90) return Math.round(s) + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }

  const pad = (n, w) => String(n).padStart(w || 2, "0");
  function clock(t, ms) {
    const d = new Date(t * 1000);
    const s = pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
    return ms ? s + "." + pad(d.getMilliseconds(), 3) : s;
  }

  const nameOf = (v) => (typeof v === "string" && addrName[v] ? addrName[v] : v);
  const sortedBoards = (st, pred) =>
    Object.keys(st.boards)
      .sort()
      .filter((n) => pred(st.boards[n]))
      .map((n) => [n, st.boards[n]]);

  // -- what needs a look -----------------------------------------------------------------------

  /** Why a board is flagged (null: it is fine); sev "bad" for safe mode and the REPL. */
  function flagsOf(b) {
    const why = [];
    let sev = "warn";
    if (b.mode === "never") why.push("never heard");
    else if (b.mode === "silent") why.push("silent, last heard " + dur(b.last_seen_s) + " ago");
    else if (b.mode === "safe_mode" || b.mode === "repl") {
      why.push(MODE_TEXT[b.mode]);
      sev = "bad";
    }
    if (typeof b.rebooted_s === "number" && b.rebooted_s < REBOOT_RECENT_S) {
      why.push(
        "rebooted " + dur(b.rebooted_s) + " ago" + (b.boot !== null ? " (boot " + b.boot + ")" : "")
      );
    }
    return why.length ? { why, sev } : null;
  }

  function badges(b, f) {
    const out = [h("span", { class: "badge mode-" + b.mode }, MODE_TEXT[b.mode] || b.mode)];
    if (typeof b.rebooted_s === "number" && b.rebooted_s < REBOOT_RECENT_S) {
      out.push(h("span", { class: "badge reboot" }, "rebooted " + dur(b.rebooted_s) + " ago"));
    }
    if (b.crashes) {
      const c = b.last_crash;  // the last one: its error and where it was raised
      const title = c ? String(c.error) + (c.at ? " at " + c.at : "") : null;
      out.push(h("span", { class: "badge crash", title }, b.crashes + " crash" + (b.crashes > 1 ? "es" : "")));
    }
    return out;
  }

  let highlight = { name: null, until: 0 };
  function panelClass(name, b, f) {
    let c = "panel role-" + b.role;
    if (f) c += " flagged sev-" + f.sev;
    if (highlight.name === name && Date.now() < highlight.until) c += " highlight";
    return c;
  }

  function heard(b) {
    if (b.last_seen_s === null || b.last_seen_s === undefined) return "never";
    return (
      dur(b.last_seen_s) +
      " ago · " +
      b.lines +
      " lines" +
      (b.boot !== null && b.boot !== undefined ? " · boot " + b.boot : "")
    );
  }

  function showBoard(name) {
    const el = document.querySelector('.panel[data-board="' + CSS.escape(name) + '"]');
    if (!el) return;
    highlight = { name, until: Date.now() + 2000 };
    el.classList.add("highlight");
    el.scrollIntoView({ block: "nearest", behavior: "smooth" });
    setTimeout(() => el.classList.remove("highlight"), 2000);
  }

  // -- panels, kept in place (a panel is replaced only when what it shows changed) -------------

  function syncPanels(box, items, emptyText) {
    if (!items.length) {
      if (!box.querySelector(":scope > .empty")) box.replaceChildren(h("div", { class: "empty" }, emptyText));
      return;
    }
    for (const el of box.querySelectorAll(":scope > .empty")) el.remove();
    const old = new Map();
    for (const el of box.querySelectorAll(":scope > [data-board]")) old.set(el.dataset.board, el);
    let prev = null;
    for (const [key, el] of items) {
      let cur = old.get(key);
      if (cur) {
        old.delete(key);
        if (cur.outerHTML !== el.outerHTML) {
          cur.replaceWith(el);
          cur = el;
        }
      } else {
        cur = el;
      }
      const want = prev ? prev.nextSibling : box.firstChild;
      if (want !== cur) box.insertBefore(cur, want);
      prev = cur;
    }
    for (const el of old.values()) el.remove();
  }

  function rssiRow(agent, v, serving) {
    const num = typeof v === "number";
    const pct = num ? Math.max(2, Math.min(100, ((v + 100) / 70) * 100)) : 0;
    const cls = !num ? "" : v < -80 ? "low" : v < -67 ? "mid" : "";
    return h(
      "div",
      { class: "row" + (serving ? " serving" : ""), "data-agent": agent, title: serving ? "serving agent" : null },
      h("span", { class: "an" }, agent),
      h("span", { class: "bar" }, h("i", { class: cls, style: "width:" + pct.toFixed(0) + "%" })),
      h("span", { class: "val" }, num ? v + " dBm" : String(v))
    );
  }

  function mobilePanel(name, b) {
    const f = flagsOf(b);
    const ho = b.last_handoff;
    const rssi = Object.entries(b.rssi || {}).sort((x, y) => (y[1] || -999) - (x[1] || -999));
    return h(
      "article",
      { class: panelClass(name, b, f), "data-board": name },
      h(
        "div",
        { class: "ph" },
        h("span", { class: "name" }, name),
        badges(b, f),
        h("span", { class: "meta" }, "node " + b.node + " · " + b.address)
      ),
      h(
        "dl",
        { class: "kv" },
        h("dt", null, "serving"),
        h("dd", { class: "serving" }, b.agent ? b.agent : h("span", { class: "none" }, "none")),
        h("dt", null, "hand-off"),
        h(
          "dd",
          { class: "handoff" },
          ho ? (ho.from || "?") + " → " + (ho.to || "?") + ", " + dur(ho.ago_s) + " ago" : "none yet"
        ),
        h("dt", null, "position"),
        h(
          "dd",
          null,
          b.estimate ? "≈ " + b.estimate[0] + ", " + b.estimate[1] + " m (estimated from RSSI)" : "unknown"
        ),
        h("dt", null, "heard"),
        h("dd", null, heard(b))
      ),
      h(
        "div",
        { class: "rssi" },
        rssi.length
          ? rssi.map(([a, v]) => rssiRow(a, v, a === b.agent))
          : h("div", { class: "none" }, "no RSSI report yet")
      )
    );
  }

  const STAT_KEYS = ["heap_free", "behind", "lost", "relayed", "stored", "sent"];
  function statsLine(stats) {
    const out = [];
    for (const k of STAT_KEYS) {
      if (!(k in (stats || {}))) continue;
      const v = stats[k];
      out.push(k === "heap_free" && typeof v === "number" ? "heap " + Math.round(v / 1024) + " kB" : k + " " + v);
      if (out.length >= 4) break;
    }
    return out.join(" · ");
  }

  function agentPanel(name, b) {
    const f = flagsOf(b);
    const binds = b.bindings || [];
    return h(
      "article",
      { class: panelClass(name, b, f), "data-board": name },
      h("div", { class: "ph" }, h("span", { class: "name" }, name), badges(b, f)),
      h(
        "dl",
        { class: "kv" },
        h("dt", null, "load"),
        h("dd", { class: "load" }, b.load === null || b.load === undefined ? "–" : String(b.load)),
        h("dt", null, "bindings"),
        h(
          "dd",
          { class: "bindings" },
          binds.length ? h("span", { class: "chips" }, binds.map((x) => h("span", { class: "chip" }, nameOf(x)))) : "none"
        ),
        h("dt", null, "heard"),
        h("dd", null, heard(b)),
        statsLine(b.stats) ? [h("dt", null, "stats"), h("dd", null, statsLine(b.stats))] : null
      )
    );
  }

  function otherPanel(name, b) {
    const f = flagsOf(b);
    return h(
      "article",
      { class: panelClass(name, b, f), "data-board": name },
      h("div", { class: "ph" }, h("span", { class: "name" }, name), badges(b, f), h("span", { class: "meta" }, b.role)),
      h(
        "dl",
        { class: "kv" },
        h("dt", null, "heard"),
        h("dd", null, heard(b)),
        h("dt", null, "last"),
        h("dd", null, b.last_event || "–")
      )
    );
  }

  // -- the page from one state -----------------------------------------------------------------

  function renderHeader(st) {
    const counts = {};
    for (const b of Object.values(st.boards)) counts[b.mode] = (counts[b.mode] || 0) + 1;
    const parts = [Object.keys(st.boards).length + " boards"];
    for (const m of ["running", "silent", "never", "safe_mode", "repl"]) {
      if (counts[m]) parts.push(counts[m] + " " + MODE_TEXT[m]);
    }
    parts.push("collecting for " + dur(st.uptime_s));
    $("summary").textContent = parts.join(" · ");
    $("clock").textContent = clock(st.t);
  }

  function renderFlags(st) {
    const items = [];
    for (const [name, b] of sortedBoards(st, () => true)) {
      const f = flagsOf(b);
      if (f) items.push([name, b, f]);
    }
    items.sort((x, y) => (x[2].sev === y[2].sev ? 0 : x[2].sev === "bad" ? -1 : 1));
    const ul = $("flags");
    if (!items.length) {
      ul.replaceChildren(h("li", { class: "none" }, "every board is running"));
      return;
    }
    ul.replaceChildren(
      ...items.map(([name, b, f]) =>
        h(
          "li",
          { class: "flag sev-" + f.sev, "data-flag": name, "data-mode": b.mode, title: "show " + name },
          h("b", null, name),
          h("span", { class: "why" }, f.why.join("; "))
        )
      )
    );
  }

  function renderFlows(st) {
    const body = $("flows").tBodies[0];
    if (!st.flows.length) {
      body.replaceChildren(h("tr", null, h("td", { class: "empty", colspan: 5 }, "no application traffic yet")));
      return;
    }
    body.replaceChildren(
      ...st.flows.map((f) => {
        const r = f.ratio;
        const cls = r === null ? "" : r >= 0.99 ? "ok" : r >= 0.9 ? "mid" : "low";
        const pct = r === null ? "–" : (r * 100).toFixed(r >= 0.9995 || r === 0 ? 0 : 1) + " %";
        return h(
          "tr",
          { "data-flow": f.flow },
          h("td", { class: "flow" }, f.src + " → " + f.dst),
          h("td", { class: "num sent" }, f.sent),
          h("td", { class: "num delivered" }, f.delivered),
          h("td", { class: "num ratio " + cls }, pct),
          h(
            "td",
            null,
            h("div", { class: "bar" }, h("i", { class: cls, style: "width:" + (r === null ? 0 : r * 100).toFixed(1) + "%" }))
          )
        );
      })
    );
  }

  function renderFooter(st) {
    const c = st.collector || {};
    const refused = c.refused || {};
    const parts = [
      "collector: ",
      h("b", null, c.frames ?? 0),
      " frames · ",
      h("b", null, c.lines ?? 0),
      " lines · refused:",
    ];
    for (const [k, v] of Object.entries(refused)) {
      parts.push(" ", h("span", { class: v && k !== "duplicate" ? "bad" : null }, k + " " + v));
    }
    if (c.out) parts.push(" · run directory ", h("span", { class: "path" }, c.out));
    $("collector").replaceChildren(...parts);

    const gaps = st.gaps || {};
    const all = [];
    for (const name of Object.keys(gaps).sort()) {
      for (const g of gaps[name]) all.push([name, g]);
    }
    if (!all.length) {
      $("gaps").replaceChildren("gaps: none");
      return;
    }
    const missing = all.reduce((a, [, g]) => a + g.lines, 0);
    const shown = all
      .slice(0, 8)
      .map(([name, g]) => name + " boot " + g.boot + " seq " + (g.from === g.to ? g.from : g.from + "–" + g.to));
    $("gaps").replaceChildren(
      "gaps: ",
      h("b", { class: "bad" }, missing + " lines missing"),
      " in " + all.length + " gap" + (all.length > 1 ? "s" : "") + ": " + shown.join(", "),
      all.length > 8 ? " … (+" + (all.length - 8) + " more)" : "",
      " — roam logs --pull fills them after the walk"
    );
  }

  function renderState(st) {
    state = st;
    lastStateMs = Date.now();
    document.body.classList.remove("stale");
    addrName = {};
    for (const [n, b] of Object.entries(st.boards)) if (b.address) addrName[b.address] = n;
    renderHeader(st);
    renderFlags(st);
    const mob = sortedBoards(st, (b) => b.role === "mobile");
    syncPanels($("mobiles"), mob.map(([n, b]) => [n, mobilePanel(n, b)]), "no mobile node in the fleet");
    renderFlows(st);
    const ag = sortedBoards(st, (b) => b.role === "agent");
    syncPanels($("agents"), ag.map(([n, b]) => [n, agentPanel(n, b)]), "no agent in the fleet");
    const oth = sortedBoards(st, (b) => b.role !== "agent" && b.role !== "mobile");
    syncPanels($("boards"), oth.map(([n, b]) => [n, otherPanel(n, b)]), "none");
    renderFooter(st);
    if (!rendered) {
      rendered = true;
      Promise.resolve(drawMap())
        .catch((e) => console.warn("map:", e))
        .then(() => {
          document.body.dataset.ready = "1";
        });
    } else {
      scheduleMap();
    }
  }

  // -- the map ---------------------------------------------------------------------------------

  let mapRange = null; // grows, never shrinks: the view stays put as estimates move
  function growRange(xs, ys) {
    if (!xs.length) return;
    let x0 = Math.min(...xs),
      x1 = Math.max(...xs),
      y0 = Math.min(...ys),
      y1 = Math.max(...ys);
    const padx = Math.max(8, (x1 - x0) * 0.12),
      pady = Math.max(8, (y1 - y0) * 0.15);
    x0 -= padx;
    x1 += padx;
    y0 -= pady;
    y1 += pady;
    if (mapRange) {
      x0 = Math.min(x0, mapRange[0]);
      x1 = Math.max(x1, mapRange[1]);
      y0 = Math.min(y0, mapRange[2]);
      y1 = Math.max(y1, mapRange[3]);
    }
    mapRange = [x0, x1, y0, y1];
  }

  function mapFigure(st) {
    const ag = { x: [], y: [], text: [], hover: [], color: [], line: [] };
    const fx = { x: [], y: [], text: [], hover: [], color: [], line: [] };
    const mb = { x: [], y: [], text: [], hover: [], color: [] };
    const link = { x: [], y: [] };
    const where = {};
    for (const [name, b] of sortedBoards(st, (b) => Array.isArray(b.pos))) {
      const f = flagsOf(b);
      const t = b.role === "agent" ? ag : fx;
      where[name] = b.pos;
      t.x.push(b.pos[0]);
      t.y.push(b.pos[1]);
      t.text.push(f ? name + " ⚠" : name);
      t.color.push(f ? WARN : b.role === "agent" ? COLOR.agent : COLOR.fixed);
      t.line.push(f ? "#7f2704" : "#ffffff");
      let hv = "<b>" + name + "</b> (" + b.role + ")<br>" + (MODE_TEXT[b.mode] || b.mode);
      if (typeof b.rebooted_s === "number" && b.rebooted_s < REBOOT_RECENT_S) hv += ", rebooted recently";
      if (b.role === "agent") {
        hv += "<br>load " + (b.load ?? "–") + "; bindings: " + ((b.bindings || []).map(nameOf).join(", ") || "none");
      }
      hv += "<br>at " + b.pos[0] + ", " + b.pos[1] + " m";
      t.hover.push(hv);
    }
    for (const [name, b] of sortedBoards(st, (b) => b.role === "mobile" && Array.isArray(b.estimate))) {
      const f = flagsOf(b);
      mb.x.push(b.estimate[0]);
      mb.y.push(b.estimate[1]);
      mb.text.push("<i>" + name + (f ? " ⚠" : "") + "</i>");
      mb.color.push(f ? WARN : COLOR.mobile);
      mb.hover.push(
        "<b>" + name + "</b> (mobile)<br>estimated from RSSI: ≈ " + b.estimate[0] + ", " + b.estimate[1] +
          " m<br>serving: " + (b.agent || "none") + "<br>" + (MODE_TEXT[b.mode] || b.mode)
      );
      const a = b.agent && where[b.agent];
      if (a) link.x.push(b.estimate[0], a[0], null), link.y.push(b.estimate[1], a[1], null);
    }
    growRange(ag.x.concat(fx.x, mb.x), ag.y.concat(fx.y, mb.y));
    const hovertemplate = "%{hovertext}<extra></extra>";
    const data = [
      {
        type: "scatter", mode: "lines", name: "serving agent", x: link.x, y: link.y,
        line: { color: COLOR.link, width: 2, dash: "dot" }, hoverinfo: "skip",
      },
      {
        type: "scatter", mode: "markers", name: "estimate spread", x: mb.x, y: mb.y,
        marker: { size: 46, color: mb.color, opacity: 0.12 }, hoverinfo: "skip",
      },
      {
        type: "scatter", mode: "markers+text", name: "agents", x: ag.x, y: ag.y, text: ag.text,
        hovertext: ag.hover, hovertemplate, textposition: "top center",
        textfont: { size: 13, color: ag.color }, cliponaxis: false,
        marker: { symbol: "square", size: 15, color: ag.color, line: { width: 1.5, color: ag.line } },
      },
      {
        type: "scatter", mode: "markers+text", name: "fixed boards", x: fx.x, y: fx.y, text: fx.text,
        hovertext: fx.hover, hovertemplate, textposition: "top center",
        textfont: { size: 12, color: fx.color }, cliponaxis: false,
        marker: { symbol: "diamond", size: 13, color: fx.color, line: { width: 1.5, color: fx.line } },
      },
      {
        type: "scatter", mode: "markers+text", name: "mobile (estimated)", x: mb.x, y: mb.y, text: mb.text,
        hovertext: mb.hover, hovertemplate, textposition: "bottom center",
        textfont: { size: 13, color: mb.color }, cliponaxis: false,
        marker: { symbol: "circle-open", size: 17, color: mb.color, line: { width: 3 } },
      },
    ];
    const axis = { zeroline: false, gridcolor: "#e9ecef", linecolor: "#adb5bd", mirror: true, ticks: "outside" };
    const layout = {
      margin: { l: 48, r: 14, t: 10, b: 40 },
      xaxis: Object.assign({ title: { text: "x (m)", standoff: 4 } }, axis,
        mapRange ? { range: [mapRange[0], mapRange[1]], autorange: false } : {}),
      yaxis: Object.assign({ title: { text: "y (m)", standoff: 4 }, scaleanchor: "x", scaleratio: 1 }, axis,
        mapRange ? { range: [mapRange[2], mapRange[3]], autorange: false } : {}),
      showlegend: false,
      hovermode: "closest",
      uirevision: "field",
      paper_bgcolor: "#ffffff",
      plot_bgcolor: "#fbfcfd",
      font: { family: "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', Arial, sans-serif", size: 12, color: "#14181d" },
    };
    return { data, layout };
  }

  const MAP_CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["select2d", "lasso2d"] };
  let mapTimer = null;
  let mapLast = 0;
  let mapKey = "";
  let mapClicks = false;

  function scheduleMap() {
    if (mapTimer !== null) return;
    mapTimer = setTimeout(drawMap, Math.max(0, mapLast + MAP_MIN_MS - Date.now()));
  }

  function drawMap() {
    mapTimer = null;
    mapLast = Date.now();
    const el = $("map");
    if (!state) return null;
    if (typeof Plotly === "undefined") {
      if (!el.querySelector(".nomap")) {
        el.replaceChildren(h("div", { class: "nomap" }, "the map needs /static/plotly.min.js, which did not load"));
      }
      return null;
    }
    const fig = mapFigure(state);
    const key = JSON.stringify(fig);
    if (key === mapKey) return null;
    mapKey = key;
    const p = Plotly.react(el, fig.data, fig.layout, MAP_CONFIG);
    if (!mapClicks && el.on) {
      mapClicks = true;
      el.on("plotly_click", (ev) => {
        const pt = ev && ev.points && ev.points[0];
        if (pt && pt.text) showBoard(String(pt.text).replace(/<\/?i>/g, "").replace(" ⚠", ""));
      });
    }
    return p;
  }

  // -- the event feed --------------------------------------------------------------------------

  let feedLines = []; // [{id, msg}], oldest first
  let feedPending = [];
  let feedTimer = null;
  let feedLast = 0;
  let feedId = 0;
  let hideQuiet = false;

  function category(ev) {
    if (QUIET_EVENTS.has(ev) || ev === "rssi") return "quiet";
    if (/crash|safe_mode|config_error|error|fail|timeout|refused|outage|lost/.test(ev)) return "bad";
    if (ev === "handoff" || ev === "bound" || ev === "unbound") return "move";
    if (/^binding_|^reg/.test(ev)) return "bind";
    return "";
  }

  function fmtValue(v) {
    if (v === null) return "null";
    if (typeof v === "string") return nameOf(v);
    if (typeof v === "number" || typeof v === "boolean") return String(v);
    if (Array.isArray(v)) return "[" + v.map(fmtValue).join(",") + "]";
    if (typeof v === "object") {
      return "{" + Object.entries(v).map(([k, x]) => nameOf(k) + ":" + fmtValue(x)).join(" ") + "}";
    }
    return String(v);
  }

  function feedRow(item, fresh) {
    const m = item.msg;
    const line = m.line || {};
    const ev = String(line.ev ?? "?");
    const fields = Object.entries(line)
      .filter(([k]) => !["t", "n", "b", "s", "ev"].includes(k))
      .map(([k, v]) => k + "=" + fmtValue(v))
      .join(" ");
    return h(
      "li",
      {
        class: "cat-" + (category(ev) || "none") + (fresh ? " fresh" : ""),
        "data-line-board": m.board,
        "data-b": line.b,
        "data-s": line.s,
        "data-ev": ev,
        title: JSON.stringify(line) + (m.via ? "  (relayed by " + m.via + ")" : ""),
      },
      h("span", { class: "tm" }, typeof m.host === "number" ? clock(m.host, true) : ""),
      h("span", { class: "bd" }, m.board),
      h("span", { class: "ev" }, ev),
      h("span", { class: "fields" }, fields.slice(0, 300), m.via ? h("span", { class: "via" }, "  via " + m.via) : null)
    );
  }

  const shown = (item) => !(hideQuiet && QUIET_EVENTS.has(item.msg.line && item.msg.line.ev));

  function scheduleFeed() {
    if (feedTimer !== null) return;
    feedTimer = setTimeout(drawFeed, Math.max(0, feedLast + FEED_MIN_MS - Date.now()));
  }

  function drawFeed(full) {
    feedTimer = null;
    feedLast = Date.now();
    const ol = $("feed");
    if (full === true) {
      feedPending = [];
      const rows = feedLines.filter(shown).slice(-FEED_MAX).reverse();
      ol.replaceChildren(...rows.map((it) => feedRow(it, false)));
    } else {
      const rows = feedPending.filter(shown).slice(-FEED_MAX);
      feedPending = [];
      if (!rows.length) return;
      const frag = document.createDocumentFragment();
      for (let i = rows.length - 1; i >= 0; i--) frag.append(feedRow(rows[i], true));
      for (const el of ol.querySelectorAll(":scope > .empty")) el.remove();
      ol.prepend(frag);
      while (ol.children.length > FEED_MAX) ol.lastElementChild.remove();
    }
    if (!ol.children.length) ol.append(h("li", { class: "empty" }, "no lines since the page opened"));
  }

  function onLine(msg) {
    const line = msg.line || {};
    if (!msg.replay) {
      // (a line the server replays to a new page is old news: not a latency sample)
      latency.push({ board: msg.board, b: line.b, s: line.s, recv_ms: Date.now() });
      if (latency.length > LATENCY_MAX) latency.splice(0, latency.length - LATENCY_MAX);
    }
    const item = { id: ++feedId, msg };
    feedLines.push(item);
    if (feedLines.length > FEED_KEEP) feedLines.splice(0, feedLines.length - FEED_KEEP);
    feedPending.push(item);
    if (feedPending.length > FEED_KEEP) feedPending.splice(0, feedPending.length - FEED_KEEP);
    scheduleFeed();
  }

  // -- the stream ------------------------------------------------------------------------------

  let es = null;
  let retryTimer = null;
  let retryMs = 1000;
  let lastMsgMs = 0;
  let openedMs = 0;

  function setConn(kind, text) {
    const el = $("conn");
    el.className = "conn conn-" + kind;
    el.textContent = text;
  }

  function connect() {
    retryTimer = null;
    if (es) es.close();
    setConn(state ? "down" : "wait", state ? "reconnecting…" : "connecting…");
    openedMs = Date.now();
    lastMsgMs = 0;
    es = new EventSource("/api/events");
    es.addEventListener("open", () => {
      retryMs = 1000;
    });
    es.addEventListener("state", (e) => {
      lastMsgMs = Date.now();
      let st;
      try {
        st = JSON.parse(e.data);
      } catch (err) {
        console.warn("bad state:", err);
        return;
      }
      setConn("live", "live");
      renderState(st);
    });
    es.addEventListener("line", (e) => {
      lastMsgMs = Date.now();
      try {
        onLine(JSON.parse(e.data));
      } catch (err) {
        console.warn("bad line:", err);
      }
    });
    es.onerror = () => {
      setConn("down", "reconnecting…");
      // EventSource retries a dropped connection by itself; a refused one (CLOSED) it gives up
      if (es && es.readyState === EventSource.CLOSED) reconnect();
    };
  }

  function reconnect() {
    if (es) {
      es.close();
      es = null;
    }
    if (retryTimer === null) {
      retryTimer = setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 10000);
    }
  }

  setInterval(() => {
    const now = Date.now();
    if (state && now - lastStateMs > 3000) {
      document.body.classList.add("stale");
      if (es && es.readyState !== EventSource.OPEN) setConn("down", "reconnecting…");
      else setConn("down", "no data for " + Math.round((now - lastStateMs) / 1000) + " s");
    }
    if (es && now - (lastMsgMs || openedMs) > STALE_MS) reconnect(); // stuck: a fresh stream
  }, 1000);

  // -- start -----------------------------------------------------------------------------------

  try {
    hideQuiet = localStorage.getItem("roam.hideQuiet") === "1";
  } catch (e) {
    hideQuiet = false;
  }
  const box = $("hide-traffic");
  box.checked = hideQuiet;
  box.addEventListener("change", () => {
    hideQuiet = box.checked;
    try {
      localStorage.setItem("roam.hideQuiet", hideQuiet ? "1" : "0");
    } catch (e) {
      /* private mode */
    }
    drawFeed(true);
  });
  $("flags").addEventListener("click", (e) => {
    const li = e.target.closest("[data-flag]");
    if (li) showBoard(li.dataset.flag);
  });
  drawFeed(true);
  connect();
})();
