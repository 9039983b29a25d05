// Drives the web demo in real headless Chromium (playwright-core, the system's /usr/bin/chromium) for the
// end-to-end test and the benchmark. Not part of the site.
//
//   node driver.mjs CONFIG.json   ->   one JSON line on stdout
//
// CONFIG: { chromium, fakeVideo, noSandbox, timeoutMs, extraArgs, pages: [{ name, url, camera: "fake" | "deny" |
//           "none", args, waitFrames, waitFace, screenshot, images: {name: dataURL}, photo, photoScreenshot,
//           snapshot, benchmark: {runs, warmup, gapMs}, expectError }] }
import { readFileSync } from "node:fs";
import { chromium } from "playwright-core";

const config = JSON.parse(readFileSync(process.argv[2], "utf-8"));
const timeout = config.timeoutMs ?? 120000;

// Flags that keep Chromium off the network (closed here anyway) and quiet; the fake camera plays a file.
const base = ["--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--disable-quic", "--disable-default-apps", "--mute-audio"];
if (config.noSandbox) base.push("--no-sandbox");
if (config.extraArgs) base.push(...config.extraArgs);

function cameraArgs(camera) {
  if (camera === "fake") {
    const args = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"];
    if (config.fakeVideo) args.push(`--use-file-for-fake-video-capture=${config.fakeVideo}`);
    return args;
  }
  if (camera === "deny") return ["--use-fake-device-for-media-stream", "--deny-permission-prompts"];
  return ["--use-fake-ui-for-media-stream"]; // "none": permission granted, but no capture device exists
}

async function waitFor(page, predicate, arg, what) {
  try {
    await page.waitForFunction(predicate, arg, { timeout, polling: 100 });
  } catch (err) {
    const state = await page.evaluate(() => ({ error: window.edgegan?.error ?? null, message: window.edgegan?.message ?? null,
      stats: window.edgegan?.stats ?? null })).catch(() => null);
    throw new Error(`timed out waiting for ${what}: ${JSON.stringify(state)}`);
  }
}

// Camera flags are browser-wide: one browser per (camera, extra flags), shared by the pages that agree.
const browsers = new Map();
async function browserFor(spec) {
  const args = [...base, ...cameraArgs(spec.camera ?? "fake"), ...(spec.args ?? [])];
  const key = args.join(" ");
  if (!browsers.has(key)) browsers.set(key, await chromium.launch({ executablePath: config.chromium, headless: true, args }));
  return browsers.get(key);
}

async function runPage(spec) {
  const browser = await browserFor(spec);
  const logs = [];
  const context = await browser.newContext({ viewport: spec.viewport ?? { width: 1280, height: 800 }, acceptDownloads: true });
  try {
    const page = await context.newPage();
    page.on("console", (m) => logs.push(`${m.type()}: ${m.text()}`.slice(0, 500)));
    page.on("pageerror", (e) => logs.push(`pageerror: ${e.message}`.slice(0, 500)));
    page.on("response", (r) => { if (r.status() >= 400) logs.push(`http ${r.status()}: ${r.url()}`.slice(0, 500)); });
    const t0 = Date.now();
    await page.goto(spec.url, { waitUntil: "load", timeout });
    const result = { name: spec.name, logs };
    if (spec.expectError) {
      await waitFor(page, () => window.edgegan && (window.edgegan.error || window.edgegan.cameraError), null, "an error message");
      // A moment for the message box to be filled after the state flips.
      await page.waitForTimeout(200);
      result.error = await page.evaluate(() => window.edgegan.error);
      result.cameraError = await page.evaluate(() => window.edgegan.cameraError);
      result.message = await page.evaluate(() => window.edgegan.message);
      result.ready = await page.evaluate(() => window.edgegan.ready);
      if (spec.screenshot) await page.screenshot({ path: spec.screenshot });
      return result;
    }
    await waitFor(page, () => window.edgegan && (window.edgegan.ready || window.edgegan.error), null, "the model");
    result.loadMs = Date.now() - t0;
    result.error = await page.evaluate(() => window.edgegan.error);
    if (result.error) return result;
    result.backend = await page.evaluate(() => window.edgegan.backend);
    result.webgpuAvailable = await page.evaluate(() => window.edgegan.webgpuAvailable);
    result.crossOriginIsolated = await page.evaluate(() => self.crossOriginIsolated);
    if (spec.waitFrames) {
      await waitFor(page, (n) => window.edgegan.stats.frames >= n, spec.waitFrames, `${spec.waitFrames} camera frames`);
      if (spec.waitFace) {
        await waitFor(page, () => window.edgegan.stats.faces > 0 || window.edgegan.detector.status === "failed",
          null, "a face detection");
      }
      result.stats = await page.evaluate(() => window.edgegan.stats);
      result.detector = await page.evaluate(() => window.edgegan.detector);
      result.source = await page.evaluate(() => window.edgegan.source);
      result.message = await page.evaluate(() => window.edgegan.message);
    }
    if (spec.screenshot) await page.screenshot({ path: spec.screenshot });
    result.images = {};
    for (const [name, url] of Object.entries(spec.images ?? {})) {
      result.images[name] = await page.evaluate((u) => window.edgegan.runImage(u), url);
    }
    if (spec.photo) {
      // The file picker, as a user would use it: the page switches from the camera to the photo.
      const before = await page.evaluate(() => window.edgegan.stats.frames);
      await page.setInputFiles("#photo", spec.photo);
      await waitFor(page, (n) => window.edgegan.source === "photo" && window.edgegan.stats.frames > n, before, "the photo");
      result.photoStats = await page.evaluate(() => window.edgegan.stats);
      if (spec.photoScreenshot) await page.screenshot({ path: spec.photoScreenshot });
    }
    if (spec.snapshot) {
      const [download] = await Promise.all([page.waitForEvent("download", { timeout }), page.click("#snapshot")]);
      await download.saveAs(spec.snapshot);
      result.snapshotName = download.suggestedFilename();
    }
    if (spec.benchmark) {
      result.benchmark = await page.evaluate(({ runs, warmup, gapMs }) => window.edgegan.benchmark(runs, warmup, gapMs),
        { runs: spec.benchmark.runs ?? 30, warmup: spec.benchmark.warmup ?? 3, gapMs: spec.benchmark.gapMs ?? 0 });
    }
    return result;
  } finally {
    await context.close();
  }
}

const out = { pages: {} };
try {
  for (const spec of config.pages) out.pages[spec.name] = await runPage(spec);
} catch (err) {
  out.failure = String(err && err.stack ? err.stack : err).slice(0, 4000);
} finally {
  for (const browser of browsers.values()) await browser.close();
}
process.stdout.write(JSON.stringify(out) + "\n");
