// Opens livestreamd's page in Debian's headless Chromium and checks, as a
// person would, that it plays live: the video's clock advances, real frames
// are painted, it stays within 1.5 s of live for 30 s, and it comes back by
// itself after the daemon restarts and after the stream freezes.
//
// Run (after `cargo build`):  cd tests/web && npm ci && npm test
// Env: LIVESTREAMD_BIN (default ../../target/debug/livestreamd),
//      CHROMIUM (default /usr/bin/chromium),
//      LIVESTREAMD_UPDATE_SCREENSHOT=1 also writes docs/phone.png.
// Screenshots go to artifacts/ (web.png, phone.png, web-desktop.png).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import dgram from 'node:dgram';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const BIN = process.env.LIVESTREAMD_BIN || path.join(repo, 'target', 'debug', 'livestreamd');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = path.join(repo, 'artifacts');
const MAX_BEHIND_S = 1.5;
const MEASURE_S = 30;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freeTcpPort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}
function freeUdpPort() {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

let tmp, configPath, port, daemon, daemonLog, context, page;

function startDaemon() {
  const log = fs.openSync(daemonLog, 'a');
  daemon = spawn(BIN, ['demo', '--config', configPath, '--size', '640x360', '--fps', '30'], {
    stdio: ['ignore', log, log],
  });
  fs.closeSync(log);
  daemon.exited = new Promise((r) => daemon.once('exit', r));
}

async function stopDaemon() {
  if (!daemon || daemon.exitCode !== null || daemon.signalCode !== null) return;
  daemon.kill('SIGTERM');
  const stopped = await Promise.race([daemon.exited.then(() => true), sleep(10000).then(() => false)]);
  if (!stopped) { daemon.kill('SIGKILL'); await daemon.exited; }
}

async function waitHealthy(ms = 30000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (r.status === 200) return;
    } catch { /* not listening yet */ }
    if (daemon.exitCode !== null) break;
    await sleep(200);
  }
  throw new Error('livestreamd did not become healthy:\n' + fs.readFileSync(daemonLog, 'utf8'));
}

// Figures as the page itself sees them.
function videoState() {
  return page.evaluate(() => {
    const v = document.getElementById('video');
    const b = v.buffered;
    const end = b.length ? b.end(b.length - 1) : null;
    const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : {};
    return {
      currentTime: v.currentTime,
      bufferedEnd: end,
      behind: end === null ? null : end - v.currentTime,
      width: v.videoWidth,
      height: v.videoHeight,
      paused: v.paused,
      readyState: v.readyState,
      frames: q.totalVideoFrames,
      dropped: q.droppedVideoFrames,
      badge: document.getElementById('badge').textContent,
      stats: Object.assign({}, window.livestreamd.stats),
    };
  });
}

async function waitFor(what, fn, ms) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    last = await fn();
    if (last.ok) return last;
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${what}: ${JSON.stringify(last)}`);
}

// Luminance variance of an image given as a data URL, computed in the page.
function pngVariance(png) {
  const url = 'data:image/png;base64,' + png.toString('base64');
  return page.evaluate(async (src) => {
    const img = new Image();
    img.src = src;
    await img.decode();
    const c = document.createElement('canvas');
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    const g = c.getContext('2d');
    g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    let n = 0, sum = 0, sq = 0;
    for (let i = 0; i < d.length; i += 16) {
      const y = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
      n++; sum += y; sq += y * y;
    }
    const mean = sum / n;
    return { mean, variance: sq / n - mean * mean, width: c.width, height: c.height };
  }, url);
}

before(async () => {
  assert.ok(fs.existsSync(BIN), `${BIN} is missing: run cargo build first`);
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium`);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'livestreamd-web-'));
  port = await freeTcpPort();
  const udp = await freeUdpPort();
  configPath = path.join(tmp, 'livestreamd.toml');
  daemonLog = path.join(ARTIFACTS, 'web-daemon.log');
  fs.writeFileSync(daemonLog, '');
  fs.writeFileSync(configPath, `[source]
url = "udp://127.0.0.1:${udp}"
[encoder]
preset = "ultrafast"
[[ladder]]
width = 640
height = 360
fps = 30
bitrate_kbps = 800
[[ladder]]
width = 426
height = 240
fps = 15
bitrate_kbps = 300
[server]
listen = "127.0.0.1:${port}"
max_viewers = 4
`);
  startDaemon();
  await waitHealthy();
  context = await chromium.launchPersistentContext(path.join(tmp, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    viewport: { width: 390, height: 844 }, // a phone
    deviceScaleFactor: 2,
  });
  page = context.pages()[0] || (await context.newPage());
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') console.log('[page]', m.type(), m.text()); });
  page.on('pageerror', (e) => console.log('[page error]', e.message));
});

after(async () => {
  if (context) await context.close();
  await stopDaemon();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('the page plays the live stream and stays within 1.5 s of live', { timeout: 180000 }, async () => {
  await page.goto(`http://127.0.0.1:${port}/`);
  const codecs = await page.evaluate(() => ({
    browser: navigator.userAgent,
    h264: MediaSource.isTypeSupported('video/mp4; codecs="avc1.4d401f"'),
    player: !!(window.mpegts && mpegts.getFeatureList().mseLivePlayback),
  }));
  console.log('browser:', codecs.browser, '| MSE H.264:', codecs.h264, '| mpegts.js live playback:', codecs.player);
  assert.ok(codecs.h264, 'this Chromium cannot decode H.264 through MSE');
  assert.ok(codecs.player, 'mpegts.js says live playback is unsupported');

  // The clock advances.
  const first = await waitFor('playback to start', async () => {
    const s = await videoState();
    return { ...s, ok: s.currentTime > 0.5 && s.width > 0 };
  }, 20000);
  await sleep(3000);
  const second = await videoState();
  const advanced = second.currentTime - first.currentTime;
  console.log(`currentTime ${first.currentTime.toFixed(2)} -> ${second.currentTime.toFixed(2)} s in 3 s; picture ${second.width}x${second.height}`);
  assert.ok(advanced > 2, `video time advanced only ${advanced.toFixed(2)} s in 3 s`);
  assert.equal(second.width, 640);

  // Real frames are painted: the video element's own pixels, and a screenshot.
  const painted = await page.evaluate(() => {
    const v = document.getElementById('video');
    const c = document.createElement('canvas');
    c.width = 160; c.height = 90;
    const g = c.getContext('2d');
    g.drawImage(v, 0, 0, c.width, c.height);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    let n = 0, sum = 0, sq = 0;
    for (let i = 0; i < d.length; i += 4) {
      const y = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
      n++; sum += y; sq += y * y;
    }
    return { mean: sum / n, variance: sq / n - (sum / n) ** 2 };
  });
  const shot = await page.locator('#video').screenshot();
  fs.writeFileSync(path.join(ARTIFACTS, 'web-video.png'), shot);
  const shotStats = await pngVariance(shot);
  console.log(`frame luminance variance: video ${painted.variance.toFixed(0)}, screenshot ${shotStats.variance.toFixed(0)} (${shotStats.width}x${shotStats.height})`);
  assert.ok(painted.variance > 200, `the video frame is flat (variance ${painted.variance})`);
  assert.ok(shotStats.variance > 200, `the screenshot is blank (variance ${shotStats.variance})`);

  // 30 s at the live edge, measured by the page's own buffered end - currentTime.
  const samples = [];
  const t0 = Date.now();
  const startState = await videoState();
  while (Date.now() - t0 < MEASURE_S * 1000) {
    const s = await videoState();
    if (s.behind !== null) samples.push(s.behind);
    await sleep(250);
  }
  const endState = await videoState();
  const sorted = [...samples].sort((a, b) => a - b);
  const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
  const p95 = sorted[Math.floor(sorted.length * 0.95)];
  const max = sorted[sorted.length - 1];
  const played = endState.currentTime - startState.currentTime;
  console.log(`behind live over ${MEASURE_S} s (${samples.length} samples): mean ${mean.toFixed(3)} s, p95 ${p95.toFixed(3)} s, max ${max.toFixed(3)} s, min ${sorted[0].toFixed(3)} s`);
  console.log(`played ${played.toFixed(2)} s of video in ${MEASURE_S} s; frames ${endState.frames} (dropped ${endState.dropped}); page: ${JSON.stringify(endState.stats)}`);
  assert.ok(samples.length > MEASURE_S * 2, 'too few samples');
  assert.ok(max <= MAX_BEHIND_S, `fell ${max.toFixed(3)} s behind live (limit ${MAX_BEHIND_S} s)`);
  assert.ok(played > MEASURE_S * 0.8, `only ${played.toFixed(2)} s of video played in ${MEASURE_S} s`);

  // The figures are filled in from /events.
  const figures = await page.evaluate(() => ({
    res: document.getElementById('f-res').textContent,
    bitrate: document.getElementById('f-bitrate').textContent,
    rung: document.getElementById('f-rung').textContent,
    camera: document.getElementById('f-camera').textContent,
    rx: document.getElementById('f-rx').textContent,
    rtt: document.getElementById('f-rtt').textContent,
    loss: document.getElementById('f-loss').textContent,
    acked: document.getElementById('f-rate').textContent,
    viewers: document.getElementById('f-viewers').textContent,
  }));
  console.log('page figures:', JSON.stringify(figures));
  assert.equal(figures.res, '640×360');
  assert.equal(figures.rung, '0 of 2');
  assert.equal(figures.camera, 'live');
  assert.match(figures.rx, /Mbit\/s/, 'the page found its own viewer entry');
  assert.match(figures.rtt, / ms$/, 'the link monitor\'s RTT is shown');
  assert.match(figures.loss, / %$/);
  assert.match(figures.acked, /Mbit\/s/);

  const phone = await page.screenshot();
  fs.writeFileSync(path.join(ARTIFACTS, 'phone.png'), phone);
  fs.writeFileSync(path.join(ARTIFACTS, 'web.png'), phone);
  if (process.env.LIVESTREAMD_UPDATE_SCREENSHOT === '1') {
    fs.writeFileSync(path.join(repo, 'docs', 'phone.png'), phone);
  }
  await page.setViewportSize({ width: 1280, height: 900 });
  await sleep(500);
  fs.writeFileSync(path.join(ARTIFACTS, 'web-desktop.png'), await page.screenshot());
  await page.setViewportSize({ width: 390, height: 844 });
});

test('the page comes back by itself after a frozen stream and a daemon restart', { timeout: 180000 }, async () => {
  const playing = async (what, ms) => {
    const a = await videoState();
    return waitFor(what, async () => {
      const s = await videoState();
      return { ...s, ok: s.currentTime > a.currentTime + 1 && s.badge === 'LIVE' };
    }, ms);
  };
  await playing('playback before the faults', 20000);

  // A frozen stream: the connection stays open but nothing arrives (the
  // daemon is stopped with SIGSTOP, as a dead Wi-Fi link would look).
  const before = (await videoState()).stats.restarts;
  daemon.kill('SIGSTOP');
  await sleep(7000);
  daemon.kill('SIGCONT');
  const back = await playing('playback after the frozen stream', 30000);
  console.log(`after a 7 s freeze: playing again, player restarts ${back.stats.restarts - before}, behind live ${back.behind?.toFixed(3)} s`);
  assert.ok(back.stats.restarts > before, 'the stall watchdog restarted the player');

  // The daemon restarts: every connection is closed, then the same address serves again.
  await stopDaemon();
  await waitFor('the page to notice', async () => {
    const s = await videoState();
    return { ...s, ok: s.badge !== 'LIVE' };
  }, 10000);
  const down = Date.now();
  await sleep(2000);
  startDaemon();
  await waitHealthy();
  const again = await playing('playback after the daemon restarted', 30000);
  console.log(`after a daemon restart: playing again ${((Date.now() - down) / 1000).toFixed(1)} s after it went down, behind live ${again.behind?.toFixed(3)} s`);
  await sleep(3000);
  const settled = await videoState();
  assert.ok(settled.behind !== null && settled.behind <= MAX_BEHIND_S, `behind live by ${settled.behind} s after the restart`);
});

test('the page shows link figures when the server reports them', { timeout: 60000 }, async () => {
  // The link monitor is another module's work; feed the page the shape it
  // reports (a `link` object on our viewer) through a scripted event stream.
  const p = await context.newPage();
  const address = '192.168.4.2:50000';
  const now = Date.now();
  const status = (t, bytes) => ({
    t,
    source: { state: 'live', last_packet_age_ms: 10 },
    encoder: { rung: 1, generation: 2, width: 426, height: 240, fps: 15, bitrate_kbps: 300 },
    pending_encoder: null,
    http: { max_viewers: 4 },
    viewers: [{ id: 9, address, bytes_sent: bytes, skips: 2, lag_ms: 30,
      link: { t: 12.5, rtt_ms: 42.5, rttvar_ms: 3, loss_pct: 2.5, throughput_kbps: 1450, delivery_kbps: 5000, notsent_bytes: 4096, lag_ms: 30, skips: 0 } }],
    camera: { kind: 'open-gopro', state: 'live', stalled_since: null },
    adapt: { mode: 'auto', rung: 1, switching_to: null, pinned: null, last_reason: 'loss 6.0 % above 5 % for 1.0 s' },
  });
  const frame = (event, data) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
  await p.route('**/events*', (route) => route.fulfill({
    status: 200,
    headers: { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store' },
    body: 'retry: 60000\n\n' +
      frame('hello', { t: now, ladder: [{ width: 640, height: 360, fps: 30, bitrate_kbps: 800 }, { width: 426, height: 240, fps: 15, bitrate_kbps: 300 }],
        history: [{ t: now - 20000, rung: 0, bitrate_kbps: 800 }, { t: now - 10000, rung: 1, bitrate_kbps: 300 }] }) +
      frame('me', { address }) +
      frame('status', status(now - 1000, 1000000)) +
      frame('status', status(now, 1125000)),
  }));
  await p.goto(`http://127.0.0.1:${port}/`);
  const figures = await waitFor('link figures', async () => {
    const f = await p.evaluate(() => Object.fromEntries(['f-res', 'f-rung', 'f-rtt', 'f-loss', 'f-rate', 'f-rx', 'f-camera', 'f-link-extra']
      .map((id) => [id, document.getElementById(id).textContent])));
    return { ...f, ok: f['f-rtt'] !== '–' && f['f-rx'] !== '–' };
  }, 10000);
  console.log('page figures with a link object:', JSON.stringify(figures));
  assert.equal(figures['f-rtt'], '43 ±3 ms');
  assert.equal(figures['f-rate'], '1.45 Mbit/s');
  assert.equal(figures['f-rx'], '1.00 Mbit/s', '125000 bytes in 1 s');
  assert.equal(figures['f-loss'], '2.5 %');
  assert.equal(figures['f-rung'], '1 of 2');
  assert.equal(figures['f-res'], '426×240');
  assert.equal(figures['f-camera'], 'live');
  assert.equal(await p.textContent('#k-camera'), 'Camera · open-gopro');
  assert.match(figures['f-link-extra'], /capacity 5\.00 Mbit\/s/);
  assert.match(figures['f-link-extra'], /last change: loss 6\.0 %/);
  fs.writeFileSync(path.join(ARTIFACTS, 'web-link.png'), await p.screenshot());
  await p.close();
});
