// What "the page plays live" means, measured the same way in every engine
// (and by the benchmark): the page's own figures read through evaluate(),
// frames counted with requestVideoFrameCallback, pixels read from a canvas
// and from a screenshot, and "behind live" = the newest buffered frame minus
// the playback position, sampled every 250 ms.

import fs from 'node:fs';
import path from 'node:path';
import { ARTIFACTS, sleep } from './daemon.mjs';

export const MAX_BEHIND_S = 1.5;
const H264 = 'video/mp4; codecs="avc1.42E01E,mp4a.40.2"'; // what mpegts.js asks for

// ---- functions that run in the page (serialised: no closures) -------------

function pageProbe(type) {
  const can = (ms) => typeof ms === 'function' && ms.isTypeSupported(type);
  return {
    userAgent: navigator.userAgent,
    mediaSource: typeof window.MediaSource === 'function',
    managedMediaSource: typeof window.ManagedMediaSource === 'function',
    h264: can(window.MediaSource),
    h264Managed: can(window.ManagedMediaSource),
    player: !!(window.mpegts && mpegts.getFeatureList().mseLivePlayback),
    frameCallback: 'requestVideoFrameCallback' in HTMLVideoElement.prototype,
  };
}

// Counts painted frames (requestVideoFrameCallback) and stalls ('waiting')
// on the page's video element from now on; idempotent.
function pageInstrument() {
  if (window.__lsdTest) return true;
  const v = document.getElementById('video');
  const c = (window.__lsdTest = { frames: 0, waiting: 0 });
  v.addEventListener('waiting', () => { c.waiting++; });
  if (v.requestVideoFrameCallback) {
    const tick = () => { c.frames++; v.requestVideoFrameCallback(tick); };
    v.requestVideoFrameCallback(tick);
  }
  return true;
}

function pageVideoState() {
  const v = document.getElementById('video');
  const b = v.buffered;
  const end = b.length ? b.end(b.length - 1) : null;
  const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : {};
  const c = window.__lsdTest || {};
  const so = v.srcObject;
  return {
    t: performance.now(),
    currentTime: v.currentTime,
    bufferedEnd: end,
    behind: end === null ? null : end - v.currentTime,
    width: v.videoWidth,
    height: v.videoHeight,
    paused: v.paused,
    readyState: v.readyState,
    // ManagedMediaSource is attached as srcObject, MediaSource through a blob: URL.
    source: so ? so.constructor.name : v.src.startsWith('blob:') ? 'MediaSource (blob: URL)' : v.src || null,
    qualityFrames: q.totalVideoFrames,
    droppedFrames: q.droppedVideoFrames,
    painted: c.frames,
    waiting: c.waiting,
    badge: document.getElementById('badge').textContent,
    stats: Object.assign({}, window.livestreamd.stats),
  };
}

// Luminance mean/variance and a hash of the video element's current frame.
function pageFrameStats() {
  const v = document.getElementById('video');
  const c = document.createElement('canvas');
  c.width = 160; c.height = 90;
  const g = c.getContext('2d');
  g.drawImage(v, 0, 0, c.width, c.height);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  let n = 0, sum = 0, sq = 0, hash = 0;
  for (let i = 0; i < d.length; i += 4) {
    const y = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
    n++; sum += y; sq += y * y;
    hash = (hash * 31 + d[i] + 7 * d[i + 1] + 13 * d[i + 2]) >>> 0;
  }
  const mean = sum / n;
  return { mean, variance: sq / n - mean * mean, hash };
}

function pageVideoRect() {
  const r = document.getElementById('video').getBoundingClientRect();
  return { x: r.x, y: r.y, width: r.width, height: r.height, dpr: window.devicePixelRatio || 1 };
}

// Luminance variance of a PNG (data URL) inside rect (CSS pixels).
async function pagePngStats({ src, rect }) {
  const img = new Image();
  img.src = src;
  await img.decode();
  const scale = img.naturalWidth / window.innerWidth;
  const sx = Math.round(rect.x * scale), sy = Math.round(rect.y * scale);
  const sw = Math.max(1, Math.round(rect.width * scale)), sh = Math.max(1, Math.round(rect.height * scale));
  const c = document.createElement('canvas');
  c.width = sw; c.height = sh;
  const g = c.getContext('2d');
  g.drawImage(img, sx, sy, sw, sh, 0, 0, sw, sh);
  const d = g.getImageData(0, 0, sw, sh).data;
  let n = 0, sum = 0, sq = 0;
  for (let i = 0; i < d.length; i += 16) {
    const y = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
    n++; sum += y; sq += y * y;
  }
  const mean = sum / n;
  return { mean, variance: sq / n - mean * mean, width: sw, height: sh };
}

function pageFigures() {
  const text = (id) => document.getElementById(id).textContent;
  return {
    res: text('f-res'), bitrate: text('f-bitrate'), rung: text('f-rung'), camera: text('f-camera'),
    rx: text('f-rx'), rtt: text('f-rtt'), loss: text('f-loss'), acked: text('f-rate'), viewers: text('f-viewers'),
  };
}

function pageNoPlayer() {
  const box = document.getElementById('nomse');
  const link = box.querySelector('a');
  return {
    shown: !box.hidden && box.getBoundingClientRect().height > 0,
    text: box.textContent.replace(/\s+/g, ' ').trim(),
    link: link ? link.getAttribute('href') : null,
    badge: document.getElementById('badge').textContent,
  };
}

// ---- measurements ---------------------------------------------------------

export const videoState = (page) => page.evaluate(pageVideoState);
export const probe = (page) => page.evaluate(pageProbe, H264);
export const figures = (page) => page.evaluate(pageFigures);
export const noPlayer = (page) => page.evaluate(pageNoPlayer);

export async function waitFor(what, fn, ms) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    last = await fn();
    if (last.ok) return last;
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${what}: ${JSON.stringify(last)}`);
}

// Waits until the opened page's clock runs; returns the first state.
export async function started(page, ms = 30000) {
  await page.evaluate(pageInstrument);
  return waitFor('playback to start', async () => {
    const s = await videoState(page);
    return { ...s, ok: s.currentTime > 0.5 && s.width > 0 };
  }, ms);
}

// Waits until the clock advanced by a second and the badge says LIVE.
export async function playing(page, what, ms) {
  const a = await videoState(page);
  return waitFor(what, async () => {
    const s = await videoState(page);
    return { ...s, ok: s.currentTime > a.currentTime + 1 && s.badge === 'LIVE' };
  }, ms);
}

// The clock advances and real, changing frames are painted.
export async function paints(page, shotName) {
  const a = await videoState(page);
  const f1 = await page.evaluate(pageFrameStats);
  await sleep(3000);
  const b = await videoState(page);
  const f2 = await page.evaluate(pageFrameStats);
  const seconds = (b.t - a.t) / 1000;
  const shot = await page.screenshot();
  fs.writeFileSync(path.join(ARTIFACTS, shotName), shot);
  const rect = await page.evaluate(pageVideoRect);
  const screen = await page.evaluate(pagePngStats, { src: 'data:image/png;base64,' + shot.toString('base64'), rect });
  return {
    advanced: b.currentTime - a.currentTime,
    seconds,
    paintedPerSecond: a.painted === undefined || b.painted === undefined ? null : (b.painted - a.painted) / seconds,
    qualityFramesPerSecond: (b.qualityFrames - a.qualityFrames) / seconds,
    frame: f2,
    changed: f1.hash !== f2.hash,
    screen,
    state: b,
  };
}

export function summarize(values) {
  const s = [...values].sort((x, y) => x - y);
  const at = (q) => s[Math.min(s.length - 1, Math.floor(s.length * q))];
  return {
    n: s.length,
    mean: s.reduce((x, y) => x + y, 0) / s.length,
    median: at(0.5),
    p95: at(0.95),
    max: s[s.length - 1],
    min: s[0],
  };
}

// `seconds` at the live edge: behind live every 250 ms, and what played.
export async function behindLive(page, seconds) {
  const samples = [];
  const a = await videoState(page);
  const t0 = Date.now();
  while (Date.now() - t0 < seconds * 1000) {
    const s = await videoState(page);
    if (s.behind !== null) samples.push(s.behind);
    await sleep(250);
  }
  const b = await videoState(page);
  const wall = (b.t - a.t) / 1000;
  return {
    ...summarize(samples),
    seconds: wall,
    played: b.currentTime - a.currentTime,
    paintedPerSecond: b.painted === undefined ? null : (b.painted - a.painted) / wall,
    waiting: b.waiting - a.waiting,
    jumps: b.stats.jumps - a.stats.jumps,
    restarts: b.stats.restarts - a.stats.restarts,
    state: b,
  };
}

export const fmt = (x, d = 3) => (x === null || x === undefined || Number.isNaN(x) ? '–' : x.toFixed(d));

export function describeLag(l) {
  return `behind live over ${fmt(l.seconds, 1)} s (${l.n} samples): median ${fmt(l.median)} s, p95 ${fmt(l.p95)} s, ` +
    `max ${fmt(l.max)} s, mean ${fmt(l.mean)} s; played ${fmt(l.played, 2)} s; painted ${fmt(l.paintedPerSecond, 1)} frames/s; ` +
    `stalls ${l.waiting}, jumps to live ${l.jumps}, player restarts ${l.restarts}`;
}

// ---- what each engine verified, for run.sh's summary ----------------------

export class Report {
  constructor(engine, page) {
    this.file = path.join(ARTIFACTS, `web-${engine}.json`);
    this.data = { engine, label: page?.label, version: page?.version, verified: [], failed: [], cannot: [...(page?.notes || [])], notes: [...(page?.remarks || [])] };
    fs.rmSync(this.file, { force: true });
  }

  pass(check, detail) {
    this.data.verified.push({ check, detail });
    console.log(`${this.data.engine}: verified: ${check}${detail ? ' — ' + detail : ''}`);
  }

  cannot(what) {
    this.data.cannot.push(what);
    console.log(`${this.data.engine}: NOT VERIFIED HERE: ${what}`);
  }

  failed(test, error) {
    this.data.failed.push({ test, error: String(error?.message || error).split('\n')[0] });
  }

  // An observation that is neither a check nor a limit.
  note(what) {
    if (!this.data.notes.includes(what)) this.data.notes.push(what);
    console.log(`${this.data.engine}: note: ${what}`);
  }

  write() {
    fs.writeFileSync(this.file, JSON.stringify(this.data, null, 2) + '\n');
  }
}
