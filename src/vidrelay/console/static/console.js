// vidrelay's web apps work without this file; it only adds live updates where a page asks.
"use strict";

// A <progress data-poll="URL"> follows its job: it asks URL (JSON: status, progress,
// finished) every data-interval-ms and reloads the page once the job has finished, so the
// page shows the video or the error. Without this script the page refreshes itself instead.
for (const bar of document.querySelectorAll("progress[data-poll]")) {
  const status = document.getElementById(bar.dataset.status || "");
  const text = document.getElementById(`${bar.id}-text`);
  const interval = Number(bar.dataset.intervalMs) || 1000;
  const tick = async () => {
    let job;
    try {
      const answer = await fetch(bar.dataset.poll, { headers: { accept: "application/json" } });
      // signed out (sent to the sign-in form) or gone: stop; the next reload says why
      if (!answer.ok || answer.redirected) return;
      job = await answer.json();
    } catch {
      window.setTimeout(tick, interval * 3); // the server is restarting: try again later
      return;
    }
    bar.value = job.progress;
    bar.textContent = `${job.progress}%`;
    if (text) text.textContent = `${job.progress}%`;
    if (status) status.textContent = job.status;
    if (job.finished) {
      window.location.reload();
    } else {
      window.setTimeout(tick, interval);
    }
  };
  window.setTimeout(tick, interval);
}

// A <select data-submit-on-change> sends its form when changed (the form's own button does
// the same without this script).
for (const select of document.querySelectorAll("select[data-submit-on-change]")) {
  select.addEventListener("change", () => {
    const button = document.getElementById(select.dataset.submitOnChange);
    if (button) button.click();
  });
}
