// EdgeGAN in the browser: camera -> exported ONNX student (onnxruntime-web) -> cartoon, all on this device.
//
// Pre/post-processing is read from the model's own "edgegan" metadata entry and follows
// edgegan/runtime/metadata.py (ModelInfo.preprocess / postprocess) operation for operation, in float32,
// so a given RGB crop gives the same cartoon here as in the Python runtime.
import * as ort from "./ort/ort.min.mjs";

const METADATA_KEY = "edgegan";
const FORMAT = "edgegan-model-v1";
const CROP_SCALE = 1.8; // as edgegan.runtime.faces.crop_square: hair, chin and some background
const CROP_LIFT = 0.08;
const DETECT_EVERY = 3; // frames between face detections (edgegan demo --detect-every)
const DETECT_DUTY = 0.25; // at most this share of the time detecting: on a CPU it competes with the model
const MAX_MISSES = 15; // frames a lost face keeps its box before the manual box takes over

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const modelUrl = params.get("model") || "model.onnx";

const state = {
  ready: false,
  error: null,
  info: null,
  session: null,
  backend: "", // label shown on the page
  inputType: "float32",
  source: "none", // "camera" | "photo" | "none"
  stream: null,
  view: params.get("view") || "side",
  region: params.get("region") || "face",
  manual: { cx: 0.5, cy: 0.45, side: 0.6 }, // the draggable box, as fractions of the frame
  photo: null,
  paused: false,
  queue: Promise.resolve(),
  webgpuAvailable: false,
  stats: { frames: 0, fps: 0, inferMs: 0, frameMs: 0, detectMs: 0, faces: 0, backend: "", threads: 1 },
  recent: { infer: [], frame: [], stamps: [] },
};

const frameCanvas = document.createElement("canvas");
const frameCtx = frameCanvas.getContext("2d", { willReadFrequently: true });
const inCanvas = document.createElement("canvas");
const inCtx = inCanvas.getContext("2d", { willReadFrequently: true });
// Small work canvases stay in CPU memory (willReadFrequently): they are written with putImageData every
// frame, which on a GPU-backed canvas means an upload (and on a machine without a GPU, software GL).
const outSmall = document.createElement("canvas");
const outSmallCtx = outSmall.getContext("2d", { willReadFrequently: true });
const maskCanvas = document.createElement("canvas");
const maskCtx = maskCanvas.getContext("2d", { willReadFrequently: true });
const inputView = $("input");
const outputView = $("output");
const video = $("video");

// ---------------------------------------------------------------------------------------------- messages
function showMessage(text, kind = "error") {
  const box = $("message");
  box.textContent = text;
  box.className = `message ${kind}`;
  box.hidden = false;
  box.dataset.kind = kind;
}

function clearMessage() {
  $("message").hidden = true;
}

function fail(text) {
  state.error = text;
  showMessage(text, "error");
  $("stat-backend").textContent = "unavailable";
}

function firstLine(err) {
  return String(err && err.message ? err.message : err).split("\n")[0].slice(0, 300);
}

// ---------------------------------------------------------------------------- metadata (ONNX protobuf)
// onnxruntime-web does not expose ModelProto.metadata_props, so read it as edgegan.runtime.metadata_io does:
// walk the top-level protobuf fields of the file and pick field 14 (StringStringEntryProto key=1, value=2).
function readVarint(buf, pos) {
  let value = 0;
  let scale = 1;
  for (;;) {
    if (pos >= buf.length) throw new Error("truncated varint");
    const b = buf[pos++];
    value += (b & 0x7f) * scale;
    if (!(b & 0x80)) return [value, pos];
    scale *= 128;
  }
}

function* protoFields(buf, start, end) {
  let pos = start;
  while (pos < end) {
    let key;
    [key, pos] = readVarint(buf, pos);
    const number = Math.floor(key / 8);
    const wire = key % 8;
    if (wire === 0) [, pos] = readVarint(buf, pos);
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      let len;
      [len, pos] = readVarint(buf, pos);
      if (pos + len > end) throw new Error("field runs past the end of the file");
      yield [number, pos, pos + len];
      pos += len;
    } else throw new Error(`unsupported protobuf wire type ${wire}`);
  }
  if (pos !== end) throw new Error("truncated protobuf message");
}

function readOnnxMetadata(bytes) {
  const text = new TextDecoder("utf-8", { fatal: true });
  for (const [number, start, end] of protoFields(bytes, 0, bytes.length)) {
    if (number !== 14) continue;
    const entry = {};
    for (const [n, s, e] of protoFields(bytes, start, end)) {
      if (n === 1 || n === 2) entry[n] = text.decode(bytes.subarray(s, e));
    }
    if (entry[1] === METADATA_KEY) return entry[2] ?? "";
  }
  return null;
}

function parseModelInfo(json, name) {
  let info;
  try {
    info = JSON.parse(json);
  } catch (err) {
    throw new Error(`${name}: unreadable EdgeGAN metadata (${firstLine(err)})`);
  }
  if (!info || info.format !== FORMAT) throw new Error(`${name}: not EdgeGAN metadata (format ${info && info.format})`);
  const defaults = { layout: "NCHW", color: "RGB", scale: 1 / 127.5, offset: -1, input_name: "image",
    output_name: "cartoon", stride: 4, dynamic_size: false };
  info = { ...defaults, ...info };
  if (!["NCHW", "NHWC"].includes(info.layout)) throw new Error(`${name}: layout ${info.layout} is not NCHW or NHWC`);
  if (!["RGB", "BGR"].includes(info.color)) throw new Error(`${name}: colour order ${info.color} is not RGB or BGR`);
  if (!(info.input_size > 0) || !Number.isFinite(info.scale) || info.scale === 0 || !Number.isFinite(info.offset)) {
    throw new Error(`${name}: metadata has no usable input_size/scale/offset`);
  }
  return info;
}

// --------------------------------------------------------------- pre/post-processing (= ModelInfo's numpy)
// numpy: x = u8.astype(float32) * float32(scale) + float32(offset): two float32 roundings, in that order.
export function preprocess(info, rgba, width, height, out) {
  const n = width * height;
  const s = Math.fround(info.scale);
  const o = Math.fround(info.offset);
  const [r, g, b] = info.color === "BGR" ? [2, 1, 0] : [0, 1, 2];
  if (info.layout === "NCHW") {
    for (let i = 0, p = 0; i < n; i++, p += 4) {
      out[i] = Math.fround(rgba[p + r] * s) + o; // the Float32Array store is the second rounding
      out[n + i] = Math.fround(rgba[p + g] * s) + o;
      out[2 * n + i] = Math.fround(rgba[p + b] * s) + o;
    }
  } else {
    for (let i = 0, p = 0; i < n; i++, p += 4) {
      out[3 * i] = Math.fround(rgba[p + r] * s) + o;
      out[3 * i + 1] = Math.fround(rgba[p + g] * s) + o;
      out[3 * i + 2] = Math.fround(rgba[p + b] * s) + o;
    }
  }
  return out;
}

// numpy.rint rounds half to even; Math.round rounds half up, which would differ on exact .5 values.
function rint(v) {
  const f = Math.floor(v);
  const d = v - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

// numpy: clip(rint((y - float32(offset)) / float32(scale)), 0, 255) with float32 intermediates.
export function postprocess(info, y, width, height, rgba) {
  const n = width * height;
  const s = Math.fround(info.scale);
  const o = Math.fround(info.offset);
  const [r, g, b] = info.color === "BGR" ? [2, 1, 0] : [0, 1, 2];
  const nchw = info.layout === "NCHW";
  const u8 = (v) => {
    const q = rint(Math.fround(Math.fround(v - o) / s));
    return q > 255 ? 255 : q >= 0 ? q : 0; // NaN -> 0
  };
  for (let i = 0, p = 0; i < n; i++, p += 4) {
    rgba[p + r] = u8(nchw ? y[i] : y[3 * i]);
    rgba[p + g] = u8(nchw ? y[n + i] : y[3 * i + 1]);
    rgba[p + b] = u8(nchw ? y[2 * n + i] : y[3 * i + 2]);
    rgba[p + 3] = 255;
  }
  return rgba;
}

// ---------------------------------------------------------------------------------------------- model
async function webgpuAdapter() {
  if (!navigator.gpu) return false;
  try {
    return Boolean(await navigator.gpu.requestAdapter());
  } catch {
    return false;
  }
}

function wasmLabel() {
  const threads = ort.env.wasm.numThreads;
  let label = `WASM SIMD, ${threads} thread${threads === 1 ? "" : "s"}`;
  if (!self.crossOriginIsolated) label += " (page not cross-origin isolated: serve it with `edgegan web --serve` for threads)";
  return label;
}

async function createSession(bytes, preference) {
  const wantGpu = preference === "webgpu" || (preference === "auto" && state.webgpuAvailable);
  if (wantGpu) {
    if (!state.webgpuAvailable) {
      showMessage("WebGPU is not available in this browser: running on WASM.", "info");
    } else {
      try {
        const session = await ort.InferenceSession.create(bytes, { executionProviders: ["webgpu"] });
        return [session, "WebGPU"];
      } catch (err) {
        showMessage(`WebGPU could not run this model (${firstLine(err)}): running on WASM.`, "info");
      }
    }
  }
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
  return [session, wasmLabel()];
}

async function loadModel(url = modelUrl, preference = $("backend").value) {
  state.ready = false;
  state.error = null;
  const name = url.split("/").pop();
  let bytes;
  try {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`HTTP ${response.status} ${response.statusText}`.trim());
    bytes = new Uint8Array(await response.arrayBuffer());
  } catch (err) {
    if (location.protocol === "file:") {
      return fail(`Cannot load ${name} from a file:// page: serve this folder over HTTP, e.g. ` +
        "`edgegan web --serve --out DIR` (browsers block models and WASM on file://).");
    }
    return fail(`Cannot load the model ${name} (${firstLine(err)}).`);
  }
  let info;
  try {
    const json = readOnnxMetadata(bytes);
    if (json === null) {
      return fail(`${name} has no EdgeGAN metadata, so this page does not know its pre/post-processing: ` +
        "export the model with `edgegan export` and rebuild the site with `edgegan web`.");
    }
    info = parseModelInfo(json, name);
  } catch (err) {
    return fail(`${name} is not a readable ONNX model file (${firstLine(err)}).`);
  }
  let session;
  let label;
  try {
    [session, label] = await createSession(bytes, preference);
  } catch (err) {
    return fail(`This browser cannot run ${name}: ${firstLine(err)}`);
  }
  if (!session.inputNames.includes(info.input_name) || !session.outputNames.includes(info.output_name)) {
    return fail(`${name}: its metadata names input '${info.input_name}' / output '${info.output_name}' but the ` +
      `model has inputs [${session.inputNames}] and outputs [${session.outputNames}].`);
  }
  const meta = (session.inputMetadata || []).find?.((m) => m.name === info.input_name);
  state.inputType = meta && meta.type === "float16" ? "float16" : "float32";
  if (state.inputType === "float16" && typeof Float16Array === "undefined") {
    return fail(`${name} takes float16 input, which this browser cannot create (no Float16Array).`);
  }
  if (state.session) await state.session.release?.();
  Object.assign(state, { session, info, backend: label });
  try {
    const [h, w] = inputHW(info.input_size, info.input_size);
    await infer(new Uint8ClampedArray(w * h * 4), w, h); // the first run compiles kernels: keep it off the FPS
  } catch (err) {
    return fail(`This browser cannot run ${name} on ${label.split(",")[0]}: ${firstLine(err)}`);
  }
  state.stats.backend = label;
  state.stats.threads = label.startsWith("WASM") ? ort.env.wasm.numThreads : 0;
  $("stat-backend").textContent = label;
  $("stat-model").textContent = `${info.model} ${info.input_size}px ${info.precision}`;
  state.ready = true;
  $("snapshot").disabled = false;
}

// One session.run at a time: the camera loop and the test hooks share the session.
function exclusive(fn) {
  const run = state.queue.then(fn, fn);
  state.queue = run.catch(() => {});
  return run;
}

// The (height, width) the model takes for a requested size: its fixed side unless it accepts others
// (edgegan.runtime Backend.input_hw).
function inputHW(h, w) {
  const info = state.info;
  if (!info.dynamic_size) return [info.input_size, info.input_size];
  const s = Math.max(1, info.stride);
  return [Math.max(s, Math.round(h / s) * s), Math.max(s, Math.round(w / s) * s)];
}

async function infer(rgba, width, height) {
  const info = state.info;
  const data = preprocess(info, rgba, width, height, new Float32Array(3 * width * height));
  const dims = info.layout === "NCHW" ? [1, 3, height, width] : [1, height, width, 3];
  const tensor = state.inputType === "float16"
    ? new ort.Tensor("float16", Float16Array.from(data), dims)
    : new ort.Tensor("float32", data, dims);
  const t0 = performance.now();
  const results = await state.session.run({ [info.input_name]: tensor });
  const ms = performance.now() - t0;
  const y = results[info.output_name];
  const [oh, ow] = info.layout === "NCHW" ? [y.dims[2], y.dims[3]] : [y.dims[1], y.dims[2]];
  const values = y.data instanceof Float32Array ? y.data : Float32Array.from(y.data);
  const image = new ImageData(ow, oh);
  postprocess(info, values, ow, oh, image.data);
  for (const t of Object.values(results)) t.dispose?.();
  return { image, ms };
}

// ------------------------------------------------------------------------------------------- face region
let faceapi = null;
const detector = { status: "off", options: null, busy: false, box: null, misses: 0, lastFrame: -1e9, ms: 0, nextAt: 0 };

async function loadDetector() {
  if (detector.status !== "off") return;
  detector.status = "loading";
  try {
    faceapi = await import("./face/face-api.esm.js");
    // WebGL where the browser gives TensorFlow.js a GPU context, else its CPU kernels (headless, some VMs).
    let ok = false;
    try {
      ok = params.get("detector") !== "cpu" && (await faceapi.tf.setBackend("webgl"));
    } catch {
      ok = false;
    }
    if (!ok) await faceapi.tf.setBackend("cpu");
    await faceapi.tf.ready();
    await faceapi.nets.tinyFaceDetector.loadFromUri("face/");
    detector.options = new faceapi.TinyFaceDetectorOptions({ inputSize: 224, scoreThreshold: 0.4 });
    // The first detection compiles TensorFlow.js kernels (seconds on a software GPU): do it before the
    // camera needs it, so the timing shown is a real per-frame cost.
    const blank = document.createElement("canvas");
    blank.width = blank.height = 224;
    await faceapi.detectSingleFace(blank, detector.options);
    detector.status = "ready";
    detector.backend = faceapi.tf.getBackend();
  } catch (err) {
    detector.status = "failed";
    detector.error = firstLine(err);
    if (state.region === "face") setRegion("box");
    showMessage(`The face detector could not start (${detector.error}): drag the face box onto your face instead.`, "info");
  }
  updateRegionNote();
}

// crop_square of edgegan.runtime.faces: the detection's centre, scaled side, raised by CROP_LIFT.
function cropFromDetection(box) {
  const side = Math.max(2, Math.max(box.width, box.height) * CROP_SCALE);
  return { cx: box.x + box.width / 2, cy: box.y + box.height / 2 - CROP_LIFT * side, side };
}

async function detect(frameNo, still) {
  const t0 = performance.now();
  const found = await faceapi.detectSingleFace(frameCanvas, detector.options);
  detector.ms = performance.now() - t0;
  detector.lastFrame = frameNo;
  detector.nextAt = performance.now() + detector.ms * (1 / DETECT_DUTY - 1);
  if (found) {
    const target = cropFromDetection(found.box);
    const prev = detector.box;
    // Light smoothing: detections jitter by a few pixels from frame to frame.
    detector.box = prev && !still
      ? { cx: (prev.cx + target.cx) / 2, cy: (prev.cy + target.cy) / 2, side: (prev.side + target.side) / 2 }
      : target;
    detector.misses = 0;
  } else if (++detector.misses > MAX_MISSES || still) {
    detector.box = null;
  }
}

function manualBox(w, h) {
  const m = state.manual;
  return { cx: m.cx * w, cy: m.cy * h, side: m.side * Math.min(w, h) };
}

// The square crop in frame pixels, kept inside the frame (the Python runtime pads with edge pixels instead;
// inside the frame both see the same pixels).
function cropRect(box, w, h) {
  const side = Math.max(2, Math.min(Math.round(box.side), w, h));
  const x0 = Math.min(Math.max(Math.round(box.cx - side / 2), 0), w - side);
  const y0 = Math.min(Math.max(Math.round(box.cy - side / 2), 0), h - side);
  return { x0, y0, side };
}

function currentBox(w, h) {
  if (state.region === "full") return null;
  if (state.region === "face" && detector.box) return detector.box;
  return manualBox(w, h);
}

// -------------------------------------------------------------------------------------------- a frame
function setSize(canvas, w, h) {
  // Assigning width/height clears and reallocates a canvas even when unchanged: only do it on a change.
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
}

// An ellipse with soft edges, as feather_mask in the Python runtime (the crop's corners keep the frame),
// drawn once per model output size and applied at that size, before scaling up.
function featherMask(w, h) {
  if (maskCanvas.width !== w || maskCanvas.height !== h) {
    setSize(maskCanvas, w, h);
    const r = Math.min(w, h);
    const gradient = maskCtx.createRadialGradient(w / 2, h / 2, r * 0.32, w / 2, h / 2, r * 0.46);
    gradient.addColorStop(0, "rgba(0,0,0,1)");
    gradient.addColorStop(1, "rgba(0,0,0,0)");
    maskCtx.fillStyle = gradient;
    maskCtx.fillRect(0, 0, w, h);
  }
  return maskCanvas;
}

function drawOutput(image, rect, ctx, w, h) {
  setSize(outSmall, image.width, image.height);
  outSmallCtx.putImageData(image, 0, 0);
  ctx.imageSmoothingQuality = "high";
  if (!rect) {
    ctx.drawImage(outSmall, 0, 0, w, h);
    return;
  }
  outSmallCtx.globalCompositeOperation = "destination-in";
  outSmallCtx.drawImage(featherMask(image.width, image.height), 0, 0);
  outSmallCtx.globalCompositeOperation = "source-over";
  ctx.drawImage(frameCanvas, 0, 0);
  ctx.drawImage(outSmall, rect.x0, rect.y0, rect.side, rect.side);
}

async function processFrame(source, w, h, { still = false } = {}) {
  const t0 = performance.now();
  setSize(frameCanvas, w, h);
  frameCtx.drawImage(source, 0, 0, w, h);
  const frameNo = state.stats.frames;
  if (state.region === "face" && detector.status === "ready") {
    if (still) await detect(frameNo, true);
    else if (!detector.busy && frameNo - detector.lastFrame >= DETECT_EVERY && performance.now() >= detector.nextAt) {
      detector.busy = true;
      detect(frameNo, false).catch(() => {}).finally(() => { detector.busy = false; });
    }
  }
  const box = currentBox(w, h);
  const rect = box ? cropRect(box, w, h) : null;
  // A face crop goes in at the model's own size (as edgegan.runtime.faces.extract does), a whole frame with
  // its shorter side at that size when the model accepts other shapes.
  const size = state.info.input_size;
  const [ih, iw] = rect ? [size, size] : inputHW(...shortSide(h, w, size));
  setSize(inCanvas, iw, ih);
  inCtx.imageSmoothingQuality = "high";
  if (rect) inCtx.drawImage(frameCanvas, rect.x0, rect.y0, rect.side, rect.side, 0, 0, iw, ih);
  else inCtx.drawImage(frameCanvas, 0, 0, w, h, 0, 0, iw, ih);
  const pixels = inCtx.getImageData(0, 0, iw, ih).data;
  const { image, ms } = await exclusive(() => infer(pixels, iw, ih));

  setSize(inputView, w, h);
  setSize(outputView, w, h);
  drawOutput(image, rect, outputView.getContext("2d"), w, h);
  const input = inputView.getContext("2d");
  input.drawImage(frameCanvas, 0, 0);
  if (rect) {
    input.lineWidth = Math.max(2, w / 200);
    input.strokeStyle = state.region === "face" && detector.box ? "#2ecc71" : "#e0592a";
    input.setLineDash(state.region === "box" || !detector.box ? [8, 6] : []);
    input.strokeRect(rect.x0, rect.y0, rect.side, rect.side);
  }
  record(ms, performance.now() - t0);
}

function shortSide(h, w, side) {
  const s = side / Math.min(h, w);
  return [Math.max(1, Math.round(h * s)), Math.max(1, Math.round(w * s))];
}

function median(values) {
  if (!values.length) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function record(inferMs, frameMs) {
  const { recent, stats } = state;
  const now = performance.now();
  recent.infer.push(inferMs);
  recent.frame.push(frameMs);
  recent.stamps.push(now);
  for (const list of [recent.infer, recent.frame]) if (list.length > 60) list.shift();
  while (recent.stamps.length > 1 && now - recent.stamps[0] > 2000) recent.stamps.shift();
  stats.frames += 1;
  stats.inferMs = median(recent.infer);
  stats.frameMs = median(recent.frame);
  const span = (now - recent.stamps[0]) / 1000;
  stats.fps = span > 0 ? (recent.stamps.length - 1) / span : 0;
  stats.detectMs = detector.ms;
  stats.faces = state.region === "face" && detector.box ? 1 : 0;
  $("stat-fps").textContent = state.source === "camera" ? stats.fps.toFixed(1) : "–";
  $("stat-infer").textContent = stats.inferMs.toFixed(1);
  $("stat-frame").textContent = stats.frameMs.toFixed(1);
  updateFaceStat();
}

function updateFaceStat() {
  let text;
  if (state.region === "full") text = "off (whole frame)";
  else if (state.region === "box") text = "manual box";
  else if (detector.status === "ready") text = detector.box ? `detected (${detector.ms.toFixed(0)} ms)` : "none found: centre box";
  else text = detector.status;
  $("stat-face").textContent = text;
}

// ---------------------------------------------------------------------------------------------- sources
async function startCamera() {
  if (!window.isSecureContext) {
    showMessage("The camera needs a secure page: open it as http://localhost (edgegan web --serve) or over https. " +
      "You can still open a photo.", "error");
    return false;
  }
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    showMessage("This browser has no camera API (getUserMedia). You can still open a photo.", "error");
    return false;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: "user" }, audio: false });
  } catch (err) {
    const name = err && err.name;
    if (name === "NotAllowedError" || name === "SecurityError" || name === "PermissionDeniedError") {
      showMessage("Camera permission was denied. Allow the camera for this page in the browser's site settings " +
        "and reload, or open a photo instead.", "error");
    } else if (name === "NotFoundError" || name === "OverconstrainedError" || name === "DevicesNotFoundError") {
      showMessage("No camera found. Connect one and reload, or open a photo instead.", "error");
    } else if (name === "NotReadableError" || name === "TrackStartError") {
      showMessage("The camera is in use by another application (or blocked by the system). Close it and reload, " +
        "or open a photo instead.", "error");
    } else {
      showMessage(`The camera could not start (${name || "error"}: ${firstLine(err)}). You can still open a photo.`, "error");
    }
    state.cameraError = name || "error";
    return false;
  }
  state.stream = stream;
  video.srcObject = stream;
  await video.play();
  state.source = "camera";
  $("camera-btn").classList.add("active");
  nextVideoFrame(cameraLoop);
  return true;
}

// One cartoon per new camera frame (requestVideoFrameCallback), so FPS counts real frames, not repaints.
function nextVideoFrame(fn) {
  if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(() => fn());
  else requestAnimationFrame(fn);
}

async function cameraLoop() {
  if (state.source !== "camera") return;
  try {
    if (state.ready && !state.paused && video.readyState >= 2 && video.videoWidth > 0) {
      await processFrame(video, video.videoWidth, video.videoHeight);
    }
  } catch (err) {
    showMessage(`Inference failed: ${firstLine(err)}`, "error");
    state.source = "none";
    return;
  }
  nextVideoFrame(cameraLoop);
}

function stopCamera() {
  if (state.stream) for (const track of state.stream.getTracks()) track.stop();
  state.stream = null;
  if (state.source === "camera") state.source = "none";
  $("camera-btn").classList.remove("active");
}

async function openPhoto(file) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch (err) {
    showMessage(`${file.name}: not an image this browser can decode.`, "error");
    return;
  }
  stopCamera();
  state.source = "photo";
  // Large photos are scaled down first: a face crop at the model's size needs no 12-megapixel frame.
  const scale = Math.min(1, 1280 / Math.max(bitmap.width, bitmap.height));
  state.photo = { bitmap, w: Math.round(bitmap.width * scale), h: Math.round(bitmap.height * scale) };
  clearMessage();
  await renderPhoto();
}

async function renderPhoto() {
  if (state.source !== "photo" || !state.photo || !state.ready) return;
  const { bitmap, w, h } = state.photo;
  await processFrame(bitmap, w, h, { still: true });
}

function snapshot() {
  outputView.toBlob((blob) => {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `edgegan-cartoon-${new Date().toISOString().replace(/[:.]/g, "-")}.png`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }, "image/png");
}

// ------------------------------------------------------------------------------------------------ UI
function setRegion(region) {
  state.region = region;
  $("region").value = region;
  $("box-size-label").hidden = region !== "box";
  $("stage").classList.toggle("box", region === "box");
  if (region === "face") loadDetector();
  updateRegionNote();
  renderPhoto();
}

function updateRegionNote() {
  const note = $("region-note");
  if (state.region === "box") {
    note.textContent = "Manual face box: drag it over your face (the slider sets its size). Only the box is cartoonized.";
  } else if (state.region === "face") {
    note.textContent = detector.status === "failed"
      ? `Face detector unavailable (${detector.error}).`
      : "Faces found by face-api's tiny face detector (runs in this browser); without a face the centre box is used.";
  } else {
    note.textContent = "The whole frame is cartoonized" +
      (state.info && !state.info.dynamic_size ? `, squeezed to ${state.info.input_size}×${state.info.input_size}.` : ".");
  }
}

function setView(view) {
  state.view = view;
  $("view").value = view;
  $("stage").classList.toggle("cartoon", view === "cartoon");
  $("stage").classList.toggle("side", view !== "cartoon");
}

function canvasPoint(event) {
  const canvas = event.currentTarget;
  const r = canvas.getBoundingClientRect();
  return [(event.clientX - r.left) * (canvas.width / r.width), (event.clientY - r.top) * (canvas.height / r.height)];
}

function attachDrag(canvas) {
  let drag = null;
  canvas.addEventListener("pointerdown", (event) => {
    if (state.region !== "box") return;
    const [x, y] = canvasPoint(event);
    const { width: w, height: h } = canvas;
    const box = manualBox(w, h);
    const inside = Math.abs(x - box.cx) < box.side / 2 && Math.abs(y - box.cy) < box.side / 2;
    drag = inside ? { dx: box.cx - x, dy: box.cy - y } : { dx: 0, dy: 0 };
    canvas.setPointerCapture(event.pointerId);
    moveBox(x + drag.dx, y + drag.dy, w, h);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const [x, y] = canvasPoint(event);
    moveBox(x + drag.dx, y + drag.dy, canvas.width, canvas.height);
  });
  const end = () => { drag = null; };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
}

function moveBox(cx, cy, w, h) {
  state.manual.cx = Math.min(Math.max(cx / w, 0), 1);
  state.manual.cy = Math.min(Math.max(cy / h, 0), 1);
  renderPhoto();
}

// ------------------------------------------------------------------------------------ hooks for tests
function rgbaToBase64Rgb(rgba) {
  const rgb = new Uint8Array((rgba.length / 4) * 3);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
    rgb[j] = rgba[i];
    rgb[j + 1] = rgba[i + 1];
    rgb[j + 2] = rgba[i + 2];
  }
  let text = "";
  for (let i = 0; i < rgb.length; i += 0x8000) text += String.fromCharCode(...rgb.subarray(i, i + 0x8000));
  return btoa(text);
}

async function decode(url) {
  const blob = await (await fetch(url)).blob();
  // No colour management or premultiplication: the test compares exact pixel values with Python.
  return createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
}

// The model alone on one image (resized to the model's input when its size differs), as the Python
// runtime's Cartoonizer.translate: returns the postprocessed output as base64 RGB bytes.
async function runImage(url) {
  if (!state.ready) throw new Error(state.error || "model not loaded");
  const bitmap = await decode(url);
  const [ih, iw] = inputHW(...shortSide(bitmap.height, bitmap.width, state.info.input_size));
  const canvas = document.createElement("canvas");
  canvas.width = iw;
  canvas.height = ih;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(bitmap, 0, 0, iw, ih);
  const pixels = ctx.getImageData(0, 0, iw, ih, { colorSpace: "srgb" }).data;
  const { image, ms } = await exclusive(() => infer(pixels, iw, ih));
  return { width: image.width, height: image.height, rgb: rgbaToBase64Rgb(image.data), inferMs: ms,
    inputRgb: rgbaToBase64Rgb(pixels) };
}

// Latency of the model on this page's backend: `runs` calls on one input, after `warmup` calls, `gapMs` apart
// (a camera's pace: back-to-back calls on a busy machine measure the scheduler more than the model).
async function benchmark(runs = 30, warmup = 3, gapMs = 0) {
  if (!state.ready) throw new Error(state.error || "model not loaded");
  const [h, w] = inputHW(state.info.input_size, state.info.input_size);
  const pixels = new Uint8ClampedArray(w * h * 4).map((_, i) => (i * 37) % 256);
  const infer_ = [];
  const total = [];
  state.paused = true; // the camera loop and the face detector would share the CPU with the timed calls
  try {
    await state.queue;
    while (detector.busy) await new Promise((resolve) => setTimeout(resolve, 10));
    for (let i = 0; i < warmup + runs; i++) {
      const t0 = performance.now();
      const { ms } = await exclusive(() => infer(pixels, w, h));
      if (i >= warmup) {
        infer_.push(ms);
        total.push(performance.now() - t0);
      }
      if (gapMs > 0) await new Promise((resolve) => setTimeout(resolve, gapMs));
    }
  } finally {
    state.paused = false;
  }
  return { runs, inferMs: median(infer_), prePostInferMs: median(total), minInferMs: Math.min(...infer_),
    backend: state.backend, size: [h, w], gapMs };
}

window.edgegan = {
  get ready() { return state.ready; },
  get error() { return state.error; },
  get info() { return state.info; },
  get backend() { return state.backend; },
  get webgpuAvailable() { return state.webgpuAvailable; },
  get source() { return state.source; },
  get cameraError() { return state.cameraError || null; },
  get message() { return $("message").hidden ? null : { kind: $("message").dataset.kind, text: $("message").textContent }; },
  get detector() { return { status: detector.status, backend: detector.backend || null, error: detector.error || null }; },
  get stats() { return { ...state.stats }; },
  runImage,
  benchmark,
  preprocess,
  postprocess,
};

// ----------------------------------------------------------------------------------------------- start
async function main() {
  $("view").addEventListener("change", (e) => setView(e.target.value));
  $("region").addEventListener("change", (e) => setRegion(e.target.value));
  $("box-size").addEventListener("input", (e) => { state.manual.side = Number(e.target.value); renderPhoto(); });
  $("backend").addEventListener("change", async (e) => {
    state.ready = false;
    await loadModel(modelUrl, e.target.value);
    await renderPhoto();
  });
  $("camera-btn").addEventListener("click", () => { if (state.source !== "camera") startCamera(); });
  $("photo").addEventListener("change", (e) => { if (e.target.files[0]) openPhoto(e.target.files[0]); });
  $("snapshot").addEventListener("click", snapshot);
  attachDrag(inputView);
  attachDrag(outputView);
  if (params.get("backend")) $("backend").value = params.get("backend");
  setView(state.view);
  setRegion(["face", "box", "full"].includes(state.region) ? state.region : "face");

  // Threads need SharedArrayBuffer, which browsers give only to cross-origin isolated pages.
  const threads = Number(params.get("threads")) ||
    (self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1);
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.wasmPaths = new URL("ort/", location.href).href;
  state.webgpuAvailable = await webgpuAdapter();

  await loadModel();
  if (state.error) return;
  if (params.get("camera") !== "off") await startCamera();
}

main().catch((err) => fail(`The page failed to start: ${firstLine(err)}`));
