// Lightbox pages' shared helpers (the viewer and the studies page): DOM
// building that never parses outside text as HTML, DICOM value
// formatting, and JSON fetching with the server's error message.
"use strict";

window.LB = (() => {
  const $ = (id) => document.getElementById(id);

  // el builds an element; text is always set as text, never as HTML, since
  // DICOM fields and file names come from outside.
  function el(tag, attrs, ...children) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") n.className = v;
      else if (k === "text") n.textContent = v;
      else if (k.startsWith("on")) n.addEventListener(k.slice(2), v);
      else n.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      n.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return n;
  }
  function personName(pn) {
    if (!pn) return "";
    const [fam, given, middle, prefix, suffix] = pn.split("=")[0].split("^");
    const rest = [prefix, given, middle, suffix].filter(Boolean).join(" ");
    return fam && rest ? `${fam.toUpperCase()}, ${rest}` : (fam || rest || "").trim();
  }
  function dicomDate(d) {
    // ACR-NEMA era files write YYYY.MM.DD.
    if (/^\d{4}\.\d{2}\.\d{2}$/.test(d || "")) return d.replace(/\./g, "-");
    if (!d || !/^\d{8}$/.test(d)) return d || "";
    return `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}`;
  }
  function bytes(n) {
    if (n < 1024) return `${n} B`;
    if (n < 1048576) return `${(n / 1024).toFixed(0)} KB`;
    if (n < 1073741824) return `${(n / 1048576).toFixed(1)} MB`;
    return `${(n / 1073741824).toFixed(2)} GB`;
  }
  async function getJSON(url) {
    const res = await fetch(url, { headers: { Accept: "application/json" } });
    let body = null;
    try { body = await res.json(); } catch (_) { /* not JSON */ }
    if (!res.ok) throw new Error((body && body.error) || `${res.status} ${res.statusText}`);
    return body;
  }

  return { $, el, personName, dicomDate, bytes, getJSON };
})();
