// The camera page: frames from getUserMedia go to POST /frames one at a time (the next
// frame is sent only once the previous answer arrived, so requests never pile up and the
// rate adapts to what the server sustains); every face's box is drawn over the video with
// its voted name and score, or "unknown". Without a camera, a photo can be checked.
"use strict";

import { api, ApiError, el, loadServerInfo, needsKey, setUpKeyForm, showMessage } from "./common.js";

const params = new URLSearchParams(location.search);
const FRAME_WIDTH = Math.max(160, parseInt(params.get("width") || "640", 10) || 640);
const JPEG_QUALITY = 0.8;
const MAX_FPS = Math.max(1, parseFloat(params.get("fps") || "30") || 30);
const FPS_WINDOW_MS = 3000;
const COLORS = { recognized: "#2e9d4a", unknown: "#d33a2c", pending: "#e0a100" };

const streamId = "cam-" + Array.from(crypto.getRandomValues(new Uint8Array(8)),
  (b) => b.toString(16).padStart(2, "0")).join("");
const video = document.getElementById("video");
const overlay = document.getElementById("overlay");
const message = document.getElementById("message");
const facesList = document.getElementById("faces");
const fpsNode = document.getElementById("fps");
const framesNode = document.getElementById("frames");
const timingNode = document.getElementById("timing");
const toggle = document.getElementById("toggle");
const grabCanvas = document.createElement("canvas");

let running = false;
let loopActive = false;
let answered = 0;
let answerTimes = [];
let keyForm;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function label(face) {
  if (face.status === "recognized") {
    const score = face.similarity_score === null ? "" : " " + face.similarity_score.toFixed(2);
    return face.name + score;
  }
  if (face.status === "unknown") return "unknown";
  return (face.name ? face.name + "? " : "") + "checking…";
}

function describe(face) {
  if (face.track_id === undefined) { // a photo: no track, no votes
    const best = face.matches && face.matches[0];
    return best ? "closest: " + best.user_id + " " + best.similarity_score.toFixed(2)
      : "no enrolled face to compare with";
  }
  const how = face.identified ? "identified this frame" : "tracked";
  return "votes " + face.votes + "/" + face.votes_cast + " · track " + face.track_id + " · " + how;
}

function drawBoxes(canvas, width, height, faces, sourceWidth) {
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, width, height);
  const scale = width / sourceWidth;
  const fontSize = Math.max(14, Math.round(width / 32));
  ctx.font = "600 " + fontSize + "px system-ui, sans-serif";
  ctx.textBaseline = "bottom";
  for (const face of faces) {
    const status = face.status || (face.recognized ? "recognized" : "unknown");
    const color = COLORS[status] || "#999";
    const b = face.box;
    const x = b.x * scale, y = b.y * scale, w = b.width * scale, h = b.height * scale;
    ctx.lineWidth = Math.max(2, width / 240);
    ctx.strokeStyle = color;
    ctx.strokeRect(x, y, w, h);
    const text = label(face);
    const tw = ctx.measureText(text).width + 10;
    const ty = y > fontSize + 8 ? y : y + h + fontSize + 8;
    ctx.fillStyle = color;
    ctx.fillRect(x - ctx.lineWidth / 2, ty - fontSize - 8, tw, fontSize + 8);
    ctx.fillStyle = "#fff";
    ctx.fillText(text, x + 5 - ctx.lineWidth / 2, ty - 4);
  }
}

function listFaces(list, faces) {
  list.replaceChildren(...faces.map((face) => {
    const status = face.status || (face.recognized ? "recognized" : "unknown");
    return el("li", { class: status, "data-status": status, "data-user": face.user_id || "" },
      el("div", { class: "name", text: label(face) }),
      el("div", { class: "detail", text: describe(face) }));
  }));
  if (!faces.length) list.replaceChildren(el("li", { class: "none", text: "no face in view" }));
}

function countAnswer(body) {
  const now = performance.now();
  answered += 1;
  framesNode.dataset.identified = String(Number(framesNode.dataset.identified || 0) + body.identified);
  framesNode.dataset.tracked = String(Number(framesNode.dataset.tracked || 0) + body.tracked);
  answerTimes.push(now);
  answerTimes = answerTimes.filter((t) => now - t <= FPS_WINDOW_MS);
  const span = (answerTimes[answerTimes.length - 1] - answerTimes[0]) / 1000;
  const fps = answerTimes.length > 1 && span > 0 ? (answerTimes.length - 1) / span : 0;
  fpsNode.textContent = fps.toFixed(1) + " fps";
  fpsNode.dataset.fps = fps.toFixed(2);
  framesNode.textContent = answered + " frames";
  framesNode.dataset.frames = String(answered);
}

function grabFrame() {
  const scale = Math.min(1, FRAME_WIDTH / video.videoWidth);
  grabCanvas.width = Math.round(video.videoWidth * scale);
  grabCanvas.height = Math.round(video.videoHeight * scale);
  grabCanvas.getContext("2d").drawImage(video, 0, 0, grabCanvas.width, grabCanvas.height);
  return new Promise((resolve) => grabCanvas.toBlob(resolve, "image/jpeg", JPEG_QUALITY));
}

async function sendFrame(blob) {
  const form = new FormData();
  form.append("stream", streamId);
  form.append("image", blob, "frame.jpg");
  return api("/frames", { method: "POST", body: form });
}

async function loop() {
  if (loopActive) return;
  loopActive = true;
  try {
    while (running) {
      if (!video.videoWidth) { await sleep(50); continue; }
      const started = performance.now();
      const blob = await grabFrame();
      let body;
      try {
        body = await sendFrame(blob);
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        showMessage(message, err.message, "error");
        if (err.status === 401 || err.status === 403) {
          stop();
          keyForm.ask();
          return;
        }
        await sleep(err.retryAfter * 1000);
        continue;
      }
      if (message.classList.contains("error")) showMessage(message, "");
      drawBoxes(overlay, video.videoWidth, video.videoHeight, body.faces, body.width);
      listFaces(facesList, body.faces);
      countAnswer(body);
      timingNode.textContent = "server: detect " + body.timing_ms.detect + " ms, identify " +
        body.timing_ms.identify + " ms (" + body.identified + " identified, " + body.tracked +
        " tracked)";
      const wait = 1000 / MAX_FPS - (performance.now() - started);
      if (wait > 0) await sleep(wait);
    }
  } finally {
    loopActive = false;
  }
}

function start() {
  if (needsKey()) { keyForm.ask(); return; }
  running = true;
  toggle.textContent = "Stop";
  loop();
}

function stop() {
  running = false;
  toggle.textContent = "Start";
}

async function openCamera() {
  const reason = document.getElementById("fallback-reason");
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    reason.textContent = "The browser offers no camera here (it allows one only on secure (https) " +
      "or localhost pages). Choose a photo instead.";
    return false;
  }
  try {
    video.srcObject = await navigator.mediaDevices.getUserMedia(
      { video: { width: { ideal: 1280 }, height: { ideal: 720 } }, audio: false });
    await video.play();
    return true;
  } catch (err) {
    reason.textContent = "The camera could not be opened (" + err.name + ": " + err.message +
      "). Choose a photo instead.";
    return false;
  }
}

async function checkPhoto(file) {
  const img = document.getElementById("photo");
  const stage = document.getElementById("photo-stage");
  const form = new FormData();
  form.append("photo", file);
  img.src = URL.createObjectURL(file);
  await img.decode().catch(() => {});
  stage.hidden = false;
  const canvas = document.getElementById("photo-overlay");
  canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  try {
    const body = await api("/upload_photo", { method: "POST", body: form });
    const faces = body.faces.map((f) => ({ ...f, status: f.recognized ? "recognized" : "unknown",
      name: (f.profile && f.profile.name) || f.user_id }));
    drawBoxes(canvas, img.naturalWidth, img.naturalHeight, faces, img.naturalWidth);
    listFaces(document.getElementById("photo-faces"), faces);
    showMessage(message, faces.length + " face(s) in the photo", "ok");
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    showMessage(message, err.code === "no_face" ? "No face found in the photo." : err.message,
      "error");
    if (err.status === 401 || err.status === 403) keyForm.ask();
  }
}

async function main() {
  await loadServerInfo();
  keyForm = setUpKeyForm(() => { showMessage(message, ""); if (!running) start(); });
  document.getElementById("photo-input").addEventListener("change", (event) => {
    if (event.target.files.length) checkPhoto(event.target.files[0]);
  });
  toggle.addEventListener("click", () => (running ? stop() : start()));
  if (await openCamera()) {
    start();
  } else {
    document.getElementById("camera-stage").hidden = true;
    document.getElementById("stats").hidden = true;
    if (needsKey()) keyForm.ask();
  }
}

main();
