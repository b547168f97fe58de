// HLS in the browser tests: the page's own fallback to the browser's native
// HLS player when there is no Media Source (as on iPhones before iOS 17.1),
// and hls.js — installed for the tests only, never served by the daemon — in
// Chromium as a stand-in for Safari's player, on a harness page of its own.
// "Behind live" for HLS is measured by date where a player gives one (the
// playlist's #EXT-X-PROGRAM-DATE-TIME is when a segment's first frame reached
// the daemon's hub): now minus the date of the frame on screen. That includes
// what the Media Source rows' buffer figure leaves out (the segment must be
// complete before it is listed; the player starts a few segments back), so
// the limit here is generous: HLS is seconds behind by design.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { here, sleep } from './daemon.mjs';
import { fmt, noPlayer, paints, probe, started, summarize, waitFor } from './checks.mjs';
import { HIDE, withoutApis } from './shim-proxy.mjs';
import { assertPaints } from './suite.mjs';

export const HLS_TYPE = 'application/vnd.apple.mpegurl';
export const HLS_MAX_BEHIND_S = 15;

// ---- the page on its HLS path (runs in the page) ----------------------------

function pageHlsState() {
  const v = document.getElementById('video');
  const s = window.livestreamd.stats;
  const c = window.__lsdTest || {};
  const text = (id) => document.getElementById(id).textContent;
  const r = v.seekable.length ? v.seekable : v.buffered;
  return {
    path: s.path,
    latency: s.latency,
    latencyHow: s.latencyHow,
    edgeAge: s.edgeAge,
    canPlayHls: v.canPlayType('application/vnd.apple.mpegurl'),
    src: v.currentSrc,
    currentTime: v.currentTime,
    width: v.videoWidth,
    height: v.videoHeight,
    readyState: v.readyState,
    networkState: v.networkState,
    error: v.error ? { code: v.error.code, message: v.error.message } : null,
    end: r.length ? r.end(r.length - 1) : null,
    painted: c.frames,
    restarts: s.restarts,
    errors: s.errors,
    lastError: s.lastError,
    badge: text('badge'),
    figures: { path: text('f-path'), latency: text('f-latency'), latencyKey: text('k-latency') },
  };
}

export const hlsState = (page) => page.evaluate(pageHlsState);

// Waits until the page has chosen its playback path; returns its state.
export function chosenPath(page) {
  return waitFor('the page to choose a playback path', async () => {
    const s = await hlsState(page);
    return { ...s, ok: s.path !== null && s.path !== undefined };
  }, 15000);
}

// The page's own latency figure (and what it is made of), sampled every
// 500 ms for `seconds`; with what played meanwhile.
export async function pageLag(page, seconds) {
  const a = await hlsState(page);
  const values = [];
  const hows = new Set();
  const t0 = Date.now();
  while (Date.now() - t0 < seconds * 1000) {
    const s = await hlsState(page);
    if (typeof s.latency === 'number') {
      values.push(s.latency);
      hows.add(s.latencyHow);
    }
    await sleep(500);
  }
  const b = await hlsState(page);
  const wall = (Date.now() - t0) / 1000;
  return {
    ...(values.length ? summarize(values) : { n: 0 }),
    how: [...hows].join(', '),
    seconds: wall,
    played: b.currentTime - a.currentTime,
    paintedPerSecond: a.painted === undefined || b.painted === undefined ? null : (b.painted - a.painted) / wall,
    restarts: b.restarts - a.restarts,
    state: b,
  };
}

export function describeHlsLag(l) {
  return `page's latency figure (${l.how || 'none'}) over ${fmt(l.seconds, 1)} s (${l.n} samples): median ${fmt(l.median, 2)} s, ` +
    `p95 ${fmt(l.p95, 2)} s, max ${fmt(l.max, 2)} s; played ${fmt(l.played, 2)} s; painted ${fmt(l.paintedPerSecond, 1)} frames/s; ` +
    `player restarts ${l.restarts}`;
}

// ---- the page without Media Source ---------------------------------------------

// Opens the page with no Media Source at all. It must choose the engine's
// native HLS player when the video element says it can play HLS, and say so;
// else show its no-player message. Where it chose HLS it must then play,
// paint frames and stay within HLS_MAX_BEHIND_S of live — or, with
// `mustPlay` false (an engine known to play HLS unreliably here), what fails
// of that is reported as not verified, with what was seen.
// Returns { chose, played, why }.
export async function nativeHlsFallback(ctx, seconds, { mustPlay = true } = {}) {
  const { page, report, engine } = ctx;
  return withoutApis(page, ctx.daemon.url, HIDE.allMediaSource, async () => {
    const caps = await probe(page);
    assert.equal(caps.mediaSource || caps.managedMediaSource, false, 'the shim removed both Media Source APIs');
    const s = await chosenPath(page);
    console.log(`${engine}: without Media Source: canPlayType('${HLS_TYPE}') = "${s.canPlayHls}"; ` +
      `the page chose "${s.path}", its Player figure says "${s.figures.path}"`);
    if (!s.canPlayHls) {
      assert.equal(s.path, 'none', 'no HLS either: no player');
      const msg = await waitFor('the no-player message', async () => {
        const m = await noPlayer(page);
        return { ...m, ok: m.shown };
      }, 10000);
      assert.equal(msg.badge, 'no player');
      assert.equal(msg.link, '/stream.ts');
      report.cannot(`native HLS: ${engine} says it cannot play ${HLS_TYPE} (canPlayType is empty)`);
      report.pass('no Media Source and no native HLS: the page says so and links /stream.ts', `badge "${msg.badge}"`);
      return { chose: 'none', played: false };
    }
    assert.equal(s.path, 'hls', 'the page chose native HLS');
    assert.equal(s.figures.path, 'HLS', 'and says so');
    report.pass('no Media Source: the page chooses native HLS (/live.m3u8) and says so', `canPlayType "${s.canPlayHls}", Player "${s.figures.path}"`);
    try {
      return await playsNatively(ctx, seconds);
    } catch (e) {
      if (mustPlay) throw e;
      const st = await hlsState(page);
      const why = `native HLS did not play reliably here: ${String(e.message || e).split('\n')[0]} ` +
        `(readyState ${st.readyState}, currentTime ${fmt(st.currentTime, 2)} s, page restarts ${st.restarts}, ` +
        `video error ${st.error ? st.error.code + ' ' + st.error.message : 'none'})`;
      console.log(`${engine}: ${why}`);
      report.cannot(why);
      return { chose: 'hls', played: false, why };
    }
  });
}

// The page on native HLS: it plays, paints, and says how far behind live it is.
async function playsNatively(ctx, seconds) {
  const { page, report, engine } = ctx;
  const first = await started(page, 60000);
  console.log(`${engine}: native HLS plays: ${first.width}x${first.height}, src ${first.source}`);
  report.pass('plays /live.m3u8 natively (no Media Source)', `picture ${first.width}x${first.height}`);
  const p = await paints(page, `web-${engine}-hls-video.png`);
  report.pass('paints frames through native HLS', assertPaints(ctx, p, 'native HLS frames'));
  const lag = await pageLag(page, seconds);
  console.log(`${engine}: native HLS: ${describeHlsLag(lag)}`);
  assert.ok(lag.n > lag.seconds, 'the page shows how far behind live it is');
  assert.ok(lag.max <= HLS_MAX_BEHIND_S, `fell ${fmt(lag.max)} s behind live (limit ${HLS_MAX_BEHIND_S} s)`);
  assert.ok(lag.played > lag.seconds * 0.8, `only ${fmt(lag.played, 2)} s of video played in ${fmt(lag.seconds, 1)} s`);
  const st = await hlsState(page);
  report.pass(`native HLS within ${HLS_MAX_BEHIND_S} s of live, and the page says how far`,
    `"${st.figures.latencyKey}: ${st.figures.latency}" (${lag.how}); median ${fmt(lag.median, 2)} s, max ${fmt(lag.max, 2)} s over ${fmt(lag.seconds, 0)} s`);
  return { chose: 'hls', played: true, lag };
}

// With neither Media Source nor HLS the page says so and links the stream.
export async function noPlayerAtAll(ctx) {
  const { page, report } = ctx;
  return withoutApis(page, ctx.daemon.url, HIDE.everything, async () => {
    const s = await chosenPath(page);
    assert.equal(s.path, 'none');
    const msg = await waitFor('the no-player message', async () => {
      const m = await noPlayer(page);
      return { ...m, ok: m.shown };
    }, 10000);
    console.log(`${ctx.engine}: with neither Media Source nor HLS: badge "${msg.badge}", message "${msg.text}"`);
    assert.equal(msg.badge, 'no player');
    assert.equal(msg.link, '/stream.ts');
    report.pass('neither Media Source nor HLS: the page says so and links /stream.ts', `badge "${msg.badge}"`);
  });
}

// ---- hls.js on a harness page (Chromium, playwright) -------------------------

const HLSJS = path.join(here, 'node_modules', 'hls.js', 'dist', 'hls.min.js');
export const HLSJS_VERSION = JSON.parse(fs.readFileSync(path.join(here, 'node_modules', 'hls.js', 'package.json'), 'utf8')).version;

const HARNESS = `<!doctype html>
<html><head><meta charset="utf-8"><title>hls.js harness</title></head>
<body style="margin:0;background:#000">
<video id="video" muted autoplay playsinline style="width:100%;display:block"></video>
<script src="/__hlsjs__/hls.min.js"></script>
<script>
  const v = document.getElementById('video');
  const info = (window.__hlsInfo = { errors: [], levels: [], switched: [], frames: 0, fatal: 0 });
  if (v.requestVideoFrameCallback) {
    const tick = () => { info.frames++; v.requestVideoFrameCallback(tick); };
    v.requestVideoFrameCallback(tick);
  }
  const hls = (window.__hls = new Hls());
  hls.on(Hls.Events.MANIFEST_PARSED, (e, d) => {
    info.levels = d.levels.map((l) => l.width + 'x' + l.height + '@' + l.bitrate);
    v.play().catch(() => {});
  });
  hls.on(Hls.Events.LEVEL_SWITCHED, (e, d) => info.switched.push(d.level));
  hls.on(Hls.Events.ERROR, (e, d) => {
    info.errors.push(d.details + (d.fatal ? ' (fatal)' : ''));
    if (!d.fatal) return;
    info.fatal++;
    if (d.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
    else setTimeout(() => hls.startLoad(), 1000);
  });
  hls.loadSource('/live.m3u8');
  hls.attachMedia(v);
</script>
</body></html>`;

// Serves the harness and hls.js under /__hlsjs__/ on the daemon's origin
// (request interception: the daemon itself knows nothing of it).
export async function openHlsJs(context, daemonUrl) {
  const page = await context.newPage();
  await page.route(`${daemonUrl}/__hlsjs__/**`, (route) => {
    const url = new URL(route.request().url());
    if (url.pathname === '/__hlsjs__/hls.min.js') {
      return route.fulfill({ status: 200, contentType: 'text/javascript', body: fs.readFileSync(HLSJS) });
    }
    return route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: HARNESS });
  });
  page.on('console', (m) => { if (m.type() === 'error') console.log('[hls.js page]', m.text()); });
  await page.goto(`${daemonUrl}/__hlsjs__/index.html`);
  return page;
}

function harnessState() {
  const v = document.getElementById('video');
  const h = window.__hls;
  const i = window.__hlsInfo;
  const b = v.buffered;
  const date = h.playingDate ? h.playingDate.getTime() : null;
  return {
    currentTime: v.currentTime,
    width: v.videoWidth,
    height: v.videoHeight,
    buffer: b.length ? b.end(b.length - 1) - v.currentTime : null,
    byDate: date ? (Date.now() - date) / 1000 : null,
    hlsLatency: typeof h.latency === 'number' ? h.latency : null,
    targetLatency: typeof h.targetLatency === 'number' ? h.targetLatency : null,
    level: h.currentLevel,
    levels: i.levels,
    switched: i.switched.length,
    errors: i.errors.slice(-5),
    fatal: i.fatal,
    frames: i.frames,
  };
}

export const hlsJsState = (page) => page.evaluate(harnessState);

// hls.js playing: behind live by date (now - playingDate), its own latency
// estimate and the buffer ahead, every 250 ms for `seconds`.
export async function hlsJsLag(page, seconds) {
  const a = await hlsJsState(page);
  const byDate = [], buffer = [], own = [];
  const t0 = Date.now();
  while (Date.now() - t0 < seconds * 1000) {
    const s = await hlsJsState(page);
    if (s.byDate !== null) byDate.push(s.byDate);
    if (s.buffer !== null) buffer.push(s.buffer);
    if (s.hlsLatency !== null) own.push(s.hlsLatency);
    await sleep(250);
  }
  const b = await hlsJsState(page);
  const wall = (Date.now() - t0) / 1000;
  return {
    byDate: summarize(byDate),
    buffer: summarize(buffer),
    hlsLatency: summarize(own),
    seconds: wall,
    played: b.currentTime - a.currentTime,
    paintedPerSecond: (b.frames - a.frames) / wall,
    state: b,
  };
}

export function describeHlsJsLag(l) {
  return `hls.js over ${fmt(l.seconds, 1)} s: behind live by date median ${fmt(l.byDate.median, 2)} s, p95 ${fmt(l.byDate.p95, 2)} s, ` +
    `max ${fmt(l.byDate.max, 2)} s; buffer ahead median ${fmt(l.buffer.median, 2)} s; hls.latency median ${fmt(l.hlsLatency.median, 2)} s; ` +
    `played ${fmt(l.played, 2)} s; painted ${fmt(l.paintedPerSecond, 1)} frames/s; picture ${l.state.width}x${l.state.height}`;
}
