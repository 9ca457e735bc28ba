// CSV import: upload, progress while the job runs, counts and the refused-rows report.
import { api, download, toast } from "../bridge.js";
import { $, badge, busy, clearErrors, dateTime, h, load, number, replace, showErrors, table } from "../ui.js";

const POLL_MS = 1000;

function reportButton(job) {
  return h("button", { type: "button", class: "btn", onclick: () =>
    download(`/api/imports/${job.id}/errors.csv`, `import-${job.id}-refused.csv`)
      .catch((e) => toast(e.message, { error: true })) }, "Download error report");
}

function showProgress(job) {
  $("#progress-card").hidden = false;
  replace($("#progress-badge"), badge(job.status));
  const total = job.total_rows || 0;
  const share = total ? Math.min(1, job.processed_rows / total) : (job.status === "done" ? 1 : 0);
  const finished = job.status === "done" || job.status === "failed";
  replace($("#progress"),
    h("p", {}, `${job.filename}: ${number(job.processed_rows)} of ${number(total)} rows`),
    h("div", { class: "progress", role: "progressbar", "aria-label": "Import progress",
               "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(Math.round(share * 100)) },
      h("span", { style: `width:${(share * 100).toFixed(1)}%` })),
    h("dl", { class: "facts", style: "margin-top:.75rem" },
      h("dt", {}, "Imported"), h("dd", {}, number(job.imported)),
      h("dt", {}, "Already subscribed"), h("dd", {}, number(job.duplicates)),
      h("dt", {}, "Refused"), h("dd", {}, number(job.refused))),
    finished && job.refused ? h("div", { class: "stack", style: "margin-top:.75rem" },
      table([{ label: "Row", num: true, cell: (r) => r.row }, { label: "Phone", cell: (r) => r.phone },
             { label: "Reason", cell: (r) => r.reason }], (job.refused_rows || []).slice(0, 10),
            { caption: "Refused rows" }),
      reportButton(job)) : null);
  return finished;
}

async function follow(id) {
  for (;;) {
    const job = await api(`/api/imports/${id}`);
    if (showProgress(job)) {
      toast(job.status === "done" ? `Import finished: ${number(job.imported)} imported` : "The import failed",
            { error: job.status !== "done" });
      history();
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

async function history() {
  const el = $("#history");
  const data = await load(el, () => api("/api/imports", { query: { limit: 20 } }));
  if (!data) return;
  if (!data.items.length) { replace(el, h("p", { class: "muted" }, "No imports yet.")); return; }
  el.style.padding = "0";
  replace(el, table([
    { label: "File", class: "primary-cell", cell: (j) => j.filename },
    { label: "Status", cell: (j) => badge(j.status) },
    { label: "Imported", num: true, cell: (j) => number(j.imported) },
    { label: "Refused", num: true, cell: (j) => number(j.refused) },
    { label: "Uploaded", cell: (j) => dateTime(j.created_at) },
    { label: "Report", cell: (j) => j.refused ? h("button", { type: "button", class: "btn btn-plain",
        onclick: () => download(`/api/imports/${j.id}/errors.csv`, `import-${j.id}-refused.csv`) },
        h("span", {}, "Download"), h("span", { class: "visually-hidden" }, ` refused rows of ${j.filename}`)) : "—" },
  ], data.items, { caption: "Earlier imports" }));
}

$("#upload").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  busy($("#upload-btn"), async () => {
    clearErrors(form);
    const file = form.file.files[0];
    if (!file) { showErrors(form, { file: "Choose a CSV file." }); return; }
    const body = new FormData();
    body.append("file", file);
    try {
      const job = await api("/api/imports", { method: "POST", body });
      $("#file").dataset.field = "file";
      form.reset();
      showProgress(job);
      await follow(job.id);
    } catch (error) {
      showErrors(form, { file: error.message });
    }
  });
});
$("#file").dataset.field = "file";
history();
