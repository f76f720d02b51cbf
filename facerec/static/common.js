// Shared by the camera and the manage page: the API key (entered once, kept in this
// browser's localStorage), calls to the API with it, and clear messages for errors.
"use strict";

const KEY_STORAGE = "facerec.apiKey";

export class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

export function getKey() {
  return localStorage.getItem(KEY_STORAGE) || "";
}

export function setKey(key) {
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
}

let authEnabled = true;

// Whether the server wants a key at all (FACEREC_AUTH_ENABLED=false turns keys off).
export async function loadServerInfo() {
  try {
    const r = await fetch("/health");
    const body = await r.json();
    authEnabled = body.auth_enabled !== false;
    return body;
  } catch (err) {
    return null;
  }
}

export function needsKey() {
  return authEnabled && !getKey();
}

function explain(status, body, retryAfter) {
  const message = (body && body.message) || "";
  switch (status) {
    case 401:
      return "The API key was refused (" + (message || "unauthorized") + "). Enter a valid key.";
    case 403:
      return "This API key may not do that: " + message +
        " (the manage page needs a key with the \"manage\" scope).";
    case 413:
      return "The photo is too large: " + message;
    case 429:
      return "Too many requests: the server's rate limit was reached; retrying in " +
        retryAfter + " s.";
    default:
      return message || ("The server answered " + status + ".");
  }
}

// Call the API: `body` is FormData, a plain object (sent as JSON) or undefined.
// Resolves to the JSON answer (or a Blob for images); rejects with ApiError.
export async function api(path, { method = "GET", body } = {}) {
  const headers = {};
  const key = getKey();
  if (key) headers["X-API-Key"] = key;
  let payload = body;
  if (body !== undefined && !(body instanceof FormData)) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body: payload });
  } catch (err) {
    throw new ApiError(0, "network", "The server cannot be reached (" + err.message + ").", 1);
  }
  const type = response.headers.get("Content-Type") || "";
  if (response.ok) {
    return type.startsWith("application/json") ? response.json() : response.blob();
  }
  let data = null;
  if (type.startsWith("application/json")) {
    try { data = await response.json(); } catch (err) { data = null; }
  }
  const retryAfter = Math.max(1, parseInt(response.headers.get("Retry-After") || "1", 10) || 1);
  const code = (data && data.error) || "http_" + response.status;
  throw new ApiError(response.status, code, explain(response.status, data, retryAfter), retryAfter);
}

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}

export function showMessage(node, text, kind = "info") {
  node.textContent = text;
  node.className = "message " + kind;
  node.hidden = !text;
}

// The key form in the page header: shown when a key is needed or was refused.
export function setUpKeyForm(onSaved) {
  const form = document.getElementById("key-form");
  const input = document.getElementById("api-key");
  const shown = document.getElementById("key-shown");
  const change = document.getElementById("key-change");
  function refresh() {
    const key = getKey();
    shown.textContent = key ? "key …" + key.slice(-4) : (authEnabled ? "no key" : "keys off");
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setKey(input.value.trim());
    input.value = "";
    form.hidden = true;
    refresh();
    onSaved();
  });
  change.addEventListener("click", () => { form.hidden = false; input.focus(); });
  refresh();
  return {
    ask() { form.hidden = false; refresh(); input.focus(); },
    refresh,
  };
}
