// tfpilot serving web page: pick a model, drop an image (or type a text), see the top-k bars.
// Talks to the same server's /v1/models and /v1/models/{name}/predict-file; no external assets.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const state = { models: [], key: sessionStorage.getItem("tfpilot-api-key") || "" };

  function headers() {
    return state.key ? { "X-API-Key": state.key } : {};
  }

  function setStatus(text, isError) {
    const el = $("status");
    el.textContent = text;
    el.className = isError ? "error" : "muted";
    el.hidden = !text;
  }

  async function errorText(response) {
    try {
      const body = await response.json();
      return body.error || response.statusText;
    } catch (e) {
      return response.status + " " + response.statusText;
    }
  }

  async function loadModels() {
    const response = await fetch("/v1/models", { headers: headers() });
    if (response.status === 401) {
      $("key-row").hidden = false;
      setStatus(await errorText(response), true);
      return;
    }
    if (!response.ok) {
      setStatus(await errorText(response), true);
      return;
    }
    $("key-row").hidden = !state.key;
    state.models = (await response.json()).models;
    const select = $("model");
    select.replaceChildren();
    for (const m of state.models) {
      const option = document.createElement("option");
      option.value = m.name;
      option.textContent = m.name + (m.state === "AVAILABLE" ? "" : " (" + m.state.toLowerCase() + ")");
      select.appendChild(option);
    }
    const notReady = state.models.filter((m) => m.state === "LOADING");
    if (notReady.length) {
      setStatus("Models are loading…", false);
      setTimeout(loadModels, 1000);
    } else {
      setStatus(state.models.length ? "Choose an input." : "No models are served.", false);
    }
    showModel();
  }

  function current() {
    return state.models.find((m) => m.name === $("model").value);
  }

  function showModel() {
    const m = current();
    $("image-input").hidden = !m || m.kind !== "image";
    $("text-input").hidden = !m || m.kind !== "text";
    if (!m) {
      $("model-info").textContent = "";
    } else if (m.kind) {
      $("model-info").textContent =
        m.kind + " model · input " + JSON.stringify(m.input_shape) + " · " + m.num_classes + " classes";
    } else {
      $("model-info").textContent = "SavedModel · signatures " + (m.signatures || []).join(", ") +
        " · use its :predict route (this page shows tfpilot classifiers)";
    }
    clearPreview();
    clearResult();
  }

  function clearPreview() {
    const preview = $("preview");
    if (preview.src) URL.revokeObjectURL(preview.src);
    preview.removeAttribute("src");
    preview.hidden = true;
  }

  function clearResult() {
    $("bars").replaceChildren();
    $("prediction").hidden = true;
  }

  function showResult(prediction) {
    $("top-label").textContent = prediction.label;
    $("top-score").textContent = "(" + (100 * prediction.score).toFixed(1) + "%)";
    $("prediction").hidden = false;
    const bars = $("bars");
    bars.replaceChildren();
    for (const item of prediction.top_k) {
      const li = document.createElement("li");
      li.className = "bar";
      const label = document.createElement("span");
      label.className = "label";
      label.textContent = item.label;
      const track = document.createElement("div");
      track.className = "track";
      const fill = document.createElement("div");
      fill.className = "fill";
      fill.style.width = (100 * item.score).toFixed(1) + "%";
      track.appendChild(fill);
      const score = document.createElement("span");
      score.className = "score";
      score.textContent = (100 * item.score).toFixed(1) + "%";
      li.append(label, track, score);
      bars.appendChild(li);
    }
  }

  async function predict(file) {
    const m = current();
    if (!m) return;
    const form = new FormData();
    form.append("files", file, file.name || "input");
    const k = Math.max(1, parseInt($("top-k").value, 10) || 5);
    setStatus("Predicting…", false);
    clearResult();
    const url = "/v1/models/" + encodeURIComponent(m.name) + "/predict-file?top_k=" + k;
    const response = await fetch(url, { method: "POST", body: form, headers: headers() });
    if (!response.ok) {
      if (response.status === 401) $("key-row").hidden = false;
      setStatus(await errorText(response), true);
      return;
    }
    const body = await response.json();
    setStatus("", false);
    showResult(body.predictions[0]);
  }

  function onImage(file) {
    if (!file) return;
    clearPreview();
    const preview = $("preview");
    preview.onload = () => { preview.hidden = false; };  // shown only once there is an image to show
    preview.src = URL.createObjectURL(file);
    predict(file);
  }

  $("model").addEventListener("change", showModel);
  $("file").addEventListener("change", (e) => onImage(e.target.files[0]));
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    onImage(e.dataTransfer.files[0]);
  });
  $("text-go").addEventListener("click", () => {
    const text = $("text").value;
    if (!text.trim()) { setStatus("Type some text first.", true); return; }
    predict(new File([text], "text.txt", { type: "text/plain" }));
  });
  $("key-save").addEventListener("click", () => {
    state.key = $("api-key").value;
    sessionStorage.setItem("tfpilot-api-key", state.key);
    loadModels();
  });
  loadModels().catch((e) => setStatus("Cannot reach the server: " + e, true));
})();
