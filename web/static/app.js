// Lightbox viewer. The server renders every frame (window/level, LUTs,
// resizing); this script only asks for the picture that matches the view
// and draws it. Newest request wins: while a render is in flight, further
// changes only replace the one pending request, so fast dragging or
// scrolling never builds a queue. Moving views are fetched as JPEG, the
// view at rest as lossless PNG.
"use strict";

(() => {
  const { $, el, personName, dicomDate, bytes, getJSON } = window.LB;

  const viewport = $("viewport");
  const canvas = $("canvas");
  const ctx = canvas.getContext("2d");

  const state = {
    files: [],
    presets: [],
    file: null, // summary row of the selected file
    meta: null, // its full header (GET /api/files/{id})
    frame: 0,
    // wl.mode: "default" (the file's first window, else min-max), "window",
    // "preset", "index" (a window of the file) or "minmax".
    wl: { mode: "default", c: null, w: null, preset: null, index: null },
    shown: null, // the window the last picture was rendered with {c, w}
    tool: "wl",
    zoom: 1, // relative to fit
    pan: { x: 0, y: 0 }, // CSS pixels from centred
    img: null, // ImageBitmap of the last picture
    imgExact: false, // last picture was lossless
    selectSeq: 0,
    // stack is a stored series (from /studies), scrolled across its
    // instances in Instance Number order, every frame of each in turn;
    // null when the viewer shows the testdata files.
    stack: null,
  };

  // ---------- formatting ----------
  function dicomTime(t) {
    if (!t || !/^\d{4}/.test(t)) return t || "";
    return `${t.slice(0, 2)}:${t.slice(2, 4)}`;
  }
  function num(v, digits = 2) {
    if (v === null || v === undefined || Number.isNaN(v)) return "";
    return Number.isInteger(v) ? String(v) : String(+v.toFixed(digits));
  }
  function spacing(s) {
    return s && s.length === 2 ? `${num(s[0], 3)} × ${num(s[1], 3)} mm` : "";
  }
  function sexName(s) {
    return { M: "Male", F: "Female", O: "Other" }[s] || s || "";
  }
  function age(birth, on) {
    if (!/^\d{8}$/.test(birth || "") || !/^\d{8}$/.test(on || "")) return "";
    let y = +on.slice(0, 4) - +birth.slice(0, 4);
    if (on.slice(4) < birth.slice(4)) y--;
    return y >= 0 && y < 150 ? `${y} y` : "";
  }

  // ---------- API ----------
  // ---------- list ----------
  function fileTitle(f) {
    return f.seriesDescription || f.studyDescription || f.name;
  }
  function renderList() {
    const list = $("file-list");
    const q = $("filter").value.trim().toLowerCase();
    const shown = state.files.filter((f) => !q || [f.name, f.patientName, f.patientId, f.studyDescription,
      f.seriesDescription, f.modality, f.bodyPart, f.transferSyntax, f.studyDate].join(" ").toLowerCase().includes(q));
    list.replaceChildren();
    $("file-count").textContent = state.files.length ? `${shown.length} of ${state.files.length}` : "";
    if (!shown.length) {
      list.append(el("li", { class: "empty-list", text: state.files.length ? "No image matches the filter." : "No DICOM files found." }));
      return;
    }
    for (const f of shown) {
      const sel = state.file && state.file.id === f.id;
      const li = el("li", {
        class: "file" + (sel ? " selected" : "") + (f.error ? " broken" : ""),
        "data-id": f.id, tabindex: "0", role: "button", "aria-current": sel ? "true" : null,
        onclick: () => select(f.id, 0),
        onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); select(f.id, 0); } },
      });
      const mod = f.error ? "ERR" : (f.modality || "—");
      li.append(el("div", { class: `modality m-${mod}` + (mod.length > 3 ? " long" : ""), text: mod, title: mod }));
      const main = el("div", { class: "file-main" });
      main.append(el("div", { class: "file-title", text: f.error ? f.name : fileTitle(f), title: f.name }));
      if (f.error) {
        main.append(el("div", { class: "file-error", text: f.error }));
      } else {
        const who = [personName(f.patientName), dicomDate(f.studyDate)].filter(Boolean).join(" · ");
        main.append(el("div", { class: "file-sub", text: who || f.name }));
        const meta = el("div", { class: "file-meta" });
        meta.append(el("span", { text: `${f.columns}×${f.rows}` }));
        if (f.frames > 1) meta.append(el("span", { class: "tag frames", text: `${f.frames} fr` }));
        if (f.lossy) meta.append(el("span", { class: "tag lossy", text: "LOSSY" }));
        meta.append(el("span", { text: bytes(f.size) }));
        main.append(meta);
      }
      li.append(main);
      list.append(li);
    }
    const sel = list.querySelector(".file.selected");
    if (sel) sel.scrollIntoView({ block: "nearest" });
  }

  async function loadFiles() {
    try {
      const { files } = await getJSON("/api/files");
      state.files = files || [];
    } catch (e) {
      state.files = [];
      showMessage("error", "Cannot load the image list", e.message);
    }
    renderList();
  }

  async function loadPresets() {
    try {
      const { presets } = await getJSON("/api/presets");
      state.presets = presets || [];
    } catch (_) {
      state.presets = [];
    }
    renderPresets();
  }

  // ---------- selection ----------
  // resetView starts a new image or stack at frame: the file's default
  // window, fitted, nothing of the previous one shown.
  function resetView(frame) {
    state.meta = null;
    state.frame = frame;
    state.img = null;
    state.shown = null;
    state.wl = { mode: "default", c: null, w: null, preset: null, index: null };
    state.zoom = 1;
    state.pan = { x: 0, y: 0 };
    closeDrawers();
  }

  async function select(id, frame) {
    const f = state.files.find((x) => x.id === id);
    if (!f) return;
    const seq = ++state.selectSeq;
    state.stack = null;
    state.file = f;
    resetView(Math.max(0, Math.min(frame | 0, Math.max(0, f.frames - 1))));
    renderList();
    updateHash();
    draw();
    if (f.error) {
      showMessage("error", "This file cannot be read", f.error);
      renderDetails();
      renderOverlays();
      renderFramebar();
      renderWindowPanel();
      return;
    }
    showMessage("loading");
    try {
      const d = await getJSON(`/api/files/${encodeURIComponent(id)}`);
      if (seq !== state.selectSeq) return;
      state.meta = d.meta;
    } catch (e) {
      if (seq !== state.selectSeq) return;
      showMessage("error", "Cannot read this file", e.message);
      return;
    }
    renderDetails();
    renderWindowPanel();
    renderFramebar();
    renderOverlays();
    if (f.frames < 1) {
      showMessage("error", "Nothing to show", "This instance has no pixel data.");
      return;
    }
    requestRender(false);
  }

  function updateHash() {
    if (!state.file) return;
    const h = state.stack ? `#series/${state.stack.seriesUID}/${state.frame + 1}` : `#${state.file.id}/${state.frame + 1}`;
    if (location.hash !== h) history.replaceState(null, "", h);
  }

  function showMessage(kind, title, text) {
    viewport.dataset.state = kind === "loading" ? "loading" : kind;
    $("spinner").hidden = kind !== "loading";
    if (kind === "loading") return;
    viewport.querySelector(".message-title").textContent = title || "";
    viewport.querySelector(".message-text").textContent = text || "";
  }

  // ---------- windows ----------
  function windowsOf(meta, i) {
    if (!meta) return [];
    const im = meta.Image || {};
    const pf = im.PerFrame && im.PerFrame[i];
    if (pf && pf.Windows && pf.Windows.length) return pf.Windows;
    return im.Windows || [];
  }
  function rescaleOf(meta, i) {
    const im = (meta && meta.Image) || {};
    const pf = im.PerFrame && im.PerFrame[i];
    return (pf && pf.Rescale) || im.Rescale || { RescaleSlope: 1, RescaleIntercept: 0 };
  }
  // currentWindow is the window the view asks for, as numbers when known.
  function currentWindow() {
    const wl = state.wl;
    switch (wl.mode) {
      case "window": return { c: wl.c, w: wl.w };
      case "preset": {
        const p = state.presets.find((x) => x.name === wl.preset);
        return p ? { c: p.center, w: p.width } : null;
      }
      case "index": {
        const w = windowsOf(state.meta, localFrame())[wl.index];
        return w ? { c: w.WindowCenter, w: w.WindowWidth } : null;
      }
      case "default": {
        const w = windowsOf(state.meta, localFrame())[0];
        return w ? { c: w.WindowCenter, w: w.WindowWidth } : state.shown;
      }
      default: return state.shown;
    }
  }
  function windowLabel() {
    const wl = state.wl;
    switch (wl.mode) {
      case "preset": {
        const p = state.presets.find((x) => x.name === wl.preset);
        return p ? p.label : wl.preset;
      }
      case "index": {
        const w = windowsOf(state.meta, localFrame())[wl.index];
        return (w && w.Explanation) || `File window ${wl.index + 1}`;
      }
      case "default": {
        const w = windowsOf(state.meta, localFrame())[0];
        if (w) return w.Explanation || "File window";
        const l = ((state.meta && state.meta.Image.VOILUTs) || [])[0];
        return l ? (l.Explanation || "VOI LUT") : "Min – max";
      }
      case "voilut": {
        const l = ((state.meta && state.meta.Image.VOILUTs) || [])[wl.index];
        return (l && l.Explanation) || `VOI LUT ${wl.index + 1}`;
      }
      case "minmax": return "Min – max";
      default: return "Custom";
    }
  }
  function setWindow(wl) {
    state.wl = Object.assign({ mode: "default", c: null, w: null, preset: null, index: null }, wl);
    renderWindowPanel();
    renderOverlays();
    requestRender(false);
  }

  function renderPresets() {
    const mod = state.meta && state.meta.Series && state.meta.Series.Modality;
    $("preset-note").hidden = !state.meta || mod === "CT";
    const box = $("presets");
    box.replaceChildren();
    state.presets.forEach((p, i) => {
      box.append(el("button", {
        class: "chip" + (state.wl.mode === "preset" && state.wl.preset === p.name ? " active" : ""),
        type: "button", "data-preset": p.name, title: `${p.label}: level ${p.center}, width ${p.width} HU — key ${i + 1}`,
        onclick: () => setWindow({ mode: "preset", preset: p.name }),
      },
      el("span", { class: "chip-row" }, el("span", { class: "chip-name", text: p.label }), i < 9 ? el("span", { class: "key", text: String(i + 1) }) : null),
      el("span", { class: "chip-val", text: `L ${num(p.center)}  W ${num(p.width)}` })));
    });
    if (!state.presets.length) box.append(el("span", { class: "muted", text: "No presets." }));
  }

  // isGrey: window/level applies only to MONOCHROME1/2; colour and
  // palette images are shown as stored.
  function isGrey() {
    const pi = state.meta && state.meta.Image && state.meta.Image.PhotometricInterpretation;
    return !!pi && pi.startsWith("MONOCHROME");
  }

  function renderWindowPanel() {
    const grey = isGrey();
    $("window-card").classList.toggle("disabled", !grey);
    const note = $("window-note");
    note.hidden = grey || !state.meta;
    if (state.meta && !grey) note.textContent = `${state.meta.Image.PhotometricInterpretation} image: shown with its own colours; window/level does not apply.`;
    renderPresets();
    const box = $("file-windows");
    box.replaceChildren();
    const ws = windowsOf(state.meta, localFrame());
    const luts = (state.meta && state.meta.Image && state.meta.Image.VOILUTs) || [];
    if (!ws.length && !luts.length) {
      box.append(el("span", { class: "none", text: state.meta ? "The file names no window." : "—" }));
    }
    ws.forEach((w, i) => {
      const active = (state.wl.mode === "index" && state.wl.index === i) || (state.wl.mode === "default" && i === 0);
      box.append(el("button", {
        class: "chip" + (active ? " active" : ""), type: "button", "data-window-index": i,
        onclick: () => setWindow({ mode: "index", index: i }),
      },
      el("span", { class: "chip-name", text: w.Explanation || `Window ${i + 1}` }),
      el("span", { class: "chip-val", text: `L ${num(w.WindowCenter)}  W ${num(w.WindowWidth)}` })));
    });
    luts.forEach((l, i) => {
      const active = (state.wl.mode === "voilut" && state.wl.index === i) || (state.wl.mode === "default" && !ws.length && i === 0);
      box.append(el("button", {
        class: "chip" + (active ? " active" : ""), type: "button", "data-voilut": i,
        onclick: () => setWindow({ mode: "voilut", index: i }),
      },
      el("span", { class: "chip-name", text: l.Explanation || `VOI LUT ${i + 1}` }),
      el("span", { class: "chip-val", text: `lookup table, ${l.Entries} entries` })));
    });
    $("minmax").classList.toggle("active", state.wl.mode === "minmax" || (state.wl.mode === "default" && !ws.length && !luts.length));
    const cw = currentWindow();
    const wc = $("wc"), ww = $("ww");
    if (document.activeElement !== wc) wc.value = cw ? num(cw.c) : "";
    if (document.activeElement !== ww) ww.value = cw ? num(cw.w) : "";
  }

  function applyTypedWindow() {
    const c = parseFloat($("wc").value), w = parseFloat($("ww").value);
    if (Number.isFinite(c) && Number.isFinite(w) && w > 0) setWindow({ mode: "window", c, w });
  }

  // ---------- details ----------
  function dl(rows) {
    const d = el("dl");
    for (const [k, v, cls] of rows) {
      if (v === "" || v === undefined || v === null) continue;
      d.append(el("dt", { text: k }), el("dd", { class: cls, text: v }));
    }
    return d.childNodes.length ? d : null;
  }
  function renderDetails() {
    const box = $("details");
    box.replaceChildren();
    const f = state.file;
    if (!f) { box.append(el("p", { class: "muted", text: "No image selected." })); return; }
    const m = state.meta;
    if (!m) {
      box.append(dl([["File", f.name], ["Size", bytes(f.size)]]));
      return;
    }
    const im = m.Image || {}, p = m.Patient || {}, st = m.Study || {}, se = m.Series || {}, ins = m.Instance || {};
    if (im.LossyImageCompression) {
      const ratio = im.LossyImageCompressionRatio && im.LossyImageCompressionRatio.length ? ` (ratio ${im.LossyImageCompressionRatio.map((r) => num(r, 1)).join(", ")}:1)` : "";
      box.append(el("div", { class: "alert" }, `Lossy compressed${ratio}: fine detail may differ from the acquisition.`));
    }
    const rs = rescaleOf(m, localFrame());
    const groups = [
      ["Patient", [["Name", personName(p.PatientName)], ["ID", p.PatientID], ["Birth date", dicomDate(p.PatientBirthDate)],
        ["Sex", sexName(p.PatientSex)], ["Age at study", age(p.PatientBirthDate, st.StudyDate)]]],
      ["Study", [["Description", st.StudyDescription], ["Date", [dicomDate(st.StudyDate), dicomTime(st.StudyTime)].filter(Boolean).join(" ")],
        ["Accession", st.AccessionNumber], ["Study ID", st.StudyID], ["Referring", personName(st.ReferringPhysicianName)]]],
      ["Series", [["Modality", se.Modality], ["Number", se.SeriesNumber], ["Description", se.SeriesDescription], ["Body part", se.BodyPartExamined]]],
      ["Image", [["Instance", ins.InstanceNumber], ["Size", `${im.Columns} × ${im.Rows}`], ["Frames", state.stack ? stackAt(state.frame).inst.frames : f.frames],
        ["Pixel spacing", spacing(im.PixelSpacing)], ["Imager spacing", spacing(im.ImagerPixelSpacing)],
        ["Slice thickness", im.SliceThickness ? `${num(im.SliceThickness)} mm` : ""],
        ["Photometric", im.PhotometricInterpretation],
        ["Bits", im.BitsStored ? `${im.BitsStored} stored / ${im.BitsAllocated} allocated${im.PixelRepresentation ? ", signed" : ""}` : ""],
        ["Rescale", rs && (rs.RescaleSlope !== 1 || rs.RescaleIntercept !== 0) ? `× ${num(rs.RescaleSlope, 4)} + ${num(rs.RescaleIntercept, 2)}${rs.RescaleType ? " " + rs.RescaleType : ""}` : ""],
        ["Transfer syntax", f.transferSyntax], ["", m.TransferSyntaxUID, "uid"],
        ["Compression", im.LossyImageCompression ? "Lossy" : "Lossless or none"],
        ["File", f.name], ["Image in series", state.stack ? `${stackAt(state.frame).k + 1} of ${state.stack.instances.length}` : ""]]],
    ];
    for (const [title, rows] of groups) {
      const d = dl(rows);
      if (d) box.append(el("div", { class: "group", text: title }), d);
    }
  }

  // ---------- overlays ----------
  function lines(box, rows) {
    box.replaceChildren();
    for (const r of rows) {
      if (!r) continue;
      const [text, cls] = Array.isArray(r) ? r : [r, ""];
      if (text) box.append(el("div", { class: cls, text }));
    }
  }
  function renderOverlays() {
    const f = state.file, m = state.meta;
    $("lossy").hidden = !(f && f.lossy);
    if (!f || !m) { for (const k of ["tl", "tr", "bl", "br"]) $(`ov-${k}`).replaceChildren(); return; }
    const p = m.Patient || {}, st = m.Study || {}, se = m.Series || {}, im = m.Image || {}, ins = m.Instance || {};
    lines($("ov-tl"), [
      [personName(p.PatientName), "strong"],
      p.PatientID && `ID ${p.PatientID}`,
      [dicomDate(p.PatientBirthDate), p.PatientSex].filter(Boolean).join("  "),
    ]);
    lines($("ov-tr"), [
      [st.StudyDescription, "strong"],
      [dicomDate(st.StudyDate), dicomTime(st.StudyTime)].filter(Boolean).join(" "),
      se.SeriesNumber || se.SeriesDescription ? `Se ${se.SeriesNumber || "–"}  ${se.SeriesDescription || ""}` : "",
      ins.InstanceNumber ? `Im ${ins.InstanceNumber}` : "",
    ]);
    const cw = currentWindow();
    const s = scale();
    const grey = isGrey();
    lines($("ov-bl"), [
      grey ? (cw ? `W ${num(cw.w, 1)}  L ${num(cw.c, 1)}` : "W –  L –") : "",
      [grey ? windowLabel() : im.PhotometricInterpretation, "dim"],
      f.frames > 1 ? `${state.stack ? "Img" : "Fr"} ${state.frame + 1} / ${f.frames}` : "",
      s ? `Zoom ${Math.round(s * 100)}%` : "",
      [state.img ? (state.imgExact ? "Lossless view" : "Preview") : "", "dim"],
    ]);
    lines($("ov-br"), [
      [[se.Modality, se.BodyPartExamined].filter(Boolean).join("  "), "strong"],
      `${im.Columns} × ${im.Rows}`,
      spacing(im.PixelSpacing || im.ImagerPixelSpacing),
      im.SliceThickness ? `Thk ${num(im.SliceThickness)} mm` : "",
      [f.transferSyntax, "dim"],
    ]);
  }

  // ---------- frames ----------
  function renderFramebar() {
    const f = state.file;
    const n = f ? Math.max(1, f.frames) : 1;
    const r = $("frame");
    r.max = String(n);
    r.value = String(state.frame + 1);
    r.disabled = n <= 1;
    $("prev").disabled = n <= 1;
    $("next").disabled = n <= 1;
    $("framebar").classList.toggle("single", n <= 1);
    $("frame-label").textContent = `${state.frame + 1} / ${n}`;
  }
  let settleTimer = 0;
  function goFrame(i, fast) {
    const f = state.file;
    if (!f || !state.meta || f.frames <= 1) return;
    const n = Math.max(0, Math.min(f.frames - 1, i));
    if (n === state.frame) return;
    state.frame = n;
    if (state.stack) stackFrameChanged();
    renderFramebar();
    renderOverlays();
    renderWindowPanel(); // enhanced CT may carry a window per frame
    updateHash();
    requestRender(fast);
  }

  // ---------- geometry ----------
  function fitScale() {
    const f = state.file;
    if (!f || !f.columns || !f.rows) return 0;
    const w = viewport.clientWidth, h = viewport.clientHeight;
    return Math.min(w / f.columns, h / f.rows);
  }
  function scale() { return fitScale() * state.zoom; }

  // targetSize is the render size that fills the displayed area at the
  // screen's resolution, in quarter-octave steps so that small resizes
  // reuse cached renders; never more than the image's own pixels.
  function targetSize() {
    const f = state.file;
    const dpr = window.devicePixelRatio || 1;
    let s = scale() * dpr;
    if (!(s > 0)) return null;
    s = Math.pow(2, Math.ceil(Math.log2(s) * 4) / 4);
    if (s >= 1) return null;
    return [Math.max(1, Math.ceil(f.columns * s)), Math.max(1, Math.ceil(f.rows * s))];
  }

  function renderURL(fast) {
    const f = state.file;
    const p = new URLSearchParams();
    const wl = state.wl;
    switch (wl.mode) {
      case "window": p.set("window", `${+wl.c.toFixed(3)},${+wl.w.toFixed(3)}`); break;
      case "preset": p.set("preset", wl.preset); break;
      case "index": p.set("windowIndex", String(wl.index)); break;
      case "voilut": p.set("voiLUT", String(wl.index)); break;
      case "minmax": p.set("minmax", ""); break;
      default: break;
    }
    const t = targetSize();
    if (t) { p.set("w", String(t[0])); p.set("h", String(t[1])); }
    if (fast) { p.set("format", "jpeg"); p.set("q", "85"); } else p.set("format", "png");
    if (state.stack) {
      const at = stackAt(state.frame);
      return `/api/instances/${encodeURIComponent(at.inst.sopInstanceUID)}/frames/${at.j}/render?${p}`;
    }
    return `/api/files/${encodeURIComponent(f.id)}/frames/${state.frame}/render?${p}`;
  }

  // ---------- rendering ----------
  let inflight = false;
  let wanted = null;
  function requestRender(fast) {
    if (!state.file || !state.meta || state.file.frames < 1) return;
    const id = state.stack ? stackAt(state.frame).inst.sopInstanceUID : state.file.id;
    wanted = { fast, url: renderURL(fast), id, seq: state.selectSeq };
    clearTimeout(settleTimer);
    if (fast) settleTimer = setTimeout(() => { if (!dragging) requestRender(false); }, 220);
    pump();
  }
  async function pump() {
    if (inflight || !wanted) return;
    const req = wanted;
    wanted = null;
    inflight = true;
    if (!state.img) showMessage("loading");
    $("spinner").hidden = false;
    try {
      const res = await fetch(req.url);
      if (req.seq !== state.selectSeq) return;
      if (!res.ok) {
        let msg = `${res.status} ${res.statusText}`;
        try { const b = await res.json(); if (b && b.error) msg = b.error; } catch (_) { /* keep status */ }
        state.img = null;
        draw();
        showMessage("error", res.status === 422 ? "This image cannot be displayed" : "Render failed", msg);
        return;
      }
      const win = res.headers.get("X-Lightbox-Window");
      const blob = await res.blob();
      const bmp = await createImageBitmap(blob);
      if (req.seq !== state.selectSeq) { bmp.close(); return; }
      if (state.img) state.img.close();
      state.img = bmp;
      state.imgExact = !req.fast;
      if (win) {
        const [c, w] = win.split(",").map(Number);
        if (Number.isFinite(c) && Number.isFinite(w)) state.shown = { c, w };
      }
      showMessage("loaded");
      viewport.dataset.rendered = `${req.id}/${req.url.match(/frames\/(\d+)/)[1]}`;
      viewport.dataset.renderedSize = `${bmp.width}x${bmp.height}`;
      viewport.dataset.query = req.url.split("?")[1] || "";
      draw();
      renderOverlays();
      if (!state.wl.mode || state.wl.mode === "default" || state.wl.mode === "minmax") renderWindowPanel();
    } catch (e) {
      if (req.seq === state.selectSeq) showMessage("error", "Render failed", e.message);
    } finally {
      inflight = false;
      $("spinner").hidden = !wanted;
      if (wanted) pump();
    }
  }

  function draw() {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(viewport.clientWidth * dpr));
    const h = Math.max(1, Math.round(viewport.clientHeight * dpr));
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, w, h);
    const f = state.file;
    if (!state.img || !f) return;
    const s = scale() * dpr;
    const dw = f.columns * s, dh = f.rows * s;
    const x = (w - dw) / 2 + state.pan.x * dpr;
    const y = (h - dh) / 2 + state.pan.y * dpr;
    ctx.imageSmoothingEnabled = s < 4; // show pixels as pixels when zoomed far in
    ctx.imageSmoothingQuality = "high";
    ctx.drawImage(state.img, x, y, dw, dh);
  }

  function zoomAt(factor, px, py) {
    const f = state.file;
    if (!f || !state.img) return;
    const old = scale();
    const z = Math.max(0.1, Math.min(40, state.zoom * factor));
    const now = fitScale() * z;
    if (!old || !now) return;
    const cx = viewport.clientWidth / 2 + state.pan.x, cy = viewport.clientHeight / 2 + state.pan.y;
    const ux = (px - cx) / old, uy = (py - cy) / old;
    state.zoom = z;
    state.pan.x = px - ux * now - viewport.clientWidth / 2;
    state.pan.y = py - uy * now - viewport.clientHeight / 2;
    draw();
    renderOverlays();
    scheduleResolution();
  }
  function fit() {
    state.zoom = 1;
    state.pan = { x: 0, y: 0 };
    draw();
    renderOverlays();
    scheduleResolution();
  }
  function actualPixels() {
    const fs = fitScale();
    if (!fs) return;
    state.zoom = 1 / (fs * (window.devicePixelRatio || 1));
    state.pan = { x: 0, y: 0 };
    draw();
    renderOverlays();
    scheduleResolution();
  }
  // After zooming or resizing, fetch a sharper render if the picture on
  // screen has fewer pixels than the display needs.
  let resTimer = 0;
  function scheduleResolution() {
    clearTimeout(resTimer);
    resTimer = setTimeout(() => {
      if (!state.img || !state.file) return;
      const t = targetSize();
      const need = t ? t[0] : state.file.columns;
      if (need > state.img.width) requestRender(false);
    }, 150);
  }

  // ---------- pointer ----------
  let dragging = null;
  viewport.addEventListener("contextmenu", (e) => e.preventDefault());
  viewport.addEventListener("pointerdown", (e) => {
    if (!state.file || !state.meta) return;
    viewport.focus({ preventScroll: true });
    let mode = state.tool;
    if (e.button === 2) mode = "wl";
    else if (e.button === 1) mode = "pan";
    else if (e.button !== 0) return;
    if (mode === "wl" && !isGrey()) return; // nothing to window on colour
    e.preventDefault();
    let start = currentWindow();
    if (!start) start = fallbackWindow();
    dragging = { mode, x: e.clientX, y: e.clientY, c: start.c, w: start.w, zoom: state.zoom, pan: { ...state.pan }, moved: false };
    viewport.setPointerCapture(e.pointerId);
    viewport.classList.add("dragging");
  });
  viewport.addEventListener("pointermove", (e) => {
    if (!dragging) return;
    const dx = e.clientX - dragging.x, dy = e.clientY - dragging.y;
    if (!dragging.moved && Math.abs(dx) + Math.abs(dy) < 2) return;
    dragging.moved = true;
    if (dragging.mode === "wl") {
      // Sensitivity follows the starting width, so a narrow brain window
      // and a wide bone window both respond in a usable way.
      const k = Math.max(Math.abs(dragging.w), 2) / 250;
      const w = Math.max(1, dragging.w + dx * k);
      const c = dragging.c + dy * k;
      state.wl = { mode: "window", c, w, preset: null, index: null };
      renderWindowPanel();
      renderOverlays();
      requestRender(true);
    } else if (dragging.mode === "pan") {
      state.pan = { x: dragging.pan.x + dx, y: dragging.pan.y + dy };
      draw();
    } else if (dragging.mode === "zoom") {
      const factor = Math.pow(1.01, -dy);
      const rect = viewport.getBoundingClientRect();
      const z = dragging.zoom * factor;
      zoomAt(z / state.zoom, dragging.x - rect.left, dragging.y - rect.top);
    }
  });
  function endDrag(e) {
    if (!dragging) return;
    const d = dragging;
    dragging = null;
    viewport.classList.remove("dragging");
    try { viewport.releasePointerCapture(e.pointerId); } catch (_) { /* already released */ }
    if (d.mode === "wl" && d.moved) requestRender(false);
  }
  viewport.addEventListener("pointerup", endDrag);
  viewport.addEventListener("pointercancel", endDrag);

  // fallbackWindow estimates the full stored range in output units, for a
  // drag that starts before the server has said which window it used.
  function fallbackWindow() {
    const im = (state.meta && state.meta.Image) || {};
    const bits = im.BitsStored || 8;
    const rs = rescaleOf(state.meta, localFrame());
    const lo = im.PixelRepresentation ? -Math.pow(2, bits - 1) : 0;
    const range = Math.pow(2, bits);
    const slope = rs.RescaleSlope || 1;
    return { c: (lo + range / 2) * slope + (rs.RescaleIntercept || 0), w: range * Math.abs(slope) };
  }

  let wheelAcc = 0;
  viewport.addEventListener("wheel", (e) => {
    if (!state.file) return;
    e.preventDefault();
    const unit = e.deltaMode === 1 ? 33 : e.deltaMode === 2 ? 400 : 1;
    if (e.ctrlKey || e.metaKey) {
      const rect = viewport.getBoundingClientRect();
      zoomAt(Math.pow(1.0015, -e.deltaY * unit), e.clientX - rect.left, e.clientY - rect.top);
      return;
    }
    wheelAcc += e.deltaY * unit;
    const step = 50;
    if (Math.abs(wheelAcc) >= step) {
      const n = Math.trunc(wheelAcc / step);
      wheelAcc -= n * step;
      goFrame(state.frame + n, true);
    }
  }, { passive: false });

  // ---------- keyboard ----------
  document.addEventListener("keydown", (e) => {
    const t = e.target;
    if (t && (t.tagName === "INPUT" && t.type !== "range")) {
      if (e.key === "Enter" && (t.id === "wc" || t.id === "ww")) applyTypedWindow();
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const inList = t && t.closest && t.closest(".file-list");
    switch (e.key) {
      case "ArrowDown": case "ArrowRight":
        if (inList && e.key === "ArrowDown") { moveInList(1); break; }
        goFrame(state.frame + 1, true); break;
      case "ArrowUp": case "ArrowLeft":
        if (inList && e.key === "ArrowUp") { moveInList(-1); break; }
        goFrame(state.frame - 1, true); break;
      case "PageDown": goFrame(state.frame + 10, true); break;
      case "PageUp": goFrame(state.frame - 10, true); break;
      case "Home": goFrame(0, false); break;
      case "End": goFrame(state.file ? state.file.frames - 1 : 0, false); break;
      case "f": case "F": fit(); break;
      case "0": actualPixels(); break;
      case "r": case "R": reset(); break;
      case "m": case "M": if (isGrey()) setWindow({ mode: "minmax" }); break;
      case "w": case "W": setTool("wl"); break;
      case "p": case "P": setTool("pan"); break;
      case "z": case "Z": setTool("zoom"); break;
      default: {
        const i = parseInt(e.key, 10);
        if (i >= 1 && i <= state.presets.length && i <= 9 && isGrey()) setWindow({ mode: "preset", preset: state.presets[i - 1].name });
        else return;
      }
    }
    e.preventDefault();
  });
  function moveInList(d) {
    const items = [...document.querySelectorAll(".file-list .file")];
    const i = items.indexOf(document.activeElement);
    const n = items[Math.max(0, Math.min(items.length - 1, i + d))];
    if (n) n.focus();
  }

  function setTool(tool) {
    state.tool = tool;
    viewport.dataset.tool = tool;
    for (const b of document.querySelectorAll(".tool[data-tool]")) b.classList.toggle("active", b.dataset.tool === tool);
  }
  function reset() {
    state.zoom = 1;
    state.pan = { x: 0, y: 0 };
    setWindow({ mode: "default" });
    draw();
  }

  // ---------- wiring ----------
  for (const b of document.querySelectorAll(".tool[data-tool]")) b.addEventListener("click", () => setTool(b.dataset.tool));
  $("fit").addEventListener("click", fit);
  $("actual").addEventListener("click", actualPixels);
  $("reset").addEventListener("click", reset);
  $("minmax").addEventListener("click", () => setWindow({ mode: "minmax" }));
  $("wc").addEventListener("change", applyTypedWindow);
  $("ww").addEventListener("change", applyTypedWindow);
  $("filter").addEventListener("input", () => (state.stack ? renderSeriesList() : renderList()));
  $("frame").addEventListener("input", (e) => goFrame(+e.target.value - 1, true));
  $("frame").addEventListener("change", (e) => goFrame(+e.target.value - 1, false));
  $("prev").addEventListener("click", () => goFrame(state.frame - 1, false));
  $("next").addEventListener("click", () => goFrame(state.frame + 1, false));

  function closeDrawers() { document.body.classList.remove("list-open", "panel-open"); $("scrim").hidden = true; }
  $("toggle-list").addEventListener("click", () => {
    const open = !document.body.classList.contains("list-open");
    closeDrawers();
    document.body.classList.toggle("list-open", open);
    $("scrim").hidden = !open;
  });
  $("toggle-panel").addEventListener("click", () => {
    const open = !document.body.classList.contains("panel-open");
    closeDrawers();
    document.body.classList.toggle("panel-open", open);
    $("scrim").hidden = !open;
  });
  $("scrim").addEventListener("click", closeDrawers);

  new ResizeObserver(() => { draw(); renderOverlays(); scheduleResolution(); }).observe(viewport);

  // ---------- stored series ----------
  // stackAt maps a position in the series to its instance k and the frame
  // j within it.
  function stackAt(i) {
    const ins = state.stack.instances;
    let lo = 0, hi = ins.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (ins[mid].start <= i) lo = mid; else hi = mid - 1;
    }
    return { k: lo, inst: ins[lo], j: i - ins[lo].start };
  }
  function localFrame() {
    return state.stack ? stackAt(state.frame).j : state.frame;
  }

  const metaCache = new Map(); // SOP Instance UID → header, most recent last
  async function instanceMeta(sop) {
    if (metaCache.has(sop)) {
      const d = metaCache.get(sop);
      metaCache.delete(sop);
      metaCache.set(sop, d);
      return d;
    }
    const d = await getJSON(`/api/instances/${encodeURIComponent(sop)}`);
    metaCache.set(sop, d);
    if (metaCache.size > 500) metaCache.delete(metaCache.keys().next().value);
    return d;
  }

  // stackFrameChanged follows the scroll onto another instance: its size
  // is known from the series listing at once, its header comes after
  // (the picture does not wait for it: the server renders from the
  // instance itself).
  function stackFrameChanged() {
    const at = stackAt(state.frame);
    const f = state.file;
    f.columns = at.inst.columns;
    f.rows = at.inst.rows;
    const sop = at.inst.sopInstanceUID;
    if (state.stack.sop === sop) return;
    state.stack.sop = sop;
    const seq = state.selectSeq;
    instanceMeta(sop).then((d) => {
      if (seq !== state.selectSeq || state.stack.sop !== sop) return;
      state.meta = d.meta;
      f.transferSyntax = d.transferSyntax;
      f.lossy = d.lossy;
      f.size = d.size;
      renderDetails();
      renderOverlays();
      renderWindowPanel();
    }).catch(() => { /* the overlay keeps the previous instance's header */ });
  }

  async function openSeries(uid, frame) {
    const seq = ++state.selectSeq;
    showMessage("loading");
    let list;
    try {
      list = await getJSON(`/api/series/${encodeURIComponent(uid)}/instances`);
    } catch (e) {
      showMessage("error", "Cannot open this series", e.message);
      return;
    }
    if (seq !== state.selectSeq) return;
    let start = 0;
    const instances = (list.instances || []).filter((x) => x.frames > 0).map((x) => {
      const r = Object.assign({}, x, { start });
      start += x.frames;
      return r;
    });
    if (!instances.length) {
      showMessage("error", "Nothing to show", "No instance of this series has pixel data.");
      return;
    }
    state.stack = { seriesUID: uid, studyUID: list.studyUID, instances, total: start, sop: null, series: state.stack && state.stack.studyUID === list.studyUID ? state.stack.series : null };
    state.file = { id: uid, name: "", frames: start, columns: instances[0].columns, rows: instances[0].rows, transferSyntax: "", lossy: false, size: 0 };
    resetView(Math.max(0, Math.min(frame | 0, start - 1)));
    updateHash();
    draw();
    renderSeriesList();
    const at = stackAt(state.frame);
    state.stack.sop = at.inst.sopInstanceUID;
    try {
      const d = await instanceMeta(at.inst.sopInstanceUID);
      if (seq !== state.selectSeq) return;
      state.meta = d.meta;
      Object.assign(state.file, { transferSyntax: d.transferSyntax, lossy: d.lossy, size: d.size });
    } catch (e) {
      if (seq === state.selectSeq) showMessage("error", "Cannot read this image", e.message);
      return;
    }
    renderDetails();
    renderWindowPanel();
    renderFramebar();
    renderOverlays();
    requestRender(false);
    if (!state.stack.series) {
      try {
        const s = await getJSON(`/api/studies/${encodeURIComponent(list.studyUID)}/series`);
        if (seq !== state.selectSeq) return;
        state.stack.series = s.series || [];
        state.stack.study = s;
      } catch (_) {
        state.stack.series = [];
      }
      renderSeriesList();
    }
  }

  // In series mode the sidebar lists the study's series.
  function renderSeriesList() {
    const st = state.stack;
    $("list-title").textContent = "Series";
    $("filter").placeholder = "Filter series…";
    const list = $("file-list");
    list.replaceChildren();
    list.append(el("li", { class: "back-link" }, el("a", { href: "/studies", text: "← All studies" })));
    const series = st.series || [];
    const q = $("filter").value.trim().toLowerCase();
    const shown = series.filter((se) => !q || [se.description, se.modality, String(se.number)].join(" ").toLowerCase().includes(q));
    $("file-count").textContent = series.length ? `${series.length} in study` : "";
    for (const se of shown) {
      const sel = se.seriesUID === st.seriesUID;
      const open = () => { if (!sel) { history.replaceState(null, "", `#series/${se.seriesUID}/1`); openSeries(se.seriesUID, 0); } };
      const li = el("li", {
        class: "file" + (sel ? " selected" : ""), "data-series": se.seriesUID, tabindex: "0", role: "button",
        "aria-current": sel ? "true" : null, onclick: open,
        onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); open(); } },
      });
      const mod = se.modality || "—";
      li.append(el("div", { class: `modality m-${mod}` + (mod.length > 3 ? " long" : ""), text: mod }));
      const main = el("div", { class: "file-main" });
      main.append(el("div", { class: "file-title", text: se.description || `Series ${se.number ?? ""}`.trim() }));
      const who = st.study ? [personName(st.study.patientName), dicomDate(st.study.studyDate)].filter(Boolean).join(" · ") : "";
      main.append(el("div", { class: "file-sub", text: who }));
      const meta = el("div", { class: "file-meta" });
      if (se.number !== null && se.number !== undefined) meta.append(el("span", { text: `Se ${se.number}` }));
      meta.append(el("span", { class: "tag frames", text: `${se.instances} img` }));
      main.append(meta);
      li.append(main);
      list.append(li);
    }
  }

  async function start() {
    viewport.dataset.tool = state.tool;
    const sm = /^#series\/([0-9.]{1,64})(?:\/(\d+))?$/.exec(location.hash);
    if (sm) {
      await loadPresets();
      openSeries(sm[1], sm[2] ? +sm[2] - 1 : 0);
      return;
    }
    await Promise.all([loadFiles(), loadPresets()]);
    const m = /^#([0-9a-f]{16})(?:\/(\d+))?$/.exec(location.hash);
    const byHash = m && state.files.find((f) => f.id === m[1]);
    const first = byHash || state.files.find((f) => !f.error && f.frames > 0);
    if (first) select(first.id, byHash && m[2] ? +m[2] - 1 : 0);
  }
  start();
})();
