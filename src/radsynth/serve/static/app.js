// The radsynth web page: one token, four panels (generate, education handout, translate, verify)
// and a reader study over the REST API.
// Files under /api need the Authorization header, so images and downloads are fetched here and
// shown through blob: object URLs, never linked to directly.

const TOKEN_KEY = "radsynth.token";
const POLL_MS = 400;
const FINAL = new Set(["done", "failed", "cancelled"]);
const KIND_NAMES = { ldm: "latent diffusion", gan: "GAN", vae: "VAE" };
const VERDICT_LABELS = {
  "synthetic-marked": "Synthetic: marked",
  watermark: "Synthetic: watermark",
  suspect: "Suspect: detector only",
  "no-evidence": "No evidence",
  unreadable: "Unreadable",
};

const $ = (selector) => document.querySelector(selector);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let token = localStorage.getItem(TOKEN_KEY) || "";
let models = [];

// ---------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Calls the API; resolves to the parsed JSON (or the Response when raw), throws ApiError. */
async function api(path, { method = "GET", json, form, raw = false } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form;
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body });
  } catch {
    throw new ApiError(0, "The service cannot be reached.");
  }
  if (!response.ok) throw new ApiError(response.status, await errorLine(response));
  return raw ? response : response.json();
}

/** One line from an error response: the API's detail, FastAPI's validation list, or the status. */
async function errorLine(response) {
  let detail = "";
  try {
    const body = await response.json();
    if (typeof body.detail === "string") {
      detail = body.detail;
    } else if (Array.isArray(body.detail) && body.detail.length) {
      const first = body.detail[0];
      const where = (first.loc || []).filter((part) => part !== "body").join(".");
      detail = where ? `${where}: ${first.msg}` : String(first.msg);
    }
  } catch {
    // not JSON: fall back to the status line
  }
  if (!detail) detail = `${response.status} ${response.statusText}`.trim();
  const retry = response.headers.get("Retry-After");
  if (response.status === 429 && retry) detail += ` (try again in ${retry} s)`;
  return detail.replace(/\s+/g, " ").trim();
}

async function fetchBlob(url) {
  const response = await api(url, { raw: true });
  return response.blob();
}

function fileName(url, fallback) {
  const last = decodeURIComponent(new URL(url, location.href).pathname.split("/").pop() || "");
  return last || fallback;
}

/** Downloads an authenticated URL: fetch it, then click a temporary <a download> on a blob URL. */
async function download(url, name, errorBox) {
  showError(errorBox, "");
  try {
    const blob = await fetchBlob(url);
    const objectUrl = URL.createObjectURL(blob);
    const anchor = document.createElement("a");
    anchor.href = objectUrl;
    anchor.download = name;
    document.body.append(anchor);
    anchor.click();
    anchor.remove();
    setTimeout(() => URL.revokeObjectURL(objectUrl), 60_000);
  } catch (error) {
    showError(errorBox, error.message);
  }
}

function downloadLink(label, url, name, errorBox, description) {
  const link = document.createElement("a");
  link.className = "dl";
  link.href = url;
  link.textContent = label;
  link.dataset.format = label.toLowerCase();
  if (description) link.setAttribute("aria-label", description);
  link.addEventListener("click", (event) => {
    event.preventDefault();
    download(url, name, errorBox);
  });
  return link;
}

// ---------------------------------------------------------------- small helpers

function showError(box, message) {
  box.textContent = message || "";
  box.hidden = !message;
}

function element(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

/** Object URLs made for one panel, revoked together when the panel shows new results. */
class UrlPool {
  constructor() {
    this.urls = [];
  }
  add(blob) {
    const url = URL.createObjectURL(blob);
    this.urls.push(url);
    return url;
  }
  clear() {
    this.urls.forEach((url) => URL.revokeObjectURL(url));
    this.urls = [];
  }
}

// ---------------------------------------------------------------- jobs and progress

/** A progress bar + text + cancel button for one panel's running job. */
class JobProgress {
  constructor(prefix, errorBox) {
    this.box = $(`#${prefix}-progress`);
    this.bar = $(`#${prefix}-bar`);
    this.text = $(`#${prefix}-progress-text`);
    this.cancelButton = $(`#${prefix}-cancel`);
    this.errorBox = errorBox;
    this.job = null;
    this.cancelButton.addEventListener("click", () => this.cancel());
  }

  show(job) {
    this.job = job;
    this.box.hidden = false;
    this.box.dataset.state = job.state;
    const { done = 0, total = 0 } = job.progress || {};
    if (job.state === "queued" || !total) {
      this.bar.removeAttribute("value"); // indeterminate
    } else {
      this.bar.max = total;
      this.bar.value = done;
    }
    const counts = total ? ` ${done} of ${total}` : "";
    const words = {
      queued: "Queued",
      running: `Running${counts}`,
      done: `Done${counts}`,
      failed: "Failed",
      cancelled: "Cancelled",
    };
    this.text.textContent = words[job.state] || job.state;
    this.cancelButton.hidden = FINAL.has(job.state);
    this.cancelButton.disabled = false;
  }

  async cancel() {
    if (!this.job || FINAL.has(this.job.state)) return;
    this.cancelButton.disabled = true;
    this.text.textContent = "Cancelling";
    try {
      await api(`/api/jobs/${encodeURIComponent(this.job.id)}/cancel`, { method: "POST" });
    } catch (error) {
      showError(this.errorBox, error.message);
      this.cancelButton.disabled = false;
    }
  }

  /** Polls the job until it ends; resolves to the final job object. */
  async follow(job) {
    this.show(job);
    while (!FINAL.has(job.state)) {
      await sleep(POLL_MS);
      job = await api(`/api/jobs/${encodeURIComponent(job.id)}`);
      this.show(job);
    }
    return job;
  }
}

function jobError(job) {
  return job.state === "failed" ? job.error || "The job failed." : "";
}

/** A panel that runs one job at a time: its button, progress, inline error, and how it shows a
 * finished job. ``run(start)`` submits (``start`` resolves to the new job) and follows it;
 * ``open(job)`` follows or shows a job from the recent-jobs list. */
class JobPanel {
  constructor(prefix, button, errorBox, show) {
    this.button = button;
    this.errorBox = errorBox;
    this.show = show;
    this.progress = new JobProgress(prefix, errorBox);
    this.busy = false;
  }

  async run(start) {
    if (this.busy) {
      showError(this.errorBox, "Wait for the running job to finish, or cancel it.");
      return;
    }
    this.busy = true;
    this.button.disabled = true;
    showError(this.errorBox, "");
    try {
      const job = await this.progress.follow(await start());
      showError(this.errorBox, jobError(job));
      if (job.state === "done") await this.show(job);
    } catch (error) {
      showError(this.errorBox, error.message);
    } finally {
      this.busy = false;
      this.button.disabled = false;
      loadJobs();
    }
  }

  open(job) {
    return this.run(async () => job);
  }
}

const panels = {};

// ---------------------------------------------------------------- token

async function connect() {
  const status = $("#token-status");
  const errorBox = $("#token-error");
  showError(errorBox, "");
  if (!token) {
    status.textContent = "Not connected";
    status.dataset.connected = "false";
    return false;
  }
  status.textContent = "Checking…";
  try {
    const me = await api("/api/me");
    status.textContent = `${me.name} · ${(me.scopes || []).join(", ") || "no scopes"}`;
    status.dataset.connected = "true";
    document.body.dataset.scopes = (me.scopes || []).join(" ");
  } catch (error) {
    status.textContent = "Not connected";
    status.dataset.connected = "false";
    showError(errorBox, error.message);
    return false;
  }
  await Promise.all([loadModels(), loadJobs(), loadStudies()]);
  return true;
}

function setupToken() {
  const input = $("#token");
  input.value = token;
  $("#token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    token = input.value.trim();
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
    connect();
  });
}

async function loadHealth() {
  try {
    const response = await fetch("/health");
    const health = await response.json();
    $("#version").textContent = `radsynth ${health.version} · ${health.queued} queued, ${health.running} running`;
  } catch {
    // the footer keeps its plain name
  }
}

// ---------------------------------------------------------------- generate

async function loadModels() {
  const select = $("#model");
  select.replaceChildren(element("option", { value: "", text: "Loading models…" }));
  try {
    models = (await api("/api/models")).models || [];
  } catch (error) {
    showError($("#gen-error"), error.message);
    return;
  }
  select.replaceChildren(
    ...models.map((model, index) =>
      element("option", { value: String(index), text: `${model.name} · ${KIND_NAMES[model.kind] || model.kind}` }),
    ),
  );
  if (!models.length) select.append(element("option", { value: "", text: "No models installed" }));
  const ldm = models.findIndex((model) => model.kind === "ldm");
  select.value = String(Math.max(ldm, 0));
  applyModelDefaults();
  // handouts draw with the diffusion model: its default steps, unless set
  const steps = ldm >= 0 ? models[ldm].steps : null;
  $("#ho-steps").placeholder = steps === null || steps === undefined ? "default" : `default ${steps}`;
}

/** Steps and guidance apply to the diffusion model only; left empty, the model's own default is
 * used (shown as the placeholder). */
function applyModelDefaults() {
  const model = models[Number($("#model").value)];
  for (const name of ["steps", "guidance"]) {
    const input = $(`#${name}`);
    const value = model ? model[name] : null;
    input.disabled = !model || model.kind !== "ldm";
    input.value = "";
    if (input.disabled) input.placeholder = "n/a";
    else input.placeholder = value === null || value === undefined ? "default" : `default ${value}`;
  }
}

function numberOrNull(input) {
  if (input.disabled || input.value.trim() === "") return null;
  return Number(input.value);
}

function setupGenerate() {
  const errorBox = $("#gen-error");
  const gallery = $("#gallery");
  const pool = new UrlPool();
  const panel = new JobPanel("gen", $("#generate-btn"), errorBox, (job) => showGallery(job, gallery, pool, errorBox));
  panels.generate = panel;

  for (const example of document.querySelectorAll("#generate .example")) {
    example.addEventListener("click", () => {
      $("#prompt").value = example.textContent.trim();
      $("#prompt").focus();
    });
  }
  $("#model").addEventListener("change", applyModelDefaults);

  $("#generate-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const model = models[Number($("#model").value)];
    if (!model) {
      showError(errorBox, "Connect with a token to load the models first.");
      return;
    }
    const request = {
      prompt: $("#prompt").value.trim(),
      n: Number($("#n").value),
      model: model.kind,
      weights: model.name,
      steps: numberOrNull($("#steps")),
      guidance: numberOrNull($("#guidance")),
      seed: Number($("#seed").value || 0),
    };
    panel.run(() => api("/api/generate", { method: "POST", json: request }));
  });
}

async function showGallery(job, gallery, pool, errorBox) {
  pool.clear();
  const images = (job.results && job.results.images) || [];
  const prompt = (job.params && job.params.prompt) || "";
  const figures = images.map((image, position) => {
    const number = image.index ?? position;
    const img = element("img", {
      alt: `Synthetic image ${position + 1} of ${images.length}: ${prompt}`,
      width: "64",
      height: "64",
    });
    const frame = element(
      "div",
      { class: "frame" },
      img,
      element("span", { class: "badge", "aria-hidden": "true", text: "SYNTHETIC" }),
    );
    const stem = `radsynth-${job.id.slice(0, 8)}-${number}`;
    const links = element("div", { class: "downloads" });
    for (const [label, key, ext] of [
      ["PNG", "png", ".png"],
      ["DICOM", "dicom", ".dcm"],
      ["NIfTI", "nifti", ".nii.gz"],
    ]) {
      if (image[key]) {
        const name = `${stem}${ext}`;
        links.append(downloadLink(label, image[key], name, errorBox, `Download image ${position + 1} as ${label}`));
      }
    }
    const figure = element(
      "figure",
      { class: "result", "data-index": String(number) },
      frame,
      element("figcaption", {}, element("span", { class: "caption", text: caption(position, image) }), links),
    );
    return { figure, img, url: image.png };
  });
  gallery.replaceChildren(galleryHeader(job, images.length, prompt, errorBox), ...figures.map((item) => item.figure));
  await Promise.all(
    figures.map(async ({ img, url }) => {
      try {
        img.src = pool.add(await fetchBlob(url));
        await img.decode();
      } catch (error) {
        showError(errorBox, error.message);
      }
    }),
  );
  gallery.dataset.job = job.id;
}

function caption(position, image) {
  return image.seed === undefined ? `Image ${position + 1}` : `Image ${position + 1} · seed ${image.seed}`;
}

/** The line above the gallery: what was asked, the batch's other files, and a warning when the
 * prompt used words the model was not trained on (its images may not show them). */
function galleryHeader(job, count, prompt, errorBox) {
  const results = job.results || {};
  const header = element(
    "div",
    { class: "gallery-note" },
    element("span", { text: `${count} synthetic image${count === 1 ? "" : "s"} for “${prompt}”` }),
  );
  const extras = element("span", { class: "downloads" });
  for (const file of results.files || []) {
    extras.append(downloadLink(file.name, file.url, file.name, errorBox, `Download ${file.name}`));
  }
  header.append(extras);
  const unknown = results.unknown_terms || [];
  if (unknown.length || results.low_confidence) {
    const words = unknown.length ? `the model does not know “${unknown.join("”, “")}”` : "low confidence";
    header.append(element("p", { class: "warning", text: `Note: ${words}; the images may not show what was asked.` }));
  }
  return header;
}

// ---------------------------------------------------------------- education handout

function setupHandout() {
  const errorBox = $("#ho-error");
  const result = $("#handout-result");
  const pool = new UrlPool();
  const show = (job) => showHandout(job, result, pool, errorBox);
  const panel = new JobPanel("ho", $("#handout-btn"), errorBox, show);
  panels.handout = panel;

  for (const example of document.querySelectorAll("#handout .example-report")) {
    example.addEventListener("click", () => {
      $("#report").value = example.dataset.report;
      $("#report").focus();
    });
  }

  $("#handout-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const request = {
      report: $("#report").value.trim(),
      n: Number($("#ho-n").value || 1),
      seed: Number($("#ho-seed").value || 0),
      steps: numberOrNull($("#ho-steps")),
    };
    if (!request.report) {
      showError(errorBox, "Paste a radiology report first.");
      return;
    }
    panel.run(async () => {
      result.replaceChildren();
      pool.clear();
      return api("/api/handout", { method: "POST", json: request });
    });
  });
}

/** The finished handout: its HTML in a sandboxed frame (no scripts, its own opaque origin) from
 * a blob URL, and the HTML and PDF as downloads. */
async function showHandout(job, result, pool, errorBox) {
  pool.clear();
  const results = job.results || {};
  const report = $("#report");
  if (!report.value.trim() && job.params?.report) report.value = job.params.report; // reopened from recent jobs
  const stem = `radsynth-handout-${job.id.slice(0, 8)}`;
  const links = element("div", { class: "downloads" });
  if (results.html) links.append(downloadLink("Download HTML", results.html, `${stem}.html`, errorBox, "Download the handout as HTML"));
  if (results.pdf) links.append(downloadLink("Download PDF", results.pdf, `${stem}.pdf`, errorBox, "Download the handout as PDF"));
  const head = element(
    "div",
    { class: "handout-head" },
    element("span", {}, "Handout preview ", element("span", { class: "badge inline", text: "SYNTHETIC pictures" })),
    links,
  );
  const frame = element("iframe", {
    class: "handout-frame",
    sandbox: "",
    title: "Education handout preview",
    referrerpolicy: "no-referrer",
  });
  result.replaceChildren(head, frame);
  result.dataset.job = job.id;
  if (!results.html) return;
  try {
    const blob = await fetchBlob(results.html);
    const loaded = new Promise((resolve) => frame.addEventListener("load", resolve, { once: true }));
    frame.src = pool.add(new Blob([blob], { type: "text/html" }));
    await Promise.race([loaded, sleep(15_000)]); // a frame that never loads must not hold the panel
    result.dataset.loaded = job.id;
  } catch (error) {
    showError(errorBox, error.message);
  }
}

// ---------------------------------------------------------------- translate

function setupTranslate() {
  const errorBox = $("#tr-error");
  const result = $("#translate-result");
  const pool = new UrlPool();
  const show = (job) => showTranslation(job, result, pool, errorBox);
  const panel = new JobPanel("tr", $("#translate-btn"), errorBox, show);
  panels.translate = panel;

  $("#translate-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const file = $("#translate-file").files[0];
    if (!file) {
      showError(errorBox, "Choose a volume to translate.");
      return;
    }
    const data = new FormData();
    data.append("file", file, file.name);
    data.append("task", $("#task").value);
    panel.run(async () => {
      result.replaceChildren();
      pool.clear();
      return api("/api/translate", { method: "POST", form: data });
    });
  });
}

async function showTranslation(job, result, pool, errorBox) {
  pool.clear();
  const files = (job.results && job.results.files) || [];
  const preview = files.find((file) => file.name === "preview.png");
  const nodes = [];
  if (preview) {
    const img = element("img", {
      class: "preview",
      alt: `Middle slice before and after ${job.params?.task || "translation"}: the input on the left, the synthetic result on the right`,
    });
    const figure = element(
      "figure",
      { class: "before-after" },
      element(
        "div",
        { class: "halves", "aria-hidden": "true" },
        element("span", { text: "Before" }),
        element("span", {}, "After ", element("span", { class: "badge inline", text: "SYNTHETIC" })),
      ),
      img,
      element("figcaption", { text: "Middle slice, input and translated output" }),
    );
    nodes.push(figure);
    try {
      img.src = pool.add(await fetchBlob(preview.url));
      await img.decode();
    } catch (error) {
      showError(errorBox, error.message);
    }
  }
  const links = element("div", { class: "downloads" }, element("span", { class: "caption", text: "Download:" }));
  for (const file of files) {
    links.append(downloadLink(file.name, file.url, file.name, errorBox, `Download ${file.name}`));
  }
  nodes.push(links);
  result.replaceChildren(...nodes);
  result.dataset.job = job.id;
}

// ---------------------------------------------------------------- verify

function setupVerify() {
  const form = $("#verify-form");
  const errorBox = $("#verify-error");
  const status = $("#verify-status");
  const button = $("#verify-btn");
  const table = $("#verdicts");

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(errorBox, "");
    const files = [...$("#verify-files").files];
    if (!files.length) {
      showError(errorBox, "Choose one or more files to verify.");
      return;
    }
    const data = new FormData();
    files.forEach((file) => data.append("files", file, file.name));
    data.append("detector", $("#detector").checked ? "true" : "false");
    button.disabled = true;
    status.textContent = `Checking ${files.length} file${files.length === 1 ? "" : "s"}…`;
    try {
      const { verdicts = [] } = await api("/api/verify", { method: "POST", form: data });
      showVerdicts(verdicts, table);
      status.textContent = `${verdicts.length} verdict${verdicts.length === 1 ? "" : "s"}`;
    } catch (error) {
      status.textContent = "";
      showError(errorBox, error.message);
    } finally {
      button.disabled = false;
    }
  });
}

function showVerdicts(verdicts, table) {
  const rows = verdicts.map((item) => {
    const evidence = element("details", {}, element("summary", { text: "Evidence" }));
    evidence.append(element("pre", { text: JSON.stringify(item.evidence || {}, null, 2) }));
    return element(
      "tr",
      { "data-verdict": item.verdict, "data-synthetic": String(Boolean(item.synthetic)) },
      element("td", { class: "file", text: item.file }),
      element(
        "td",
        {},
        element("span", {
          class: `verdict v-${item.verdict}`,
          title: item.verdict,
          text: VERDICT_LABELS[item.verdict] || item.verdict,
        }),
      ),
      element("td", { class: "summary" }, element("span", { text: item.summary || "" }), evidence),
    );
  });
  table.tBodies[0].replaceChildren(...rows);
  table.hidden = false;
}

// ---------------------------------------------------------------- recent jobs

const JOBS_SHOWN = 10;

function jobSummary(job) {
  const p = job.params || {};
  if (job.kind === "generate") return `${p.n} × “${p.prompt}” (${p.model}${p.steps ? `, ${p.steps} steps` : ""})`;
  if (job.kind === "translate") {
    const input = p.input ? String(p.input).split("/").pop() : p.study_uid || "";
    return `${p.task} of ${input}`;
  }
  if (job.kind === "handout") {
    const report = String(p.report || "").replace(/\s+/g, " ").trim();
    const short = report.length > 70 ? `${report.slice(0, 69)}…` : report;
    return `${p.n} per finding · “${short}”${p.steps ? ` (${p.steps} steps)` : ""}`;
  }
  if (job.kind === "evaluate") {
    const base = (path) => String(path || "").split("/").filter(Boolean).pop() || "";
    return `${base(p.synthetic)} against ${base(p.real)}`;
  }
  return job.kind;
}

function when(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso || "" : date.toLocaleString();
}

/** The token's latest jobs; a generate, translate or handout job can be opened in its panel
 * again, and a finished evaluation offers its report. */
async function loadJobs() {
  const table = $("#jobs-table");
  const empty = $("#jobs-empty");
  const errorBox = $("#jobs-error");
  if (!token) return;
  let jobs;
  try {
    jobs = (await api("/api/jobs")).jobs || [];
  } catch (error) {
    showError(errorBox, error.message);
    return;
  }
  showError(errorBox, "");
  jobs.sort((a, b) => String(b.created).localeCompare(String(a.created)));
  const rows = jobs.slice(0, JOBS_SHOWN).map((job) => {
    const action = element("td", { class: "action" });
    const panel = panels[job.kind];
    if (panel && (job.state === "done" || !FINAL.has(job.state))) {
      const button = element("button", {
        type: "button",
        class: "secondary small",
        text: job.state === "done" ? "Show" : "Follow",
        "aria-label": `${job.state === "done" ? "Show" : "Follow"} ${job.kind} job ${jobSummary(job)}`,
      });
      button.addEventListener("click", () => {
        $(`#${job.kind}`).scrollIntoView({ behavior: "smooth", block: "start" });
        panel.open(job);
      });
      action.append(button);
    } else if (job.kind === "evaluate" && job.state === "done") {
      const button = element("button", {
        type: "button",
        class: "secondary small",
        text: "Show",
        "aria-label": `Show evaluate job ${jobSummary(job)}`,
      });
      button.addEventListener("click", () => action.replaceChildren(evaluationLinks(job, errorBox)));
      action.append(button);
    }
    return element(
      "tr",
      { "data-job": job.id, "data-state": job.state },
      element("td", { text: job.kind }),
      element("td", { class: "what", text: jobSummary(job), title: job.error || "" }),
      element("td", {}, element("span", { class: `state s-${job.state}`, text: job.state })),
      element("td", { class: "when", text: when(job.created) }),
      action,
    );
  });
  table.tBodies[0].replaceChildren(...rows);
  table.hidden = !rows.length;
  empty.hidden = Boolean(rows.length);
}

/** The evaluation report (HTML) and metrics as authenticated downloads. */
function evaluationLinks(job, errorBox) {
  const results = job.results || {};
  const links = element("div", { class: "downloads end" });
  const files = results.files || [];
  const report = files.find((file) => file.url === results.report);
  if (results.report) {
    const name = report ? report.name : fileName(results.report, "report.html");
    links.append(downloadLink("Report", results.report, name, errorBox, `Download the evaluation report ${name}`));
  }
  for (const file of files) {
    if (file.url !== results.report) links.append(downloadLink(file.name, file.url, file.name, errorBox, `Download ${file.name}`));
  }
  return links;
}

// ---------------------------------------------------------------- reader study

// A reader answers one image (or one pair: which of the two is real?) at a time: the page holds
// only opaque ids until every item is answered, then fetches the reveal (labels and evidence).
// The study's owner gets a report and invitation links instead.
const study = { id: null, item: null, shownAt: 0, pool: new UrlPool() };
const INVITE_PREFIX = "#invite=";
const studyImageUrl = (id) => `/api/studies/${encodeURIComponent(study.id)}/images/${encodeURIComponent(id)}`;

async function loadStudies() {
  const list = $("#study-list");
  const errorBox = $("#study-error");
  if (!token) return;
  let studies;
  try {
    studies = (await api("/api/studies")).studies || [];
  } catch (error) {
    list.replaceChildren();
    $("#studies-empty").hidden = false;
    if (error.status !== 403) showError(errorBox, error.message); // a token without the scope has none
    return;
  }
  showError(errorBox, "");
  $("#studies-empty").hidden = Boolean(studies.length);
  if (!studies.length) $("#studies-empty").textContent = "No studies for this token.";
  list.replaceChildren(...studies.map(studyRow));
}

function studyRow(item) {
  const finished = item.answered >= item.n;
  const row = element(
    "li",
    { "data-study": item.id, "data-answered": String(item.answered) },
    element("span", {
      text: `Study ${item.id} · ${item.n} ${item.mode === "pairs" ? "pairs" : "images"}${item.owner ? " · yours" : ` · ${item.answered} answered`}`,
    }),
  );
  const button = (label, action) => {
    const node = element("button", { type: "button", class: "secondary small", text: label });
    node.addEventListener("click", action);
    row.append(node);
  };
  if (item.owner) {
    button("Report", () => showStudyReport(item.id));
    button("Invite a reader", () => inviteReader(item.id, row));
  } else {
    button(finished ? "Show results" : item.answered ? "Continue" : "Take", () => takeStudy(item.id));
  }
  return row;
}

async function takeStudy(studyId) {
  study.id = studyId;
  $("#study-result").hidden = true;
  $("#study-report").hidden = true;
  try {
    await showNext(await api(`/api/studies/${encodeURIComponent(studyId)}/next`));
  } catch (error) {
    showError($("#study-error"), error.message);
  }
}

/** Shows the next image or pair (fetched with the token, as blobs), or the reveal when none is left. */
async function showNext(next) {
  const take = $("#study-take");
  if (next.done) {
    take.hidden = true;
    await showReveal();
    return;
  }
  // the answer button waits for the new image: an answer always belongs to the image shown
  const button = $("#study-submit");
  button.disabled = true;
  const pair = Boolean(next.images);
  const shown = pair ? [$("#study-left"), $("#study-right")] : [$("#study-image")];
  const blobs = await Promise.all((pair ? next.images : [next.item]).map((id) => fetchBlob(studyImageUrl(id))));
  study.pool.clear();
  shown.forEach((img, k) => {
    img.src = study.pool.add(blobs[k]);
  });
  $("#study-image").hidden = pair;
  $("#study-pair").hidden = !pair;
  $("#study-single-choice").hidden = pair;
  $("#study-pair-choice").hidden = !pair;
  await Promise.all(shown.map((img) => img.decode()));
  study.item = next.item;
  $("#study-form").reset();
  $("#study-position").textContent = `${pair ? "Pair" : "Image"} ${next.position} of ${next.total}`;
  take.hidden = false;
  take.dataset.item = next.item;
  take.dataset.position = String(next.position);
  study.shownAt = performance.now();
  button.disabled = false;
}

async function submitAnswer(event) {
  event.preventDefault();
  const errorBox = $("#study-error");
  const form = new FormData($("#study-form"));
  if (!form.get("answer") || !form.get("confidence")) {
    const pair = !$("#study-pair").hidden;
    showError(errorBox, pair ? "Choose the image you take for real, and how sure you are." : "Choose real or synthetic, and how sure you are.");
    return;
  }
  showError(errorBox, "");
  const button = $("#study-submit");
  button.disabled = true;
  try {
    const next = await api(`/api/studies/${encodeURIComponent(study.id)}/answers`, {
      method: "POST",
      json: {
        item: study.item,
        answer: form.get("answer"),
        confidence: Number(form.get("confidence")),
        response_ms: Math.round(performance.now() - study.shownAt),
      },
    });
    await showNext(next);
  } catch (error) {
    showError(errorBox, error.message);
  } finally {
    button.disabled = false;
  }
}

/** The reader's score, then every image with its label, the reader's answer and the evidence. */
async function showReveal() {
  const box = $("#study-result");
  const result = await api(`/api/studies/${encodeURIComponent(study.id)}/reveal`);
  if (result.items.some((item) => item.images)) {
    await showPairReveal(box, result);
    return;
  }
  const figures = result.items.map((item) => {
    const img = element("img", { alt: `Image ${item.position}: ${item.truth}` });
    const figure = element(
      "figure",
      { class: `revealed ${item.correct ? "right" : "wrong"}`, "data-truth": item.truth, "data-item": item.item },
      img,
      element(
        "figcaption",
        {},
        element("strong", { class: "truth", text: item.truth === "synthetic" ? "Synthetic" : "Real" }),
        element("span", { text: ` · you said ${item.answer} (${item.confidence}/5)${item.correct ? "" : " ✗"}` }),
        element("p", { class: "evidence", text: item.evidence.summary || "" }),
      ),
    );
    return { figure, img, item };
  });
  box.replaceChildren(
    element("p", { class: "score", text: `You labelled ${result.correct} of ${result.total} images correctly.` }),
    element("div", { class: "gallery reveal" }, ...figures.map((f) => f.figure)),
  );
  box.hidden = false;
  study.pool.clear();
  await Promise.all(
    figures.map(async ({ img, item }) => {
      img.src = study.pool.add(await fetchBlob(studyImageUrl(item.item)));
    }),
  );
  box.dataset.study = study.id;
  loadStudies();
}

/** A study of pairs revealed: each pair side by side, both images labelled with their evidence. */
async function showPairReveal(box, result) {
  const shown = [];
  const groups = result.items.map((item) => {
    const figures = item.images.map((image) => {
      const img = element("img", { alt: `Pair ${item.position}, ${image.side}: ${image.truth}` });
      const picked = item.answer === image.side ? ` · you picked it as real (${item.confidence}/5)` : "";
      shown.push({ img, id: image.image });
      return element(
        "figure",
        { class: `revealed ${item.correct ? "right" : "wrong"}`, "data-truth": image.truth, "data-item": image.image },
        img,
        element(
          "figcaption",
          {},
          element("strong", { class: "truth", text: image.truth === "synthetic" ? "Synthetic" : "Real" }),
          element("span", { text: ` · ${image.side}${picked}` }),
          element("p", { class: "evidence", text: image.evidence.summary || "" }),
        ),
      );
    });
    return element("div", { class: "revealed-pair", "data-pair": item.item }, ...figures);
  });
  box.replaceChildren(
    element("p", { class: "score", text: `You picked the real image in ${result.correct} of ${result.total} pairs.` }),
    element("div", { class: "gallery reveal" }, ...groups),
  );
  box.hidden = false;
  study.pool.clear();
  await Promise.all(
    shown.map(async ({ img, id }) => {
      img.src = study.pool.add(await fetchBlob(studyImageUrl(id)));
    }),
  );
  box.dataset.study = study.id;
  loadStudies();
}

const REPORT_ROWS = [
  ["accuracy", "Accuracy"],
  ["sensitivity", "Sensitivity (synthetic caught)"],
  ["specificity", "Specificity (real called real)"],
  ["fooled", "Fooled (synthetic taken for real)"],
  ["auroc", "AUROC from the ratings"],
  ["d_prime", "d′"],
];
const PAIR_REPORT_ROWS = [
  ["proportion_correct", "Proportion correct (2AFC, expected AUROC)"],
  ["fooled", "Fooled (synthetic picked as real)"],
  ["d_prime", "d′ = √2 z(PC)"],
];

function metricText(value) {
  if (!value || value.skipped !== undefined) return "n/a";
  return `${value.value.toFixed(3)} [${value.low.toFixed(3)}, ${value.high.toFixed(3)}]`;
}

/** The owner's report: each metric pooled and per reader, agreement, and each image's fooled share. */
async function showStudyReport(studyId) {
  const box = $("#study-report");
  $("#study-take").hidden = true;
  $("#study-result").hidden = true;
  try {
    const report = await api(`/api/studies/${encodeURIComponent(studyId)}/report`);
    const names = report.reader_names || {};
    const columns = [["Pooled", report.pooled], ...Object.entries(report.readers).map(([id, s]) => [names[id] || id, s])];
    const head = element("tr", {}, element("th", { scope: "col", text: "" }), ...columns.map(([name]) => element("th", { scope: "col", text: name })));
    const pairs = report.mode === "pairs";
    const rows = (pairs ? PAIR_REPORT_ROWS : REPORT_ROWS).map(([key, label]) =>
      element("tr", { "data-metric": key }, element("th", { scope: "row", text: label }), ...columns.map(([, s]) => element("td", { text: metricText(s[key]) }))),
    );
    const counts = element("tr", { "data-metric": "correct" }, element("th", { scope: "row", text: "Correct" }), ...columns.map(([, s]) => element("td", { text: `${s.correct} of ${s.n}` })));
    const kappa = report.agreement.fleiss_kappa;
    const items = report.items.map((item) =>
      element("tr", { "data-item": item.item }, element("td", { text: String(item.position) }), element("td", { text: pairs ? `real on ${item.truth}` : item.truth }), element("td", { text: String(item.readers) }), element("td", { text: item.fooled.toFixed(2) })),
    );
    box.replaceChildren(
      element("h3", { text: `Report of study ${studyId}` }),
      element("table", { class: "jobs report-metrics" }, element("caption", { class: "sr-only", text: "Metrics, 95 % bootstrap intervals" }), element("thead", {}, head), element("tbody", {}, counts, ...rows)),
      element("p", { class: "kappa", text: `Fleiss' kappa: ${kappa === null ? "n/a" : kappa.toFixed(3)} (${report.agreement.readers} readers, ${report.agreement.items} shared ${pairs ? "pairs" : "images"})` }),
      element(
        "table",
        { class: "jobs report-items" },
        element("thead", {}, element("tr", {}, ...["#", "Truth", "Readers", "Fooled"].map((t) => element("th", { scope: "col", text: t })))),
        element("tbody", {}, ...items),
      ),
    );
    box.dataset.study = studyId;
  } catch (error) {
    box.replaceChildren(element("p", { class: "error", text: error.message }));
  }
  box.hidden = false;
}

async function inviteReader(studyId, row) {
  try {
    const made = await api(`/api/studies/${encodeURIComponent(studyId)}/invitations`, { method: "POST", json: {} });
    const link = element("input", { class: "invite-link", readonly: "", value: `${location.origin}/${made.link.slice(1)}`, "aria-label": "One-time invitation link" });
    row.append(element("span", { class: "invite", text: `One-time link, until ${when(made.expires)}: ` }), link);
  } catch (error) {
    showError($("#study-error"), error.message);
  }
}

/** A one-time invitation in the address (#invite=CODE): the reader names themself, the server
 * spends the invitation and answers a reader token, which the page keeps like a pasted one. */
function setupStudy() {
  $("#study-form").addEventListener("submit", submitAnswer);
  $("#studies-refresh").addEventListener("click", loadStudies);
  if (!location.hash.startsWith(INVITE_PREFIX)) return;
  const code = location.hash.slice(INVITE_PREFIX.length);
  const form = $("#invite-form");
  form.hidden = false;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = $("#invite-name").value.trim();
    if (!name) {
      showError($("#study-error"), "Type your name first.");
      return;
    }
    try {
      const joined = await api(`/api/invitations/${encodeURIComponent(code)}`, { method: "POST", json: { name } });
      history.replaceState(null, "", location.pathname); // the spent code leaves the address bar
      form.hidden = true;
      token = joined.token;
      localStorage.setItem(TOKEN_KEY, token);
      $("#token").value = token;
      if (await connect()) await takeStudy(joined.study);
    } catch (error) {
      showError($("#study-error"), error.message);
    }
  });
}

// ---------------------------------------------------------------- start

setupToken();
setupGenerate();
setupHandout();
setupTranslate();
setupVerify();
setupStudy();
$("#jobs-refresh").addEventListener("click", loadJobs);
loadHealth();
connect();
