// tfpilot serving web page, table models: one form field per input column (image file, text,
// number, category), sent as one TF Serving row ({"instances": [{...}]}) to :predict; every
// head's answer is shown by name. Reads the input spec from /v1/models/{name}/metadata.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const key = () => sessionStorage.getItem("tfpilot-api-key") || "";
  const headers = (extra) => Object.assign(key() ? { "X-API-Key": key() } : {}, extra || {});
  let spec = null;

  function field(input) {
    const row = document.createElement("div");
    row.className = "table-field";
    const label = document.createElement("label");
    label.textContent = input.name + " (" + input.kind + ")";
    label.htmlFor = "col-" + input.key;
    let el;
    if (input.kind === "image") {
      el = document.createElement("input");
      el.type = "file";
      el.accept = "image/*";
    } else if (input.kind === "category" && input.classes.length) {
      el = document.createElement("select");
      for (const c of input.classes) {
        const option = document.createElement("option");
        option.value = option.textContent = c;
        el.appendChild(option);
      }
    } else {
      el = document.createElement("input");
      el.type = input.kind === "number" ? "number" : "text";
      if (input.kind === "number") el.step = "any";
    }
    el.id = "col-" + input.key;
    el.dataset.key = input.key;
    el.dataset.kind = input.kind;
    row.append(label, el);
    return row;
  }

  async function readBase64(file) {
    const buffer = new Uint8Array(await file.arrayBuffer());
    let text = "";
    for (let i = 0; i < buffer.length; i += 0x8000) text += String.fromCharCode.apply(null, buffer.subarray(i, i + 0x8000));
    return btoa(text);
  }

  function show(prediction) {
    const out = $("table-result");
    out.replaceChildren();
    for (const head of spec.outputs) {
      const li = document.createElement("li");
      const value = prediction[head.key];
      if (head.kind === "number") {
        li.textContent = head.name + ": " + Number(value).toPrecision(5);
      } else {
        const label = prediction[head.key + "_label"];
        const score = head.kind === "binary" ? Math.max(value, 1 - value) : Math.max.apply(null, value);
        li.textContent = head.name + ": " + label + " (" + (100 * score).toFixed(1) + "%)";
      }
      out.appendChild(li);
    }
  }

  async function submit() {
    const name = $("model").value;
    const row = {};
    for (const el of $("table-fields").querySelectorAll("[data-key]")) {
      if (el.dataset.kind === "image") {
        if (!el.files[0]) { $("status").textContent = "Choose an image for " + el.dataset.key + "."; return; }
        row[el.dataset.key] = { b64: await readBase64(el.files[0]) };
      } else if (el.dataset.kind === "number") {
        if (el.value === "") { $("status").textContent = "Give a number for " + el.dataset.key + "."; return; }
        row[el.dataset.key] = parseFloat(el.value);
      } else {
        row[el.dataset.key] = el.value;
      }
    }
    const body = JSON.stringify({ instances: [row] });
    const response = await fetch("/v1/models/" + encodeURIComponent(name) + ":predict",
      { method: "POST", body: body, headers: headers({ "Content-Type": "application/json" }) });
    const answer = await response.json();
    if (!response.ok) { $("status").textContent = answer.error || response.statusText; return; }
    $("status").textContent = "";
    show(answer.predictions[0]);
  }

  async function onModel() {
    const section = $("table-input");
    section.hidden = true;
    spec = null;
    const name = $("model").value;
    if (!name) return;
    const response = await fetch("/v1/models/" + encodeURIComponent(name) + "/metadata", { headers: headers() });
    if (!response.ok) return;
    const meta = (await response.json()).metadata || {};
    if (!meta.input_spec || meta.input_spec.kind !== "table" || $("model").value !== name) return;
    spec = meta.input_spec;
    $("table-fields").replaceChildren(...spec.inputs.map(field));
    $("table-result").replaceChildren();
    $("model-info").textContent = "table model · inputs " + spec.inputs.map((c) => c.name).join(", ") +
      " · heads " + spec.outputs.map((o) => o.name).join(", ");
    section.hidden = false;
  }

  $("model").addEventListener("change", onModel);
  new MutationObserver(onModel).observe($("model"), { childList: true });  // the list loads (and reloads)
  $("table-go").addEventListener("click", () => submit().catch((e) => { $("status").textContent = String(e); }));
})();
