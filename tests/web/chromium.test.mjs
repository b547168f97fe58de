// livestreamd's page in Debian's headless Chromium, driven by playwright-core
// (no browser download): the checks every engine passes (lib/suite.mjs), then
// what only this driver can do here: screenshots for the docs at two sizes,
// and a scripted /events stream (request interception) to check how the page
// shows a bad link, a GoPro's state and the controller's reason. Then HLS:
// the page with no Media Source (it turns to Chromium's native HLS player),
// and hls.js on a harness page as a stand-in for Safari's player.
//
// Run (after `cargo build`):  bash tests/web/run.sh  (or: cd tests/web && npm ci && node --test chromium.test.mjs)
// Env: LIVESTREAMD_BIN (default ../../target/debug/livestreamd),
//      CHROMIUM (default /usr/bin/chromium),
//      LIVESTREAMD_UPDATE_SCREENSHOT=1 also writes docs/phone.png.
// Screenshots go to artifacts/ (web.png, phone.png, web-desktop.png, web-link.png).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ARTIFACTS, repo, sleep } from './lib/daemon.mjs';
import { fmt, waitFor } from './lib/checks.mjs';
import { PHONE } from './lib/engines.mjs';
import { HLS_MAX_BEHIND_S, HLSJS_VERSION, describeHlsJsLag, hlsJsLag, hlsJsState, nativeHlsFallback, openHlsJs } from './lib/hls.mjs';
import { check, engineSuite, MEASURE_S } from './lib/suite.mjs';

const ctx = engineSuite('chromium');

check(ctx, 'chromium: screenshots of the playing page, phone and desktop', { timeout: 60000 }, async () => {
  assert.ok(ctx.phoneShot, 'the first test took the phone screenshot');
  fs.writeFileSync(path.join(ARTIFACTS, 'phone.png'), ctx.phoneShot);
  fs.writeFileSync(path.join(ARTIFACTS, 'web.png'), ctx.phoneShot);
  if (process.env.LIVESTREAMD_UPDATE_SCREENSHOT === '1') {
    fs.writeFileSync(path.join(repo, 'docs', 'phone.png'), ctx.phoneShot);
  }
  const page = ctx.page.raw;
  await page.setViewportSize({ width: 1280, height: 900 });
  await sleep(500);
  fs.writeFileSync(path.join(ARTIFACTS, 'web-desktop.png'), await page.screenshot());
  await page.setViewportSize({ width: PHONE.width, height: PHONE.height });
  ctx.report.pass('screenshots at phone and desktop size', 'artifacts/phone.png, artifacts/web-desktop.png');
});

check(ctx, 'chromium: the page shows link figures when the server reports them', { timeout: 60000 }, async () => {
  // The link monitor is another module's work; feed the page the shape it
  // reports (a `link` object on our viewer) through a scripted event stream.
  const p = await ctx.page.context.newPage();
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
    camera: { kind: 'auto', api: 'open-gopro', model: 'HERO12 Black', state: 'live', stalled_since: null },
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
  await p.goto(`${ctx.daemon.url}/`);
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
  assert.equal(await p.textContent('#k-camera'), 'Camera · HERO12 Black', 'the model the camera reported');
  assert.match(figures['f-link-extra'], /capacity 5\.00 Mbit\/s/);
  assert.match(figures['f-link-extra'], /last change: loss 6\.0 %/);
  fs.writeFileSync(path.join(ARTIFACTS, 'web-link.png'), await p.screenshot());
  await p.close();
  ctx.report.pass('link figures, camera state and controller reason from a scripted /events stream');
});

check(ctx, 'chromium: with no Media Source the page plays HLS natively and says how far behind it is', { timeout: 180000 }, async () => {
  await nativeHlsFallback(ctx, MEASURE_S);
});

check(ctx, `chromium: hls.js (stand-in for Safari's player) plays /live.m3u8 within ${HLS_MAX_BEHIND_S} s of live`, { timeout: 180000 }, async () => {
  const p = await openHlsJs(ctx.page.context, ctx.daemon.url);
  try {
    const first = await waitFor('hls.js to play', async () => {
      const s = await hlsJsState(p);
      return { ...s, ok: s.currentTime > 0.5 && s.width > 0 };
    }, 60000);
    console.log(`chromium: hls.js ${HLSJS_VERSION}: levels ${first.levels.join(', ')}, picture ${first.width}x${first.height}`);
    const lag = await hlsJsLag(p, MEASURE_S);
    console.log(`chromium: ${describeHlsJsLag(lag)}; errors ${JSON.stringify(lag.state.errors)}`);
    assert.ok(lag.byDate.n > lag.seconds * 2, 'hls.js gives the date of what it plays (#EXT-X-PROGRAM-DATE-TIME)');
    assert.ok(lag.byDate.max <= HLS_MAX_BEHIND_S, `fell ${fmt(lag.byDate.max)} s behind live (limit ${HLS_MAX_BEHIND_S} s)`);
    assert.ok(lag.played > lag.seconds * 0.8, `only ${fmt(lag.played, 2)} s played in ${fmt(lag.seconds, 1)} s`);
    assert.ok(lag.paintedPerSecond > 10, `only ${fmt(lag.paintedPerSecond, 1)} frames/s painted`);
    ctx.report.pass(`hls.js ${HLSJS_VERSION} plays /live.m3u8 within ${HLS_MAX_BEHIND_S} s of live`,
      `behind live by date median ${fmt(lag.byDate.median, 2)} s, max ${fmt(lag.byDate.max, 2)} s; ${fmt(lag.paintedPerSecond, 0)} frames/s painted`);
  } finally {
    await p.close();
  }
});
