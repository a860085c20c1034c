// The Operations tab: each operation's steps, live. The EventSource sends the session cookie; on each
// event of an operation of this addon (or one not known to be another's) the operation is read again
// (GET /v1/operations/{id}) and drawn.
"use strict";
(function () {
  const section = document.getElementById("operations");
  if (!section) return;
  const addon = section.dataset.addon;
  const live = document.getElementById("live-status");
  const pending = new Map();  // operation id -> a scheduled refresh
  const foreign = new Set();  // operations of other addons: not read again

  function text(tag, cls, value) {
    const el = document.createElement(tag);
    if (cls) el.className = cls;
    el.textContent = value;
    return el;
  }

  function draw(op) {
    let card = document.getElementById("op-" + op.id);
    if (!card) {
      card = document.createElement("article");
      card.className = "card operation";
      card.id = "op-" + op.id;
      card.dataset.operation = op.id;
      const first = section.querySelector("article.operation");
      if (first) section.insertBefore(card, first); else section.appendChild(card);
    }
    card.replaceChildren();
    const title = text("h2", "", op.kind + " ");
    title.appendChild(text("span", "status status-" + op.status + " op-status", op.status));
    card.appendChild(title);
    const when = "started " + (op.started_at || "").slice(0, 19).replace("T", " ") + " UTC" +
      (op.finished_at ? ", finished " + op.finished_at.slice(0, 19).replace("T", " ") + " UTC" : "") +
      (op.requested_by ? ", requested by " + op.requested_by.name + " (" + op.requested_by.id + ")" : "");
    card.appendChild(text("p", "muted", when));
    if (op.error) card.appendChild(text("p", "error", op.error));
    const list = document.createElement("ol");
    list.className = "steps";
    for (const step of op.steps) {
      const item = document.createElement("li");
      item.className = "step step-" + step.status;
      item.dataset.step = step.name;
      item.appendChild(text("span", "step-name", step.name));
      item.appendChild(document.createTextNode(" "));
      item.appendChild(text("span", "step-status", step.status));
      if (step.detail) {
        item.appendChild(document.createTextNode(" "));
        item.appendChild(text("span", "muted step-detail", step.detail));
      }
      list.appendChild(item);
    }
    card.appendChild(list);
  }

  function refresh(id) {
    if (pending.has(id)) return;  // events come in bursts: one read per burst
    pending.set(id, setTimeout(async () => {
      pending.delete(id);
      const response = await fetch("/v1/operations/" + encodeURIComponent(id), {credentials: "same-origin"});
      if (!response.ok) return;
      const op = (await response.json()).operation;
      if (op.addon === addon) draw(op); else foreign.add(id);
    }, 150));
  }

  const stream = new EventSource("/v1/events/stream?after=" + encodeURIComponent(section.dataset.after));
  const types = ["Started", "StepStarted", "StepSucceeded", "StepFailed", "StepUndone", "Succeeded",
                 "Compensated", "CompensationFailed", "Abandoned"];
  for (const type of types) {
    stream.addEventListener("Operation." + type, (message) => {
      // Only Started names the addon: any other event of an operation not known to be another addon's
      // is read (its card drawn if it is this addon's), so none of this addon's is missed.
      const event = JSON.parse(message.data);
      const id = event.aggregate_id;
      if (foreign.has(id)) return;
      if (event.data && event.data.addon && event.data.addon !== addon) { foreign.add(id); return; }
      refresh(id);
    });
  }
  stream.onopen = () => { live.textContent = "Live from the event stream."; };
  stream.onerror = () => { live.textContent = "Event stream interrupted: reconnecting…"; };
})();
