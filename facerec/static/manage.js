// The manage page: list and search users, see a user's enrolled faces, add a user with
// name, email and photos (files or the camera), delete a user after a confirmation.
// Everything goes through the /users endpoints with a "manage" key.
"use strict";

import { api, ApiError, el, loadServerInfo, needsKey, setUpKeyForm, showMessage } from "./common.js";

const PAGE = 50;
const message = document.getElementById("message");
const usersBody = document.getElementById("users");
const total = document.getElementById("total");
const more = document.getElementById("more");
const search = document.getElementById("search");
const detail = document.getElementById("detail");
const addForm = document.getElementById("add-form");
const newName = document.getElementById("new-name");
const newId = document.getElementById("new-id");
const addResults = document.getElementById("add-results");
const pendingNode = document.getElementById("pending-photos");

let keyForm;
let nextOffset = null;
let selected = null;
let idTouched = false;
let thumbUrls = [];
const captured = []; // camera shots waiting for "Add user"

function fail(err) {
  if (!(err instanceof ApiError)) throw err;
  showMessage(message, err.message, "error");
  if (err.status === 401 || err.status === 403) keyForm.ask();
}

function shorten(text, max = 32) {
  return text.length <= max ? text : text.slice(0, max - 12) + "…" + text.slice(-11);
}

function slug(name) {
  return name.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase()
    .replace(/[^a-z0-9]+/g, "_").replace(/^_+|_+$/g, "").slice(0, 64);
}

async function loadUsers(append = false) {
  if (needsKey()) { keyForm.ask(); return; }
  const offset = append ? nextOffset : 0;
  const query = new URLSearchParams({ limit: PAGE, offset });
  if (search.value.trim()) query.set("name", search.value.trim());
  let body;
  try {
    body = await api("/users?" + query);
  } catch (err) { fail(err); return; }
  if (!append) usersBody.replaceChildren();
  for (const user of body.users) {
    const p = user.profile;
    const row = el("tr", { class: "user-row" + (p.id === selected ? " selected" : ""),
      "data-user": p.id, onclick: () => openUser(p.id) },
    el("td", { text: p.id }), el("td", { text: p.name || "" }), el("td", { text: p.email || "" }),
    el("td", { text: String(user.faces) }),
    el("td", {}, el("button", { type: "button", class: "danger delete", text: "Delete",
      onclick: (event) => { event.stopPropagation(); deleteUser(p.id); } })));
    usersBody.append(row);
  }
  nextOffset = body.next_offset;
  more.hidden = nextOffset === null;
  total.textContent = body.total + (body.total === 1 ? " user" : " users");
  usersBody.dataset.loaded = String(Date.now());
}

async function openUser(userId) {
  selected = userId;
  for (const row of usersBody.querySelectorAll("tr")) {
    row.classList.toggle("selected", row.dataset.user === userId);
  }
  let user;
  try {
    user = await api("/users/" + encodeURIComponent(userId));
  } catch (err) { fail(err); return; }
  const p = user.profile;
  document.getElementById("detail-title").textContent = (p.name || p.id) + " (" + p.id + ")";
  const extra = Object.entries(p).filter(([k]) => !["id", "name"].includes(k))
    .map(([k, v]) => k + ": " + v).join(" · ");
  document.getElementById("detail-profile").textContent =
    (extra || "no email") + " · " + user.faces.length + " enrolled face(s)";
  thumbUrls.forEach((u) => URL.revokeObjectURL(u));
  thumbUrls = [];
  const grid = document.getElementById("detail-faces");
  grid.replaceChildren(...user.faces.map((face) => {
    const img = el("img", { alt: "face " + face.face_id, "data-face": face.face_id });
    api("/users/" + encodeURIComponent(userId) + "/faces/" + face.face_id + "/image")
      .then((blob) => { const url = URL.createObjectURL(blob); thumbUrls.push(url); img.src = url; })
      .catch(() => { img.alt = "photo missing"; });
    return el("figure", {}, img, el("figcaption", { text: "face " + face.face_id + " " }),
      el("button", { type: "button", class: "danger", text: "Remove",
        onclick: () => removeFace(userId, face.face_id) }));
  }));
  if (!user.faces.length) grid.replaceChildren(el("p", { class: "muted", text: "No enrolled face yet." }));
  detail.hidden = false;
  detail.dataset.user = userId;
}

async function deleteUser(userId) {
  if (!confirm("Delete user " + userId + " with all their faces and photos? This cannot be undone.")) {
    return;
  }
  try {
    await api("/users/" + encodeURIComponent(userId), { method: "DELETE" });
  } catch (err) { fail(err); return; }
  showMessage(message, "User " + userId + " deleted.", "ok");
  if (selected === userId) { selected = null; detail.hidden = true; }
  await loadUsers();
}

async function removeFace(userId, faceId) {
  if (!confirm("Remove face " + faceId + " of " + userId + "?")) return;
  try {
    await api("/users/" + encodeURIComponent(userId) + "/faces/" + faceId, { method: "DELETE" });
  } catch (err) { fail(err); return; }
  await openUser(userId);
  await loadUsers();
}

// Enroll photos one by one; each gets its own line (enrolled, or why not).
async function enrollPhotos(userId, photos) {
  let enrolled = 0;
  for (const [i, photo] of photos.entries()) {
    const form = new FormData();
    form.append("photo", photo, photo.name || "camera-" + (i + 1) + ".jpg");
    const name = shorten(photo.name || "camera photo " + (i + 1));
    try {
      const r = await api("/users/" + encodeURIComponent(userId) + "/photos",
        { method: "POST", body: form });
      enrolled += 1;
      const flags = r.flags.length ? " (" + r.flags.join(", ") + ")" : "";
      addResults.append(el("li", { class: "ok", text: name + ": enrolled as face " + r.face_id + flags }));
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      addResults.append(el("li", { class: "error", text: name + ": " + err.message }));
      if (err.status === 401 || err.status === 403) { keyForm.ask(); break; }
    }
  }
  return enrolled;
}

async function addUser(event) {
  event.preventDefault();
  const userId = newId.value.trim();
  const photos = [...document.getElementById("new-photos").files, ...captured];
  addResults.replaceChildren();
  const profile = { id: userId, name: newName.value.trim() };
  const email = document.getElementById("new-email").value.trim();
  if (email) profile.email = email;
  try {
    await api("/users", { method: "POST", body: profile });
  } catch (err) { fail(err); return; }
  const enrolled = await enrollPhotos(userId, photos);
  showMessage(message, "User " + userId + " saved with " + enrolled + " of " + photos.length +
    " photo(s) enrolled." + (enrolled < photos.length ? " See below why not all." : ""),
  enrolled > 0 || !photos.length ? "ok" : "error");
  addForm.reset();
  idTouched = false;
  captured.length = 0;
  pendingNode.replaceChildren();
  await loadUsers();
  await openUser(userId);
}

async function openCaptureCamera() {
  const video = document.getElementById("capture-video");
  try {
    video.srcObject = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
    document.getElementById("camera-box").hidden = false;
  } catch (err) {
    showMessage(message, "The camera could not be opened (" + err.name + "); choose photo files instead.",
      "error");
  }
}

function takePhoto() {
  const video = document.getElementById("capture-video");
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  canvas.toBlob((blob) => {
    captured.push(blob);
    pendingNode.append(el("img", { src: URL.createObjectURL(blob), alt: "camera photo " + captured.length }));
  }, "image/jpeg", 0.92);
}

async function main() {
  await loadServerInfo();
  keyForm = setUpKeyForm(() => { showMessage(message, ""); loadUsers(); });
  let timer;
  search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => loadUsers(), 250); });
  more.addEventListener("click", () => loadUsers(true));
  newName.addEventListener("input", () => { if (!idTouched) newId.value = slug(newName.value); });
  newId.addEventListener("input", () => { idTouched = true; });
  addForm.addEventListener("submit", addUser);
  document.getElementById("camera-open").addEventListener("click", openCaptureCamera);
  document.getElementById("camera-shot").addEventListener("click", takePhoto);
  document.getElementById("detail-delete").addEventListener("click", () => deleteUser(detail.dataset.user));
  document.getElementById("detail-photos").addEventListener("change", async (event) => {
    const userId = detail.dataset.user;
    addResults.replaceChildren();
    await enrollPhotos(userId, [...event.target.files]);
    event.target.value = "";
    await openUser(userId);
    await loadUsers();
  });
  if (navigator.mediaDevices === undefined) document.getElementById("capture").hidden = true;
  await loadUsers();
}

main();
