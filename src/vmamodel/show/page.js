// vmamodel show: the page's script. Steps run down, addresses across (gaps compressed).
// The data are VMA versions with the step each appeared and disappeared at; the state at a
// step is reached from the current one by applying those deltas, so only visible rows cost.
// The data are gzipped JSON in base64, unpacked by the browser itself (no request is made).
async function unpack(id) {
  const text = atob(document.getElementById(id).textContent.trim());
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return JSON.parse(await new Response(stream).text());
}

unpack("vmamodel-data").then(function (D) {
  "use strict";
  const T0 = performance.now();
  const T_PARSED = T0;
  // The side panel's data (events, merge decisions, hooks) come after the first drawing.
  const NO_DETAIL = { ev: [], mg: [], hk: [], vev: [] };
  let detailData = null;
  const detail = () => detailData || NO_DETAIL;
  const recordEvents = (k) => (detail().vev[k] || []).map((i) => detail().ev[V.b[k]][i]);
  const V = D.v, S = D.st;
  const NV = V.a.length, NS = S.t.length;
  const ROW = 22, RULER = 28, GAP_UNITS = 2.5, SEP_UNITS = 3, PAGE = 4096;
  const CHANGE_MARK = { created: "+", split: "/", merged: "=", flags: "~", resized: ">",
                        anon_vma: "@", changed: "*" };
  const CHANGE_COLOUR = { created: "#1a7f37", split: "#bf8700", merged: "#0969da",
                          flags: "#8250df", resized: "#0550ae", anon_vma: "#57606a",
                          changed: "#57606a" };
  const PERM_COLOUR = { "---": "#d0d4d9", "r--": "#a5d0f0", "rw-": "#a8dcb0",
                        "r-x": "#f4b39a", "rwx": "#f6c85f", "-w-": "#f0e68c" };
  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };

  function human(n) {
    const units = [["E", 60], ["P", 50], ["T", 40], ["G", 30], ["M", 20], ["K", 10]];
    for (const [u, s] of units) {
      const m = Math.pow(2, s);
      if (n >= m) return (Math.round(n / m * 10) / 10).toString() + u;
    }
    return n + "B";
  }
  const hex = (n) => "0x" + n.toString(16);
  const perms = (k) => D.perms[V.pm[k]] || "----";
  const hex8 = (n) => n.toString(16).padStart(8, "0");
  function maps(k) {  // the maps line, put back together from its pieces
    const whole = V.mx[k];
    if (whole !== undefined) return whole;
    const prefix = hex8(V.a[k]) + "-" + hex8(V.e[k]) + " " + D.perms[V.pm[k]] + " " +
      D.offsets[V.of[k]] + " " + D.devs[V.dv[k]] + " ";
    const name = D.names[V.nm[k]];
    return name ? prefix.padEnd(D.namePad) + " " + name : prefix;
  }
  const change = (k) => D.changes[V.c[k]];
  const reason = (k) => D.reasons[V.r[k]];
  const nameOf = (k) => D.names[V.nm[k]];

  // -- deltas: records born and died at each step (counting sort by step) ----------------
  function byStep(col) {
    const off = new Int32Array(NS + 2);
    for (let k = 0; k < NV; k++) if (col[k] >= 0 && V.b[k] !== V.d[k]) off[col[k] + 1]++;
    for (let s = 0; s <= NS; s++) off[s + 1] += off[s];
    const order = new Int32Array(off[NS + 1]);
    const fill = off.slice();
    for (let k = 0; k < NV; k++) if (col[k] >= 0 && V.b[k] !== V.d[k]) order[fill[col[k]]++] = k;
    return { off, order };
  }
  const BORN = byStep(V.b), DIED = byStep(V.d);
  const alive = new Set();
  let cur = -1;  // the step whose state `alive` holds (-1: before the first)
  function moveTo(s) {
    while (cur < s) {
      cur++;
      for (let i = DIED.off[cur]; i < DIED.off[cur + 1]; i++) alive.delete(DIED.order[i]);
      for (let i = BORN.off[cur]; i < BORN.off[cur + 1]; i++) alive.add(BORN.order[i]);
    }
    while (cur > s) {
      for (let i = BORN.off[cur]; i < BORN.off[cur + 1]; i++) alive.delete(BORN.order[i]);
      for (let i = DIED.off[cur]; i < DIED.off[cur + 1]; i++) alive.add(DIED.order[i]);
      cur--;
    }
  }
  function stateAt(s) {
    moveTo(s);
    return Array.from(alive).sort((a, b) => V.s[a] - V.s[b] || V.a[a] - V.a[b]);
  }

  // -- the address axis: every boundary any step has, gaps that nothing ever maps squeezed --
  const axes = [];
  let totalUnits = 0;
  (function buildAxes() {
    for (let sp = 0; sp < D.spaces.length; sp++) {
      const cover = new Map();
      for (let k = 0; k < NV; k++) {
        if (V.s[k] !== sp) continue;
        cover.set(V.a[k], (cover.get(V.a[k]) || 0) + 1);
        cover.set(V.e[k], (cover.get(V.e[k]) || 0) - 1);
      }
      const bp = Float64Array.from(cover.keys()).sort();
      const ux = new Float64Array(bp.length), mapped = new Uint8Array(bp.length);
      let depth = 0, u = totalUnits + (sp ? SEP_UNITS : 0);
      const origin = u;
      for (let i = 0; i < bp.length; i++) {
        ux[i] = u;
        depth += cover.get(bp[i]);
        if (i + 1 < bp.length) {
          mapped[i] = depth > 0 ? 1 : 0;
          const size = bp[i + 1] - bp[i];
          u += depth > 0 ? 1 + Math.log2(Math.max(1, size / PAGE)) : GAP_UNITS;
        }
      }
      axes.push({ bp, ux, mapped, origin, end: u });
      totalUnits = u;
    }
  })();
  function unitOf(sp, addr) {
    const ax = axes[sp], bp = ax.bp;
    let lo = 0, hi = bp.length - 1;
    if (hi < 0) return ax.origin;
    if (addr <= bp[0]) return ax.ux[0];
    if (addr >= bp[hi]) return ax.ux[hi];
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (bp[mid] <= addr) lo = mid; else hi = mid;
    }
    return ax.ux[lo] + (ax.ux[hi] - ax.ux[lo]) * (addr - bp[lo]) / (bp[hi] - bp[lo]);
  }

  // -- view state ---------------------------------------------------------------------------
  const timeline = $("timeline"), view = $("view"), spacer = $("spacer");
  const band = $("band"), ruler = $("ruler"), stepsBox = $("steps");
  const bctx = band.getContext("2d"), rctx = ruler.getContext("2d");
  let anchorX = -1;  // where the pointer last was over the picture: keys and buttons zoom there
  const anchor = () => (anchorX >= 0 ? anchorX : W / 2);
  let charW = 7, zoom = 1, panU = 0, selectedStep = -1, selectedVma = -1, W = 0, H = 0;
  const X = (sp, addr) => (unitOf(sp, addr) - panU) * zoom;

  function fit() {
    zoom = Math.max(1e-9, (W - 8) / Math.max(1, totalUnits));
    panU = -4 / zoom;
    schedule();
  }
  function zoomAt(factor, px) {
    const u = panU + px / zoom;
    zoom = Math.min(Math.max(zoom * factor, 1e-6), 1e7);
    panU = u - px / zoom;
    schedule();
  }
  function resize() {
    const dpr = window.devicePixelRatio || 1;
    const h = timeline.clientHeight;
    view.style.height = h + "px";
    spacer.style.height = Math.max(0, NS * ROW + RULER - h) + "px";
    const firstFit = W === 0;
    W = band.clientWidth; H = Math.max(0, h - RULER);
    for (const [c, w, hh] of [[band, W, H], [ruler, W, RULER]]) {
      c.width = Math.max(1, Math.round(w * dpr)); c.height = Math.max(1, Math.round(hh * dpr));
      c.getContext("2d").setTransform(dpr, 0, 0, dpr, 0, 0);
    }
    if (firstFit) fit(); else schedule();
  }

  let pending = false;
  function schedule() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; render(); });
  }
  function visibleRows() {
    const top = timeline.scrollTop;
    const first = Math.max(0, Math.floor(top / ROW));
    const last = Math.min(NS - 1, Math.floor((top + H) / ROW));
    return { top, first, last };
  }

  function render() {
    const { top, first, last } = visibleRows();
    renderSteps(top, first, last);
    renderRuler();
    bctx.clearRect(0, 0, W, H);
    bctx.font = "11px ui-monospace, monospace";
    bctx.textBaseline = "middle";
    charW = bctx.measureText("m").width;
    for (let r = first; r <= last; r++) renderRow(r, r * ROW - top);
  }

  function renderRow(r, y) {
    if (r === selectedStep) { bctx.fillStyle = "#dbe9f9"; bctx.fillRect(0, y, W, ROW); }
    moveTo(r);
    for (const k of alive) drawVma(k, y, V.b[k] === r);
    for (let i = DIED.off[r]; i < DIED.off[r + 1]; i++) {
      const k = DIED.order[i];
      if (!reason(k)) continue;
      const x0 = X(V.s[k], V.a[k]), x1 = X(V.s[k], V.e[k]);
      if (x1 < 0 || x0 > W) continue;
      bctx.save();
      bctx.setLineDash([3, 2]); bctx.strokeStyle = "#cf222e"; bctx.lineWidth = 1.5;
      bctx.strokeRect(x0 + 1, y + 4, Math.max(2, x1 - x0 - 2), ROW - 8);
      bctx.restore();
    }
  }

  function drawVma(k, y, isNew) {
    const sp = V.s[k];
    let x0 = X(sp, V.a[k]), x1 = X(sp, V.e[k]);
    if (x1 < 0 || x0 > W) return;
    if (x1 - x0 < 2) x1 = x0 + 2;  // a page is always visible
    const p = perms(k);
    bctx.fillStyle = PERM_COLOUR[p.slice(0, 3)] || "#e0c3f0";
    bctx.fillRect(x0 + 0.5, y + 3, x1 - x0 - 1, ROW - 6);
    if (p[3] === "s") { bctx.fillStyle = "rgba(0,0,0,.25)"; bctx.fillRect(x0 + 0.5, y + 3, x1 - x0 - 1, 3); }
    if (k === selectedVma) { bctx.strokeStyle = "#1d2125"; bctx.lineWidth = 2;
      bctx.strokeRect(x0 + 1, y + 2, x1 - x0 - 2, ROW - 4); }
    else if (isNew) { bctx.strokeStyle = CHANGE_COLOUR[change(k)]; bctx.lineWidth = 2;
      bctx.strokeRect(x0 + 1.5, y + 3.5, x1 - x0 - 3, ROW - 7); }
    const cx0 = Math.max(x0, 0) + 4, room = Math.min(x1, W) - cx0 - 4;
    if (room > 24) {
      const name = nameOf(k).split("/").pop();
      let label = (isNew ? CHANGE_MARK[change(k)] : "") + p + " " + human(V.e[k] - V.a[k]) + (name ? " " + name : "");
      if (label.length * charW > room) label = label.slice(0, Math.max(1, Math.floor(room / charW)));
      bctx.fillStyle = "#1d2125";
      bctx.fillText(label, cx0, y + ROW / 2);
    }
  }

  function renderRuler() {
    rctx.clearRect(0, 0, W, RULER);
    rctx.font = "10px ui-monospace, monospace";
    rctx.textBaseline = "top";
    // First the squeezed gaps (shaded, with their size), then the boundaries on top.
    for (const ax of axes) {
      for (let i = 0; i + 1 < ax.bp.length; i++) {
        if (ax.mapped[i]) continue;
        const x = (ax.ux[i] - panU) * zoom, x1 = (ax.ux[i + 1] - panU) * zoom;
        if (x1 < 0 || x > W) continue;
        rctx.fillStyle = "#eef0f3"; rctx.fillRect(x, 13, x1 - x, RULER - 13);
        const t = "≈" + human(ax.bp[i + 1] - ax.bp[i]);
        if (rctx.measureText(t).width < x1 - x - 2) {
          rctx.fillStyle = "#6e7781"; rctx.fillText(t, x + 2, 15);
        }
      }
    }
    let lastEnd = -1e9;
    for (let sp = 0; sp < axes.length; sp++) {
      const ax = axes[sp];
      if (D.spaces.length > 1) {
        const x = (ax.origin - panU) * zoom;
        rctx.fillStyle = "#8250df"; rctx.fillText(D.spaces[sp], Math.max(2, x + 2), 15);
      }
      for (let i = 0; i < ax.bp.length; i++) {
        const x = (ax.ux[i] - panU) * zoom;
        if (x < -100 || x > W) continue;
        rctx.fillStyle = "#8c959f"; rctx.fillRect(x, RULER - 6, 1, 6);
        const t = ax.bp[i].toString(16);
        const w = rctx.measureText(t).width;
        if (x > lastEnd + 4 && x + w < W) {
          rctx.fillStyle = "#57606a"; rctx.fillText(t, x + 2, 2); lastEnd = x + w;
        }
      }
    }
  }

  const pool = [];
  function renderSteps(top, first, last) {
    const n = Math.max(0, last - first + 1);
    while (pool.length < n) {
      const d = el("div", "step");
      d.setAttribute("role", "option");
      d.append(el("span", "ln"), el("span", "call"), el("span", "res"));
      stepsBox.append(d); pool.push(d);
    }
    for (let i = 0; i < pool.length; i++) {
      const d = pool[i], r = first + i;
      if (i >= n) { d.hidden = true; continue; }
      d.hidden = false;
      d.dataset.step = String(r);
      d.style.top = (r * ROW - top) + "px";
      d.className = "step" + (r === selectedStep ? " selected" : "") + (S.ok[r] ? "" : " err") + (S.x[r] ? " fail" : "");
      d.setAttribute("aria-selected", r === selectedStep ? "true" : "false");
      d.children[0].textContent = S.l[r] === null ? "#" + (r + 1) : "L" + S.l[r];
      d.children[1].textContent = S.t[r];
      d.children[2].textContent = S.r[r] ? " = " + S.r[r] : "";
      d.title = S.t[r] + (S.r[r] ? " = " + S.r[r] : "");
    }
  }

  // -- the side panel -------------------------------------------------------------------------
  function list(parent, title, items, cls) {
    if (!items.length) return;
    parent.append(el("h3", "", title));
    const ul = el("ul");
    for (const item of items) {
      const li = el("li", typeof cls === "function" ? cls(item) : cls || "", typeof item === "string" ? item : item[0]);
      ul.append(li);
    }
    parent.append(ul);
  }

  function fragText(f) {
    const [sp, count, largest, ...rules] = f;
    let t = (D.spaces.length > 1 ? D.spaces[sp] + ": " : "") + count + (count === 1 ? " VMA" : " VMAs") + ", largest gap " + human(largest);
    const apart = [];
    for (let i = 0; i < rules.length; i += 2) apart.push(D.rules[rules[i]] + " ×" + rules[i + 1]);
    return t + (apart.length ? "; touching but kept apart by " + apart.join(", ") : "; no touching pair kept apart");
  }

  function showStep(s) {
    const box = $("step-detail");
    box.replaceChildren();
    box.append(el("h2", "", "Step " + (s + 1) + " of " + NS + (S.l[s] !== null ? " · line " + S.l[s] : "")));
    box.append(el("pre", "call", S.t[s]));
    box.append(el("div", "result " + (S.ok[s] ? "created" : "removed"), S.r[s] ? "= " + S.r[s] : ""));
    if (S.x[s]) box.append(el("div", "removed", "✗ " + S.x[s]));
    const X_ = detail();
    list(box, "Merge decisions", X_.mg[s] || [], (m) => m.startsWith("refused") ? "refused" : "merged");
    list(box, "Hook calls", X_.hk[s] || []);
    const diff = [];
    for (let i = BORN.off[s]; i < BORN.off[s + 1]; i++) {
      const k = BORN.order[i], c = change(k);
      const was = V.p[k] >= 0 ? "  (was " + maps(V.p[k]).split(/\s+/, 2).join(" ") + ")" : "";
      diff.push([CHANGE_MARK[c] + " " + c + ": " + maps(k) + was, c]);
    }
    for (let i = DIED.off[s]; i < DIED.off[s + 1]; i++) {
      const k = DIED.order[i];
      if (reason(k)) diff.push(["- removed (" + reason(k) + "): " + maps(k), "removed"]);
    }
    const DIFF_CAP = 200;  // the table below lists every VMA; this list is a summary
    const shown = diff.length > DIFF_CAP
      ? [...diff.slice(0, DIFF_CAP), ["… and " + (diff.length - DIFF_CAP) + " more changes", "hint"]] : diff;
    list(box, "Changes against the previous step", shown.length ? shown : [["no change", "hint"]], (d) => d[1]);
    list(box, "Fragmentation", S.fr[s].map(fragText));
    if (X_.ev[s] && X_.ev[s].length) {
      const det = el("details");
      det.append(el("summary", "", "All events (" + X_.ev[s].length + ")"));
      const ul = el("ul", "mono");
      for (const e of X_.ev[s]) ul.append(el("li", "", e));
      det.append(ul); box.append(det);
    }
    showState(s);
  }

  // The VMAs after the selected step: a table that holds only the rows in view.
  const TABLE_ROW = 18;
  const vmasBox = $("vmas-box");
  let tableStep = -1, tableKeys = [];
  function showState(s) {
    tableStep = s;
    tableKeys = stateAt(s);
    $("vmas-sizer").style.height = Math.max(1, tableKeys.length) * TABLE_ROW + "px";
    renderTable();
  }
  function renderTable() {
    const body = $("vmas").tBodies[0];
    body.replaceChildren();
    const first = Math.max(0, Math.floor(vmasBox.scrollTop / TABLE_ROW) - 5);
    const last = Math.min(tableKeys.length, first + Math.ceil((vmasBox.clientHeight || 400) / TABLE_ROW) + 10);
    $("vmas").style.top = first * TABLE_ROW + "px";
    for (const k of tableKeys.slice(first, last)) {
      const tr = el("tr", "vma" + (k === selectedVma ? " selected" : ""));
      tr.dataset.key = String(k);
      const isNew = V.b[k] === tableStep;
      tr.append(el("td", "chg " + (isNew ? change(k) : ""), isNew ? CHANGE_MARK[change(k)] : ""));
      tr.append(el("td", "maps", (D.spaces.length > 1 ? "[" + D.spaces[V.s[k]] + "] " : "") + maps(k)));
      body.append(tr);
    }
    if (!tableKeys.length) body.append(el("tr", "hint", "(no mappings)"));
  }
  vmasBox.addEventListener("scroll", renderTable, { passive: true });

  function showVma(k) {
    selectedVma = k;
    const box = $("vma-detail");
    box.replaceChildren();
    box.append(el("h2", "", "VMA #" + V.id[k] + (D.spaces.length > 1 ? " in " + D.spaces[V.s[k]] : "")));
    const dl = el("dl", "kv");
    const life = "steps " + (V.b[k] + 1) + "–" + (V.d[k] >= 0 ? V.d[k] : NS) + (V.d[k] >= 0 && reason(k) ? " (then " + reason(k) + ")" : "");
    for (const [key, value] of [["maps", maps(k)], ["VmFlags", D.flags[V.f[k]]],
      ["anon_vma", V.an[k] >= 0 ? "#" + V.an[k] : "none (not faulted)"],
      ["vm_ops", D.ops[V.o[k]] || "none (anonymous)"], ["size", human(V.e[k] - V.a[k])],
      ["range", hex(V.a[k]) + "–" + hex(V.e[k])], ["this version", life], ["made by", change(k) + " at step " + (V.b[k] + 1)]]) {
      dl.append(el("dt", "", key), el("dd", "field-" + key.replace(/\W/g, "_"), value));
    }
    box.append(dl);
    box.append(el("h3", "", "Events that made it"));
    let hops = 0;
    for (let j = k; j >= 0 && hops < 30; j = V.p[j], hops++) {
      const head = el("div", change(j), "step " + (V.b[j] + 1) + " · " + change(j) + " · " + S.t[V.b[j]]);
      box.append(head);
      const ul = el("ul", "mono events");
      const events = recordEvents(j);
      for (const e of events) ul.append(el("li", "", e));
      if (!events.length) ul.append(el("li", "hint", "(no event names it; seen in the state)"));
      box.append(ul);
    }
    for (const tr of document.querySelectorAll("#vmas tr.vma")) tr.classList.toggle("selected", Number(tr.dataset.key) === k);
    schedule();
  }

  function selectStep(s, reveal) {
    if (!NS) return;
    s = Math.max(0, Math.min(NS - 1, s));
    selectedStep = s;
    $("goto").value = String(s + 1);
    if (reveal) {
      const top = timeline.scrollTop;
      if (s * ROW < top) timeline.scrollTop = s * ROW;
      else if ((s + 1) * ROW > top + H) timeline.scrollTop = (s + 1) * ROW - H;
    }
    showStep(s);
    schedule();
  }

  // -- input ----------------------------------------------------------------------------------
  const tip = $("tip");
  function hit(ev) {
    const rect = band.getBoundingClientRect();
    const mx = ev.clientX - rect.left, my = ev.clientY - rect.top;
    const r = Math.floor((my + timeline.scrollTop) / ROW);
    if (r < 0 || r >= NS) return { r: -1, k: -1 };
    moveTo(r);
    for (const k of alive) {
      const x0 = X(V.s[k], V.a[k]), x1 = Math.max(X(V.s[k], V.e[k]), x0 + 2);
      if (x0 <= mx && mx < x1) return { r, k };
    }
    return { r, k: -1 };
  }
  let drag = null;
  band.addEventListener("mousedown", (ev) => {
    drag = { x: ev.clientX, y: ev.clientY, panU, top: timeline.scrollTop, moved: false };
  });
  window.addEventListener("mousemove", (ev) => {
    if (drag) {
      const dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) { drag.moved = true; band.classList.add("dragging"); }
      if (drag.moved) { panU = drag.panU - dx / zoom; timeline.scrollTop = drag.top - dy; schedule(); }
      return;
    }
    if (ev.target !== band) { tip.hidden = true; return; }
    anchorX = ev.clientX - band.getBoundingClientRect().left;
    const { k } = hit(ev);
    if (k < 0) { tip.hidden = true; return; }
    tip.textContent = maps(k) + "\nVmFlags: " + D.flags[V.f[k]] + "\n" + change(k) + " at step " + (V.b[k] + 1);
    tip.hidden = false;
    tip.style.left = Math.min(ev.clientX + 12, window.innerWidth - tip.offsetWidth - 4) + "px";
    tip.style.top = (ev.clientY + 14) + "px";
  });
  window.addEventListener("mouseup", (ev) => {
    if (!drag) return;
    const wasDrag = drag.moved;
    drag = null; band.classList.remove("dragging");
    if (wasDrag || ev.target !== band) return;
    const { r, k } = hit(ev);
    if (r >= 0) selectStep(r, false);
    if (k >= 0) showVma(k);
  });
  band.addEventListener("mouseleave", () => { tip.hidden = true; });
  band.addEventListener("wheel", (ev) => {
    const rect = band.getBoundingClientRect();
    if (ev.ctrlKey || ev.metaKey) {
      ev.preventDefault();
      zoomAt(Math.exp(-ev.deltaY * 0.002), ev.clientX - rect.left);
    } else if (ev.shiftKey || Math.abs(ev.deltaX) > Math.abs(ev.deltaY)) {
      ev.preventDefault();
      panU += (ev.shiftKey ? ev.deltaY : ev.deltaX) / zoom;
      schedule();
    }
  }, { passive: false });
  stepsBox.addEventListener("click", (ev) => {
    const d = ev.target.closest(".step");
    if (d) selectStep(Number(d.dataset.step), false);
  });
  $("vmas").addEventListener("click", (ev) => {
    const tr = ev.target.closest("tr.vma");
    if (tr) showVma(Number(tr.dataset.key));
  });
  $("zoom-in").addEventListener("click", () => zoomAt(2, anchor()));
  $("zoom-out").addEventListener("click", () => zoomAt(0.5, anchor()));
  $("zoom-fit").addEventListener("click", fit);
  $("goto").addEventListener("change", () => selectStep(Number($("goto").value) - 1, true));
  window.addEventListener("keydown", (ev) => {
    if (ev.target instanceof HTMLInputElement) return;
    if (ev.key === "ArrowDown" || ev.key === "j") { selectStep(selectedStep + 1, true); ev.preventDefault(); }
    else if (ev.key === "ArrowUp" || ev.key === "k") { selectStep(selectedStep - 1, true); ev.preventDefault(); }
    else if (ev.key === "+" || ev.key === "=") zoomAt(1.5, anchor());
    else if (ev.key === "-") zoomAt(1 / 1.5, anchor());
    else if (ev.key === "0") fit();
  });
  timeline.addEventListener("scroll", schedule, { passive: true });
  window.addEventListener("resize", resize);

  // -- start ----------------------------------------------------------------------------------
  $("title").textContent = D.title;
  document.title = D.title + " · vmamodel show";
  $("count").textContent = NS + " steps, " + NV + " VMA versions";
  $("goto").max = String(NS);
  const legend = $("legend");
  for (const [p, c] of Object.entries(PERM_COLOUR).slice(0, 5)) {
    const s = el("span", "", p); s.style.setProperty("--c", c); legend.append(s);
  }
  for (const c of ["created", "split", "merged", "flags"]) {
    const s = el("span", c, CHANGE_MARK[c] + " " + c);
    s.style.setProperty("--c", "#fff"); s.style.setProperty("--b", CHANGE_COLOUR[c]); legend.append(s);
  }
  const r = el("span", "removed", "- removed"); r.style.setProperty("--c", "#fff");
  r.style.setProperty("--b", "#cf222e"); legend.append(r);
  const T_SETUP = performance.now();
  resize();
  render();
  const T_DRAWN = performance.now();
  document.body.dataset.drawn = "1";
  unpack("vmamodel-detail").then((x) => {
    detailData = x;
    selectStep(selectedStep < 0 ? 0 : selectedStep, false);
    if (selectedVma >= 0) showVma(selectedVma);
    document.body.dataset.timing = JSON.stringify({
      unpacked: T0, setup: T_SETUP - T_PARSED, draw: T_DRAWN - T_SETUP,
      panel: performance.now() - T_DRAWN });
    document.body.dataset.ready = "1";
  });
});
