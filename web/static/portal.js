// The portal's small amount of JavaScript: uploads through the JSON API, pages that poll it while jobs run.
"use strict";

const RUNNING = new Set(["queued", "processing"]);
const POLL_MS = 1500;

async function api(url, options = {}) {
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" }, ...options });
  const body = response.status === 204 ? null : await response.json();
  if (!response.ok) throw new Error(body && body.error ? `${body.error.code}: ${body.error.message}` : response.statusText);
  return body;
}

const fmt = {
  psnr: (v) => (v == null ? "–" : `${v.toFixed(2)} dB`),
  ssim: (v) => (v == null ? "–" : v.toFixed(4)),
  runtime: (v) => (v == null ? "–" : `${Math.round(v)} ms`),
  batch: (v) => (v == null ? "–" : String(v)),
};

function localTimes(root = document) {
  for (const node of root.querySelectorAll("time[datetime]")) {
    const when = new Date(node.getAttribute("datetime"));
    if (!Number.isNaN(when.getTime())) node.textContent = when.toLocaleString();
  }
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value; else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

// --- upload page -------------------------------------------------------------------------------------
function initUpload() {
  const input = document.getElementById("files");
  const zone = document.getElementById("dropzone");
  const table = document.getElementById("queue");
  const button = document.getElementById("upload-all");
  const rows = [];

  function addFiles(files) {
    for (const file of files) {
      if (!file.type.startsWith("image/") && file.type !== "") continue;
      const reference = el("input", { type: "file", accept: "image/*", class: "reference" });
      const contribute = el("input", { type: "checkbox", class: "contribute" });
      const status = el("span", { class: "status queued" }, "ready");
      const remove = el("button", { type: "button", class: "link" }, "remove");
      const tr = el("tr", {}, el("td", {}, file.name), el("td", {}, reference), el("td", {}, contribute),
        el("td", {}, status), el("td", {}, remove));
      const row = { file, reference, contribute, status, tr };
      remove.addEventListener("click", () => { rows.splice(rows.indexOf(row), 1); tr.remove(); refresh(); });
      rows.push(row);
      table.tBodies[0].append(tr);
    }
    refresh();
  }
  function refresh() { table.hidden = rows.length === 0; button.disabled = rows.length === 0; }

  input.addEventListener("change", () => { addFiles(input.files); input.value = ""; });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); addFiles(e.dataTransfer.files); });

  button.addEventListener("click", async () => {
    button.disabled = true;
    const created = [];
    for (const row of [...rows]) {
      const form = new FormData();
      form.append("image", row.file, row.file.name);
      if (row.reference.files.length) form.append("reference", row.reference.files[0], row.reference.files[0].name);
      if (row.contribute.checked) form.append("contribute", "true");
      row.status.textContent = "uploading";
      try {
        const job = await api("/api/v1/jobs", { method: "POST", body: form });
        row.status.className = "status succeeded";
        row.status.replaceChildren(el("a", { href: `/jobs/${job.id}` }, `job ${job.id}`));
        created.push(job.id);
        rows.splice(rows.indexOf(row), 1);
      } catch (err) {
        row.status.className = "status failed";
        row.status.textContent = err.message;
      }
    }
    button.disabled = rows.length === 0;
    if (created.length === 1 && rows.length === 0) window.location.href = `/jobs/${created[0]}`;
    else if (created.length && rows.length === 0) window.location.href = "/jobs";
  });
}

// --- jobs page ---------------------------------------------------------------------------------------
function initJobs() {
  const table = document.getElementById("jobs");
  async function poll() {
    const page = await api(table.dataset.api);
    const body = table.tBodies[0];
    body.replaceChildren(...page.jobs.map((job) => {
      const link = (text) => el("a", { href: `/jobs/${job.id}` }, String(text));
      return el("tr", { "data-id": job.id }, el("td", {}, link(job.id)), el("td", {}, link(job.filename)),
        el("td", {}, el("span", { class: `status ${job.status}` }, job.status)),
        el("td", {}, fmt.psnr(job.metrics.psnr)), el("td", {}, fmt.ssim(job.metrics.ssim)),
        el("td", {}, fmt.runtime(job.metrics.runtime_ms)), el("td", {}, fmt.batch(job.metrics.batch_size)),
        el("td", {}, el("time", { datetime: job.created_at }, job.created_at)));
    }));
    localTimes(body);
    if (page.jobs.some((job) => RUNNING.has(job.status))) setTimeout(poll, POLL_MS);
  }
  const running = [...table.querySelectorAll(".status")].some((s) => RUNNING.has(s.textContent.trim()));
  if (running) setTimeout(poll, POLL_MS);
}

// --- job page ----------------------------------------------------------------------------------------
function initJob() {
  const root = document.getElementById("job");
  if (RUNNING.has(root.dataset.status)) {
    const poll = async () => {
      const job = await api(root.dataset.api);
      const badge = document.getElementById("job-status");
      badge.textContent = job.status;
      badge.className = `status ${job.status}`;
      if (RUNNING.has(job.status)) setTimeout(poll, POLL_MS);
      else window.location.reload();  // the finished page is rendered by the server, with the comparison
    };
    setTimeout(poll, POLL_MS);
  }
  for (const button of root.querySelectorAll("button[data-action]")) {
    button.addEventListener("click", async () => {
      const action = button.dataset.action;
      if (action === "delete" && !window.confirm("Delete this job and its images?")) return;
      try {
        await api(button.dataset.url, { method: action === "delete" ? "DELETE" : "POST" });
        window.location.href = action === "delete" ? "/jobs" : window.location.href;
      } catch (err) {
        document.getElementById("action-error").textContent = err.message;
      }
    });
  }
  const compare = document.getElementById("compare");
  if (compare) {
    const range = document.getElementById("compare-range");
    range.addEventListener("input", () => compare.style.setProperty("--pos", `${range.value}%`));
  }
}

localTimes();
const page = document.body.dataset.page;
if (page === "upload") initUpload();
else if (page === "jobs") initJobs();
else if (page === "job") initJob();

// While a retraining runs, refresh its progress every few seconds; reload once it ends.
(function () {
  const box = document.getElementById("retraining");
  const api = box && box.dataset.api;
  if (!api) return;
  const tick = async () => {
    const response = await fetch(api, {headers: {Accept: "application/json"}, credentials: "same-origin"});
    if (!response.ok) return;
    const run = await response.json();
    if (!["queued", "running"].includes(run.status)) { location.reload(); return; }
    document.getElementById("run-step").textContent = run.progress.step;
    document.getElementById("run-progress").value = run.progress.step;
    document.getElementById("run-loss").textContent = run.progress.loss === null ? "–" : run.progress.loss.toFixed(4);
    document.getElementById("run-eta").textContent = run.progress.eta_s === null ? "–" : run.progress.eta_s;
    setTimeout(tick, 3000);
  };
  setTimeout(tick, 3000);
})();
