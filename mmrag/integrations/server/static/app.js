// mmrag document QA: upload files, watch the indexing job, ask, show the cited pages.
// Plain DOM code, no dependencies; every server string is inserted as text, never as HTML.
"use strict";

const API = "api/v1";
const $ = (id) => document.getElementById(id);
let health = null;

function apiKey() { return sessionStorage.getItem("mmrag-api-key") || ""; }

function request(path, options = {}) {
  const headers = new Headers(options.headers || {});
  if (apiKey()) headers.set("X-API-Key", apiKey());
  return fetch(`${API}${path}`, { ...options, headers });
}

function apiError(status, message) {
  if (status === 401) $("key-panel").hidden = false;
  const error = new Error(`${status}: ${message}`);
  error.status = status;
  return error;
}

async function api(path, options = {}) {
  const response = await request(path, options);
  const isJson = (response.headers.get("content-type") || "").includes("application/json");
  const body = isJson ? await response.json() : await response.blob();
  if (!response.ok) {
    throw apiError(response.status, isJson && body.error ? body.error.message : response.statusText);
  }
  return body;
}

function showError(error) {
  $("error").textContent = error ? String(error.message || error) : "";
  $("error").hidden = !error;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

async function refreshHealth() {
  health = await api("/health");
  const count = health.items === null ? "?" : health.items;  // null: a tenant key is needed
  const owner = health.tenant ? ` (${health.tenant})` : "";
  $("status").textContent = `${count} pages / frames indexed${owner} · mmrag ${health.version}`;
  $("key-panel").hidden = !health.auth_required || Boolean(apiKey());
  $("mode-note").textContent = health.ask_available
    ? "" : "No generator is configured on this server: you will see the best-matching pages.";
  showStandIns(health.stand_ins || {}, health.generator === "extractive");
}

function showStandIns(standIns, extractive) {  // {role: the real model it stands in for}
  const roles = Object.keys(standIns);
  const banner = $("stand-in-banner");
  banner.hidden = roles.length === 0;
  if (!roles.length) return;
  const which = roles.map((role) => `the ${role} (for ${standIns[role]})`).join(", ");
  banner.replaceChildren(
    el("strong", "", "Tiny stand-in models. "),
    `This server runs tiny random test models: ${which}. Their scores and generated text are ` +
    "meaningless; point the server's config at the real models to get real ones." +
    (extractive ? " Answers are quoted word for word from the retrieved pages (no model)." : ""));
}

function basename(source) {
  return source.split(/[\\/]/).filter(Boolean).pop() || source;
}

// A file name or path whose lines break only after _ - / \ spaces and inner dots (never
// inside a word, nor before the extension): a <wbr> at each such point.
function breakable(text, className) {
  const span = el("span", className);
  for (const part of text.split(/(?<=[_\-/\\\s])|(?<=\.)(?=[^.]*\.)/)) {
    if (span.childNodes.length) span.append(el("wbr"));
    span.append(part);
  }
  return span;
}

function clock(seconds) {  // 72.5 → "1:12.5", as the citations write video seconds
  return `${Math.floor(seconds / 60)}:${(seconds % 60).toFixed(1).padStart(4, "0")}`;
}

function locator(item) {  // where in the file: "page 3", "video at 1:12.5" …
  if (item.modality === "video_frame" && item.timestamp_s != null) {
    return `video at ${clock(item.timestamp_s)}`;
  }
  if (item.page != null) {
    return `page ${item.page}` + (item.page_label ? ` (printed “${item.page_label}”)` : "");
  }
  if (item.frame_index != null) return `frame ${item.frame_index}`;
  return item.modality === "image" ? "image" : "";
}

async function refreshSources() {
  const { sources, counts = {} } = await api("/sources");  // counts: pages per source
  $("source-count").textContent = String(sources.length);
  const list = $("sources");
  list.replaceChildren();
  for (const source of sources) {
    const pages = counts[source];
    const label = basename(source) + (pages === undefined ? "" : ` (${pages})`);
    const item = el("li", "", label);
    item.title = source;
    const remove = el("button", "link", "remove");
    remove.type = "button";
    remove.addEventListener("click", async () => {
      try {
        await api(`/sources?source=${encodeURIComponent(source)}`, { method: "DELETE" });
        await Promise.all([refreshSources(), refreshHealth()]);
      } catch (error) { showError(error); }
    });
    item.append(" ", remove);
    list.append(item);
  }
}

function showJob(job) {
  const p = job.progress;
  $("job").hidden = false;
  $("progress").value = p.fraction;
  let text = `${job.status} · ${p.files_done}/${p.files_total} files · ${p.pages_done} pages`;
  if (p.pages_per_s) text += ` · ${p.pages_per_s.toFixed(1)} pages/s`;
  if (p.current) text += ` · ${basename(p.current)}`;
  if (job.report && job.status !== "running") {
    const r = job.report;
    text += ` · ${r.indexed} indexed, ${r.skipped} already present, ${r.failed.length} failed`;
  }
  if (job.error) text += ` · ${job.error}`;
  $("progress-text").textContent = text;
  $("job").dataset.status = job.status;
  const failures = $("failures");
  failures.replaceChildren(
    ...((job.report && job.report.failed) || []).map(
      (f) => el("li", "", `${basename(f.source)}: ${f.reason}`)));
}

async function pollJob(id) {
  for (;;) {
    const job = await api(`/jobs/${id}`);
    showJob(job);
    if (job.status !== "queued" && job.status !== "running") return job;
    await new Promise((resolve) => setTimeout(resolve, 400));
  }
}

async function upload(event) {
  event.preventDefault();
  showError(null);
  const files = $("files").files;
  if (!files.length) { showError("choose one or more PDFs, images or videos first"); return; }
  const form = new FormData();
  for (const file of files) form.append("files", file, file.name);
  $("upload").disabled = true;
  try {
    const job = await api("/index", { method: "POST", body: form });
    showJob(job);
    await pollJob(job.id);
    await Promise.all([refreshHealth(), refreshSources()]);
  } catch (error) {
    showError(error);
  } finally {
    $("upload").disabled = false;
  }
}

let shownURLs = [];  // blob URLs of the answer's thumbnails, freed when it is cleared

async function imageSrc(url) {
  if (!apiKey()) return url;
  // <img> cannot send the key header: fetch the image, show it as a blob
  const response = await fetch(url, { headers: { "X-API-Key": apiKey() } });
  if (!response.ok) throw apiError(response.status, `the page image ${url} could not be loaded`);
  return URL.createObjectURL(await response.blob());
}

async function thumbnail(hit) {
  const img = el("img");
  img.alt = `${locator(hit.item)} of ${basename(hit.item.source)}`;
  img.loading = "eager";
  img.src = await imageSrc(`${hit.image_url}?max_side=400`);
  if (img.src.startsWith("blob:")) shownURLs.push(img.src);
  return img;
}

// The page regions that carry a hit's match (`hit.regions`: PDF points for PDF pages, pixels
// for images and frames), outlined in an SVG laid over the image: its viewBox is the item's
// image in pixels and it scales like the image (`object-fit: contain` = `xMidYMid meet`).
function regionRects(hit) {
  const item = hit.item;
  const details = item.details || {};
  let scale = 1, dx = 0, dy = 0;
  if (item.modality === "pdf_page" && details.render_dpi) {
    scale = details.render_dpi / 72;
    [dx, dy] = details.crop_box || [0, 0];
  }
  return (hit.regions || []).map((r) => ({
    x: r.x0 * scale - dx, y: r.y0 * scale - dy,
    width: (r.x1 - r.x0) * scale, height: (r.y1 - r.y0) * scale, score: r.score, kind: r.kind,
  }));
}

function regionOverlay(hit) {
  const rects = regionRects(hit);
  if (!rects.length || !hit.item.width || !hit.item.height) return null;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "regions");
  svg.setAttribute("viewBox", `0 0 ${hit.item.width} ${hit.item.height}`);
  svg.setAttribute("preserveAspectRatio", "xMidYMid meet");
  svg.setAttribute("aria-hidden", "true");
  rects.forEach((r, i) => {
    const rect = document.createElementNS(ns, "rect");
    for (const key of ["x", "y", "width", "height"]) rect.setAttribute(key, String(r[key]));
    const kind = r.kind === "words" ? " words" : "";
    rect.setAttribute("class", (i === 0 ? "region best" : "region") + kind);
    rect.setAttribute("vector-effect", "non-scaling-stroke");
    const title = document.createElementNS(ns, "title");
    title.textContent = r.kind === "words"
      ? `words of the query: ${Math.round(r.score * 100)}% of its terms`
      : `region ${i + 1}: score ${r.score.toFixed(3)}`;
    rect.append(title);
    svg.append(rect);
  });
  return svg;
}

// -- the answer --------------------------------------------------------------------------------

function setAnswerState(state, note) {  // pending → streaming → done (or failed)
  const answer = $("answer");
  answer.dataset.state = state;
  answer.setAttribute("aria-busy", String(state === "pending" || state === "streaming"));
  if (note !== undefined) $("answer-meta").textContent = note;
}

function clearAnswer() {  // as soon as a question is sent: the old answer must not linger
  for (const url of shownURLs) URL.revokeObjectURL(url);
  shownURLs = [];
  $("answer-text").replaceChildren();
  $("citations").replaceChildren();
  $("answer").hidden = false;
  setAnswerState("pending", "Looking through your pages…");
}

function printable(text) {  // a random (stand-in) model emits control characters
  return text.replace(/[\u0000-\u0008\u000B-\u001F\u007F]/g, "\uFFFD");
}

function appendToken(piece) {
  if ($("answer").dataset.state !== "streaming") setAnswerState("streaming", "Writing the answer…");
  $("answer-text").append(document.createTextNode(printable(piece)));
}

function parseEvent(block) {  // one server-sent event: {event, data}
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    const colon = line.indexOf(":");
    if (colon === 0) continue;  // a comment
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  return { event, data: data.join("\n") };
}

// POST /ask with Accept: text/event-stream (EventSource cannot POST): tokens as they come,
// then the whole answer.
async function streamAnswer(question, k) {
  const response = await request("/ask", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
    body: JSON.stringify({ question, k }),
  });
  if (!response.ok) {  // refused before generating: a JSON error
    const body = await response.json().catch(() => null);
    throw apiError(response.status, body && body.error ? body.error.message : response.statusText);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const { event, data } = parseEvent(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      if (event === "token") appendToken(JSON.parse(data).text);
      else if (event === "answer") return JSON.parse(data);
      else if (event === "error") {
        const body = JSON.parse(data);
        throw apiError(body.status, body.error.message);
      }
    }
  }
  throw new Error("the answer stream ended before the answer came");
}

async function ask(event) {
  event.preventDefault();
  showError(null);
  const question = $("question").value.trim();
  const k = Number($("k").value) || 3;
  $("ask").disabled = true;
  clearAnswer();
  try {
    let answer = null;
    if (health && health.ask_available) {
      try {
        answer = await streamAnswer(question, k);
      } catch (error) {
        if (error.status !== 503) throw error;
        showError(error);  // the generator cannot run: show the best pages instead
      }
    }
    if (answer === null) {
      const found = await api(`/search?q=${encodeURIComponent(question)}&k=${k}`);
      answer = { text: "", citations: found.hits, timings: { search: found.took_s } };
    }
    await showAnswer(answer);
  } catch (error) {
    setAnswerState("failed", "");
    $("answer").hidden = !$("answer-text").textContent;
    showError(error);
  } finally {
    $("ask").disabled = false;
  }
}

function seconds(s) {
  return s < 1 ? `${(s * 1000).toFixed(0)} ms` : `${s.toFixed(1)} s`;
}

function citationCard(hit, rank, image) {
  const card = el("li", "citation");
  card.dataset.id = hit.id;
  const source = hit.item.source;
  const where = locator(hit.item);
  const open = el("button", "thumb");
  open.type = "button";
  open.setAttribute("aria-label", `Enlarge ${where ? `${where} of ` : ""}${basename(source)}`);
  open.append(image);
  const overlay = regionOverlay(hit);
  if (overlay) open.append(overlay);
  card.dataset.regions = String((hit.regions || []).length);
  open.addEventListener("click", () => openViewer(hit, open));
  const ref = el("p", "ref");
  ref.title = source;  // the whole path on hover; the card shows the file name
  ref.append(el("span", "rank", `[${rank}]`), " ", breakable(basename(source), "file"));
  const stages = Object.entries(hit.stage_scores || {})
    .map(([name, s]) => `${name} ${s.toFixed(3)}`).join(" · ");
  card.append(open, ref);
  if (where) card.append(el("p", "where", where));
  card.append(el("p", "score", `score ${hit.score.toFixed(3)}${stages ? ` (${stages})` : ""}`));
  return card;
}

async function showAnswer(answer) {
  $("answer-text").replaceChildren(printable(answer.text) ||
    (answer.citations.length ? "The best-matching pages:" : "Nothing in the index matches."));
  const t = answer.timings || {};
  const meta = Object.entries(t).map(([name, s]) => `${name} ${seconds(s)}`).join(" · ");
  const images = await Promise.all(answer.citations.map(thumbnail));
  $("citations").replaceChildren(
    ...answer.citations.map((hit, i) => citationCard(hit, i + 1, images[i])));
  setAnswerState("done", meta);
}

// -- the large page view -----------------------------------------------------------------------

let viewerURL = null;
let viewerOpener = null;
let viewerRequest = 0;

async function openViewer(hit, opener) {
  const dialog = $("viewer");
  const source = hit.item.source;
  const where = locator(hit.item);
  const request = ++viewerRequest;
  viewerOpener = opener;
  $("viewer-title").textContent = `${basename(source)}${where ? ` · ${where}` : ""}`;
  $("viewer-path").replaceChildren(breakable(source, "path"));
  const img = $("viewer-img");
  img.removeAttribute("src");
  for (const old of $("viewer-stage").querySelectorAll("svg.regions")) old.remove();
  const overlay = regionOverlay(hit);
  if (overlay) $("viewer-stage").append(overlay);
  img.alt = `${where ? `${where} of ` : ""}${basename(source)}, full size`;
  if (!dialog.open) dialog.showModal();
  $("viewer-close").focus();
  try {
    const src = await imageSrc(hit.image_url);
    if (request !== viewerRequest || !dialog.open) {  // closed or replaced meanwhile
      if (src.startsWith("blob:")) URL.revokeObjectURL(src);
      return;
    }
    if (src.startsWith("blob:")) viewerURL = src;
    img.src = src;
  } catch (error) {
    dialog.close();
    showError(error);
  }
}

$("viewer").addEventListener("close", () => {
  viewerRequest += 1;
  $("viewer-img").removeAttribute("src");
  if (viewerURL) URL.revokeObjectURL(viewerURL);
  viewerURL = null;
  if (viewerOpener && viewerOpener.isConnected) viewerOpener.focus();
  viewerOpener = null;
});
$("viewer-close").addEventListener("click", () => $("viewer").close());
$("viewer").addEventListener("click", (event) => {  // a click on the backdrop closes it
  if (event.target === $("viewer")) $("viewer").close();
});

$("upload-form").addEventListener("submit", upload);
$("ask-form").addEventListener("submit", ask);
$("save-key").addEventListener("click", async () => {
  sessionStorage.setItem("mmrag-api-key", $("api-key").value.trim());
  showError(null);
  try { await Promise.all([refreshHealth(), refreshSources()]); } catch (error) { showError(error); }
});
refreshHealth().then(refreshSources).catch(showError);
