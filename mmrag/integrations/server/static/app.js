// mmrag document QA: upload files, watch the indexing job, ask, show the cited pages.
// Plain DOM code, no dependencies; every server string is inserted as text, never as HTML.
"use strict";

const API = "api/v1";
const $ = (id) => document.getElementById(id);
let health = null;

function apiKey() { return sessionStorage.getItem("mmrag-api-key") || ""; }

async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  if (apiKey()) headers.set("X-API-Key", apiKey());
  const response = await fetch(`${API}${path}`, { ...options, headers });
  const isJson = (response.headers.get("content-type") || "").includes("application/json");
  const body = isJson ? await response.json() : await response.blob();
  if (!response.ok) {
    const message = isJson && body.error ? body.error.message : response.statusText;
    if (response.status === 401) $("key-panel").hidden = false;
    const error = new Error(`${response.status}: ${message}`);
    error.status = response.status;
    throw error;
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
}

async function refreshSources() {
  const { sources, counts = {} } = await api("/sources");  // counts: pages per source
  $("source-count").textContent = String(sources.length);
  const list = $("sources");
  list.replaceChildren();
  for (const source of sources) {
    const pages = counts[source];
    const label = source.split("/").pop() + (pages === undefined ? "" : ` (${pages})`);
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
  if (p.current) text += ` · ${p.current.split("/").pop()}`;
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
      (f) => el("li", "", `${f.source.split("/").pop()}: ${f.reason}`)));
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

async function thumbnail(hit) {
  const img = el("img");
  img.alt = hit.citation;
  img.loading = "eager";
  const url = `${hit.image_url}?max_side=400`;
  if (apiKey()) {  // <img> cannot send the key header: fetch the image, show it as a blob
    const response = await fetch(url, { headers: { "X-API-Key": apiKey() } });
    if (!response.ok) throw new Error(`${response.status}: page image of ${hit.citation}`);
    img.src = URL.createObjectURL(await response.blob());
  } else {
    img.src = url;
  }
  return img;
}

async function ask(event) {
  event.preventDefault();
  showError(null);
  const question = $("question").value.trim();
  const k = Number($("k").value) || 3;
  $("ask").disabled = true;
  $("answer").hidden = true;
  try {
    let answer = null;
    if (health && health.ask_available) {
      try {
        answer = await api("/ask", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ question, k }),
        });
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
    showError(error);
  } finally {
    $("ask").disabled = false;
  }
}

async function showAnswer(answer) {
  $("answer-text").textContent = answer.text ||
    (answer.citations.length ? "The best-matching pages:" : "Nothing in the index matches.");
  const t = answer.timings || {};
  $("answer-meta").textContent = Object.keys(t).length
    ? Object.entries(t).map(([name, s]) => `${name} ${(s * 1000).toFixed(0)} ms`).join(" · ")
    : "";
  const list = $("citations");
  list.replaceChildren();
  for (const [rank, hit] of answer.citations.entries()) {
    const card = el("li", "citation");
    card.dataset.id = hit.id;
    card.append(await thumbnail(hit));
    card.append(el("p", "ref", `[${rank + 1}] ${hit.citation.split("/").pop()}`));
    const stages = Object.entries(hit.stage_scores || {})
      .map(([name, s]) => `${name} ${s.toFixed(3)}`).join(" · ");
    card.append(el("p", "score", `score ${hit.score.toFixed(3)}${stages ? ` (${stages})` : ""}`));
    list.append(card);
  }
  $("answer").hidden = false;
}

$("upload-form").addEventListener("submit", upload);
$("ask-form").addEventListener("submit", ask);
$("save-key").addEventListener("click", async () => {
  sessionStorage.setItem("mmrag-api-key", $("api-key").value.trim());
  showError(null);
  try { await Promise.all([refreshHealth(), refreshSources()]); } catch (error) { showError(error); }
});
refreshHealth().then(refreshSources).catch(showError);
