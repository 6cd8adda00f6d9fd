// Lightbox studies page: the stored studies (search, paging, series
// thumbnails that open the viewer) and browser upload. Each file of a drop
// is POSTed on its own as the request body, three at a time, so every file
// has its own progress and its own answer and the browser never holds more
// than the file handle; the server streams it into storage.
"use strict";

(() => {
  const { $, el, personName, dicomDate, bytes, getJSON } = window.LB;

  // ---------- study list ----------
  const PAGE = 50;
  const list = { offset: 0, more: false, query: new URLSearchParams(), selected: null, seq: 0 };

  function readFilters() {
    const q = new URLSearchParams();
    for (const [k, v] of new FormData($("filters"))) {
      if (String(v).trim()) q.set(k, String(v).trim());
    }
    return q;
  }

  async function loadStudies() {
    const seq = ++list.seq;
    const q = new URLSearchParams(list.query);
    q.set("limit", String(PAGE));
    q.set("offset", String(list.offset));
    let page;
    try {
      page = await getJSON(`/api/studies?${q}`);
    } catch (e) {
      if (seq !== list.seq) return;
      showTableMessage(`The study list cannot be loaded: ${e.message}`, true);
      return;
    }
    if (seq !== list.seq) return;
    list.more = page.more;
    renderStudies(page.studies || []);
  }

  function showTableMessage(text, isError) {
    $("study-rows").replaceChildren();
    const m = $("table-empty");
    m.hidden = false;
    m.textContent = text;
    m.classList.toggle("error", !!isError);
    document.body.dataset.studies = "0";
    $("page-info").textContent = "";
  }

  function renderStudies(studies) {
    const body = $("study-rows");
    body.replaceChildren();
    document.body.dataset.studies = String(studies.length);
    $("prev-page").disabled = list.offset === 0;
    $("next-page").disabled = !list.more;
    if (!studies.length) {
      const filtered = [...list.query.keys()].length > 0;
      showTableMessage(filtered ? "No study matches the search." : list.offset ? "No more studies." : "No studies stored yet. Upload DICOM files to begin.");
      $("prev-page").disabled = list.offset === 0;
      return;
    }
    $("table-empty").hidden = true;
    $("page-info").textContent = `Studies ${list.offset + 1}–${list.offset + studies.length}${list.more ? "" : ` of ${list.offset + studies.length}`}`;
    for (const st of studies) {
      const sel = list.selected === st.studyUID;
      const mods = el("div", { class: "mods" });
      for (const m of st.modalities || []) mods.append(el("span", { class: `mod-badge m-${m}`, text: m }));
      const open = () => selectStudy(st);
      body.append(el("tr", {
        class: sel ? "selected" : null, tabindex: "0", "data-study": st.studyUID, "aria-selected": sel ? "true" : "false",
        onclick: open,
        onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); open(); } },
      },
      el("td", { class: "patient", text: personName(st.patientName) || "—" }),
      el("td", { class: "mono", text: st.patientId || "—" }),
      el("td", { class: "mono", text: dicomDate(st.studyDate) || "—" }),
      el("td", {}, mods),
      el("td", { class: "desc", text: st.description || "—", title: st.description || "" }),
      el("td", { class: "n", text: st.series }),
      el("td", { class: "n", text: st.instances })));
    }
  }

  async function selectStudy(st) {
    list.selected = st.studyUID;
    for (const tr of document.querySelectorAll("#study-rows tr")) {
      const sel = tr.dataset.study === st.studyUID;
      tr.classList.toggle("selected", sel);
      tr.setAttribute("aria-selected", sel ? "true" : "false");
    }
    const pane = $("series-pane");
    pane.hidden = false;
    $("series-title").textContent = [personName(st.patientName), st.description].filter(Boolean).join(" — ") || "Study";
    $("series-sub").textContent = [st.patientId && `ID ${st.patientId}`, dicomDate(st.studyDate), st.accession && `Accession ${st.accession}`].filter(Boolean).join(" · ");
    const grid = $("series-grid");
    grid.replaceChildren(el("span", { class: "muted", text: "Loading series…" }));
    let d;
    try {
      d = await getJSON(`/api/studies/${encodeURIComponent(st.studyUID)}/series`);
    } catch (e) {
      grid.replaceChildren(el("span", { class: "muted", text: `The series cannot be loaded: ${e.message}` }));
      return;
    }
    if (list.selected !== st.studyUID) return;
    grid.replaceChildren();
    for (const se of d.series || []) {
      const thumb = el("div", { class: "thumb" });
      if (se.thumbSOP) {
        thumb.append(el("img", {
          alt: "", loading: "lazy", decoding: "async",
          src: `/api/instances/${encodeURIComponent(se.thumbSOP)}/frames/${se.thumbFrame}/render?w=166&h=140&format=jpeg&q=80`,
        }));
      } else {
        thumb.append(el("span", { class: "no-thumb", text: "No image" }));
      }
      const title = se.description || (se.number !== null && se.number !== undefined ? `Series ${se.number}` : "Series");
      grid.append(el("a", { class: "series-card", href: `/#series/${se.seriesUID}/1`, "data-series": se.seriesUID, title: `Open ${title} in the viewer` },
        thumb,
        el("div", { class: "series-info" },
          el("div", { class: "t", text: title }),
          el("div", { class: "s" },
            el("span", { class: `mod-badge m-${se.modality || "OT"}`, text: se.modality || "—" }),
            se.number !== null && se.number !== undefined ? el("span", { text: `Se ${se.number}` }) : null,
            el("span", { text: `${se.instances} image${se.instances === 1 ? "" : "s"}` })))));
    }
  }

  $("filters").addEventListener("submit", (e) => {
    e.preventDefault();
    list.query = readFilters();
    list.offset = 0;
    loadStudies();
  });
  $("filters").addEventListener("reset", () => {
    setTimeout(() => { list.query = new URLSearchParams(); list.offset = 0; loadStudies(); }, 0);
  });
  $("prev-page").addEventListener("click", () => { list.offset = Math.max(0, list.offset - PAGE); loadStudies(); });
  $("next-page").addEventListener("click", () => { if (list.more) { list.offset += PAGE; loadStudies(); } });

  // ---------- upload ----------
  const CONCURRENCY = 3;
  const MAX_ROWS = 300; // rows drawn; the rest are counted
  const up = {
    items: [], // {file, name, size, loaded, state, reason, row, zip}
    next: 0, // first item not started
    active: 0,
    tally: { stored: 0, duplicate: 0, conflict: 0, rejected: 0 },
    storedSinceRefresh: 0,
  };

  // Hidden files and DICOMDIR (an index of a CD, not an image) are left
  // out, as lightbox import does.
  function wanted(name) {
    const base = name.split("/").pop();
    return base && !base.startsWith(".") && base.toUpperCase() !== "DICOMDIR";
  }

  function addFiles(pairs) {
    pairs = pairs.filter((p) => wanted(p.name));
    if (!pairs.length) return;
    if (up.next >= up.items.length && up.active === 0) resetBatch();
    for (const { file, name } of pairs) {
      const it = { file, name, size: file.size, loaded: 0, state: "queued", reason: "", row: null };
      up.items.push(it);
      if (up.items.length <= MAX_ROWS) {
        it.row = makeRow(it);
        $("upload-list").append(it.row.li);
      }
    }
    renderMore();
    $("upload-status").hidden = false;
    document.body.dataset.upload = "uploading";
    pump();
    renderOverall();
  }

  // A new drop after a finished batch starts a fresh summary.
  function resetBatch() {
    up.items = [];
    up.next = 0;
    up.tally = { stored: 0, duplicate: 0, conflict: 0, rejected: 0 };
    $("upload-list").replaceChildren();
    $("rejected-list").replaceChildren();
    $("conflict-list").replaceChildren();
    $("problems").hidden = true;
    $("conflicts").hidden = true;
    renderTally();
  }

  function makeRow(it) {
    const fill = el("div", { class: "fill" });
    const state = el("span", { class: "up-state", text: "waiting" });
    const li = el("li", { class: "up-item", "data-state": "queued" },
      el("span", { class: "up-name", text: it.name, title: it.name }), state,
      el("div", { class: "bar" }, fill));
    return { li, fill, state };
  }
  function renderMore() {
    const extra = up.items.length - MAX_ROWS;
    let more = $("upload-more");
    if (extra > 0) {
      if (!more) { more = el("li", { class: "up-more", id: "upload-more" }); $("upload-list").append(more); }
      more.textContent = `… and ${extra} more file${extra === 1 ? "" : "s"}`;
    } else if (more) more.remove();
  }
  function renderItem(it) {
    if (!it.row) return;
    const pct = it.size ? Math.min(100, (100 * it.loaded) / it.size) : (it.state === "queued" ? 0 : 100);
    it.row.fill.style.width = `${pct.toFixed(1)}%`;
    it.row.li.dataset.state = it.state;
    const words = {
      queued: "waiting", uploading: `${Math.floor(pct)}%`, checking: "checking…", stored: "stored",
      duplicate: "already stored", conflict: "conflict", rejected: "not imported", failed: "failed",
    };
    it.row.state.textContent = it.state === "zip" ? it.reason : (words[it.state] || it.state);
    it.row.li.title = it.reason || "";
  }

  // renderOverall redraws the whole-upload bar at most once a frame, as
  // progress events come fast; drawOverall draws it now.
  let overallQueued = false;
  function renderOverall() {
    if (overallQueued) return;
    overallQueued = true;
    requestAnimationFrame(() => {
      overallQueued = false;
      drawOverall();
    });
  }
  function drawOverall() {
    let total = 0, loaded = 0, done = 0;
    for (const it of up.items) {
      total += it.size;
      loaded += Math.min(it.loaded, it.size);
      if (!["queued", "uploading", "checking"].includes(it.state)) done++;
    }
    const pct = total ? (100 * loaded) / total : (done === up.items.length ? 100 : 0);
    $("overall-bar").style.width = `${pct.toFixed(1)}%`;
    $("overall-pct").textContent = `${Math.floor(pct)}%`;
    const n = up.items.length;
    $("overall-text").textContent = done === n
      ? `Done: ${n} file${n === 1 ? "" : "s"}, ${bytes(total)}`
      : `Uploading ${Math.min(done + 1, n)} of ${n} files · ${bytes(loaded)} of ${bytes(total)}`;
  }
  function renderTally() {
    $("n-stored").textContent = up.tally.stored;
    $("n-dup").textContent = up.tally.duplicate;
    $("n-conflict").textContent = up.tally.conflict;
    $("n-rejected").textContent = up.tally.rejected;
  }

  function problem(listId, boxId, name, reason) {
    $(boxId).hidden = false;
    $(listId).append(el("li", {}, el("div", { class: "pn", text: name }), el("div", { class: "pr", text: reason })));
  }

  // record counts one answer (a file, or an entry of a zip).
  function record(name, r) {
    switch (r.status) {
      case "stored": up.tally.stored++; up.storedSinceRefresh++; break;
      case "duplicate": up.tally.duplicate++; break;
      case "conflict":
        up.tally.conflict++;
        problem("conflict-list", "conflicts", name, r.reason || "another file with the same instance UID is stored");
        break;
      default:
        up.tally.rejected++;
        problem("rejected-list", "problems", name, r.reason || "not imported");
    }
    renderTally();
  }

  function pump() {
    while (up.active < CONCURRENCY && up.next < up.items.length) {
      const it = up.items[up.next++];
      up.active++;
      send(it).finally(() => {
        up.active--;
        renderOverall();
        if (up.next >= up.items.length && up.active === 0) finished();
        else pump();
      });
    }
  }

  function send(it) {
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/upload");
      xhr.setRequestHeader("X-Filename", encodeURIComponent(it.name));
      xhr.setRequestHeader("Content-Type", it.file.type || "application/octet-stream");
      xhr.responseType = "json";
      it.state = "uploading";
      renderItem(it);
      xhr.upload.onprogress = (e) => {
        it.loaded = e.loaded;
        if (e.loaded >= it.size) it.state = "checking";
        renderItem(it);
        renderOverall();
      };
      xhr.onload = () => {
        it.loaded = it.size;
        const body = xhr.response;
        const results = body && Array.isArray(body.results) ? body.results : null;
        if (!results || !results.length) {
          it.state = "failed";
          it.reason = (body && body.error) || `the server answered ${xhr.status}`;
          record(it.name, { status: "failed", reason: it.reason });
        } else if (body.zip) {
          let ok = 0, bad = 0;
          for (const r of results) {
            const entryName = results.length === 1 && r.name === it.name ? it.name : `${it.name} › ${r.name}`;
            record(entryName, r);
            if (r.status === "stored" || r.status === "duplicate") ok++; else bad++;
          }
          it.state = bad && !ok ? "rejected" : "zip";
          it.reason = `zip: ${ok} imported${bad ? `, ${bad} not` : ""}`;
        } else {
          const r = results[0];
          it.state = r.status;
          it.reason = r.reason || "";
          record(it.name, r);
        }
        renderItem(it);
        renderOverall();
        resolve();
      };
      xhr.onerror = xhr.onabort = () => {
        it.state = "failed";
        it.reason = "the connection to the server was lost; try again";
        record(it.name, { status: "failed", reason: it.reason });
        renderItem(it);
        renderOverall();
        resolve();
      };
      xhr.send(it.file);
    });
  }

  function finished() {
    // Drawn before "done" is set, so the page never says done at 80 %.
    drawOverall();
    document.body.dataset.upload = "done";
    if (up.storedSinceRefresh) {
      up.storedSinceRefresh = 0;
      loadStudies();
    }
  }
  // A long upload shows new studies as they arrive, not only at the end.
  setInterval(() => {
    if (up.active && up.storedSinceRefresh) {
      up.storedSinceRefresh = 0;
      loadStudies();
    }
  }, 4000);

  // ---------- picking and dropping ----------
  $("pick-files").addEventListener("click", () => $("file-input").click());
  $("pick-folder").addEventListener("click", () => $("folder-input").click());
  $("upload-btn").addEventListener("click", () => $("file-input").click());
  $("dropzone").addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("file-input").click(); } });
  for (const id of ["file-input", "folder-input"]) {
    $(id).addEventListener("change", (e) => {
      addFiles([...e.target.files].map((file) => ({ file, name: file.webkitRelativePath || file.name })));
      e.target.value = "";
    });
  }

  // readAll lists a dropped folder: readEntries answers in batches until
  // an empty one.
  function readAll(dir) {
    const reader = dir.createReader();
    const out = [];
    return new Promise((resolve) => {
      const step = () => reader.readEntries((batch) => {
        if (!batch.length) { resolve(out); return; }
        out.push(...batch);
        step();
      }, () => resolve(out));
      step();
    });
  }
  async function walk(entry, out) {
    if (entry.isFile) {
      const file = await new Promise((resolve) => entry.file(resolve, () => resolve(null)));
      if (file) out.push({ file, name: entry.fullPath.replace(/^\//, "") });
    } else if (entry.isDirectory && !entry.name.startsWith(".")) {
      for (const e of await readAll(entry)) await walk(e, out);
    }
  }

  let dragDepth = 0;
  const overlay = $("drop-overlay");
  const hasFiles = (e) => e.dataTransfer && [...e.dataTransfer.types].includes("Files");
  document.addEventListener("dragenter", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    dragDepth++;
    overlay.hidden = false;
    $("dropzone").classList.add("over");
  });
  document.addEventListener("dragover", (e) => { if (hasFiles(e)) { e.preventDefault(); e.dataTransfer.dropEffect = "copy"; } });
  document.addEventListener("dragleave", () => {
    if (--dragDepth <= 0) { dragDepth = 0; overlay.hidden = true; $("dropzone").classList.remove("over"); }
  });
  document.addEventListener("drop", async (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    dragDepth = 0;
    overlay.hidden = true;
    $("dropzone").classList.remove("over");
    // Entries must be taken from the event before anything is awaited.
    const items = [...(e.dataTransfer.items || [])];
    const entries = items.map((i) => (i.webkitGetAsEntry ? i.webkitGetAsEntry() : null));
    if (entries.length && entries.every(Boolean)) {
      const out = [];
      for (const en of entries) await walk(en, out);
      addFiles(out);
    } else {
      addFiles([...e.dataTransfer.files].map((file) => ({ file, name: file.name })));
    }
  });

  loadStudies();
})();
