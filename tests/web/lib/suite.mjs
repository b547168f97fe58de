// The checks every engine must pass, as node:test tests: the page plays the
// live stream through Media Source, paints real frames, stays within 1.5 s of
// live for 30 s, fills in its figures, and comes back by itself after a
// frozen stream and after a daemon restart, and its diagnosis panel tells
// what is wrong (lib/diag.mjs). Each engine's test file calls
// engineSuite() and may add tests of its own on the returned context.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ARTIFACTS, Daemon, LADDER, sleep } from './daemon.mjs';
import { launch } from './engines.mjs';
import { diagnosis } from './diag.mjs';
import {
  MAX_BEHIND_S, Report, behindLive, describeLag, figures, fmt, paints, started, playing, probe, videoState, waitFor,
} from './checks.mjs';

export const MEASURE_S = Number(process.env.LIVESTREAMD_WEB_MEASURE_S || 30);

// Asserts that frames were painted; the numbers go into the report.
export function assertPaints(ctx, p, what) {
  const rate = p.paintedPerSecond ?? p.qualityFramesPerSecond;
  console.log(`${ctx.engine}: ${what}: currentTime +${fmt(p.advanced, 2)} s in ${fmt(p.seconds, 1)} s; ` +
    `painted ${fmt(p.paintedPerSecond, 1)} frames/s (requestVideoFrameCallback), ` +
    `getVideoPlaybackQuality ${fmt(p.qualityFramesPerSecond, 1)} frames/s; frame variance ${fmt(p.frame.variance, 0)}, ` +
    `changed ${p.changed}; screenshot variance ${fmt(p.screen.variance, 0)} (${p.screen.width}x${p.screen.height})`);
  assert.ok(p.advanced > 2, `video time advanced only ${fmt(p.advanced, 2)} s in 3 s`);
  assert.ok(rate > 10, `only ${fmt(rate, 1)} frames/s painted`);
  assert.ok(p.frame.variance > 200, `the video frame is flat (variance ${p.frame.variance})`);
  assert.ok(p.changed, 'the video frame did not change in 3 s');
  assert.ok(p.screen.variance > 200, `the screenshot is blank where the video is (variance ${p.screen.variance})`);
  if (p.paintedPerSecond !== null && Math.abs(p.qualityFramesPerSecond - p.paintedPerSecond) > p.paintedPerSecond / 2) {
    ctx.report.note(`getVideoPlaybackQuality().totalVideoFrames does not follow the painted frames here (${what}: ` +
      `${fmt(p.qualityFramesPerSecond, 1)}/s against ${fmt(p.paintedPerSecond, 1)}/s from requestVideoFrameCallback): frames are counted with the latter`);
  }
  return `${fmt(rate, 0)} frames/s painted, frames change, frame and screenshot not blank`;
}

export function assertLive(ctx, lag) {
  console.log(`${ctx.engine}: ${describeLag(lag)}`);
  assert.ok(lag.n > lag.seconds * 2, 'too few samples');
  assert.ok(lag.max <= MAX_BEHIND_S, `fell ${fmt(lag.max)} s behind live (limit ${MAX_BEHIND_S} s)`);
  assert.ok(lag.played > lag.seconds * 0.8, `only ${fmt(lag.played, 2)} s of video played in ${fmt(lag.seconds, 1)} s`);
  return `max ${fmt(lag.max, 2)} s, p95 ${fmt(lag.p95, 2)} s, median ${fmt(lag.median, 2)} s over ${fmt(lag.seconds, 0)} s`;
}

// The page plays again by itself after a 7 s frozen stream (the daemon is
// SIGSTOPped) and after the daemon restarts (down for 2 s). `how` names the
// playback path in the report ('' for the page as it is).
export async function recovers(ctx, how) {
  const { page, daemon, report, engine } = ctx;
  await playing(page, 'playback before the faults', 20000);

  const before = (await videoState(page)).stats.restarts;
  await daemon.freeze(7000);
  const back = await playing(page, 'playback after the frozen stream', 30000);
  console.log(`${engine}: after a 7 s freeze${how}: playing again, player restarts ${back.stats.restarts - before}, behind live ${fmt(back.behind)} s`);
  assert.ok(back.stats.restarts > before, 'the stall watchdog restarted the player');
  report.pass(`recovers from a 7 s frozen stream${how}`, `player restarted ${back.stats.restarts - before}×`);

  await daemon.stop();
  await waitFor('the page to notice', async () => {
    const s = await videoState(page);
    return { ...s, ok: s.badge !== 'LIVE' };
  }, 10000);
  const down = Date.now();
  await sleep(2000);
  daemon.start();
  await daemon.waitHealthy();
  const again = await playing(page, 'playback after the daemon restarted', 30000);
  const after = ((Date.now() - down) / 1000).toFixed(1);
  console.log(`${engine}: after a daemon restart${how}: playing again ${after} s after it went down, behind live ${fmt(again.behind)} s`);
  await sleep(3000);
  const settled = await videoState(page);
  assert.ok(settled.behind !== null && settled.behind <= MAX_BEHIND_S, `behind live by ${settled.behind} s after the restart`);
  report.pass(`recovers from a daemon restart${how}`, `playing ${after} s after it went down (2 s down), then ${fmt(settled.behind, 2)} s behind live`);
}

// A node:test test whose failure is also written into the engine's report.
export function check(ctx, name, opts, fn) {
  test(name, opts, async (t) => {
    try {
      await fn(t);
    } catch (e) {
      ctx.report?.failed(name, e);
      throw e;
    }
  });
}

export function engineSuite(engine) {
  const ctx = { engine };

  before(async () => {
    ctx.daemon = await new Daemon(engine).setup();
    ctx.daemon.start();
    await ctx.daemon.waitHealthy();
    ctx.page = await launch(engine);
    ctx.report = new Report(engine, ctx.page);
    console.log(`${engine}: ${ctx.page.label}, ${ctx.page.version}`);
    for (const n of ctx.page.notes) console.log(`${engine}: NOT VERIFIED HERE: ${n}`);
    for (const n of ctx.page.remarks) console.log(`${engine}: note: ${n}`);
  });

  after(async () => {
    ctx.report?.write();
    if (ctx.page) await ctx.page.close();
    if (ctx.daemon) await ctx.daemon.cleanup();
  });

  check(ctx, `${engine}: the page plays the live stream, paints frames and stays within ${MAX_BEHIND_S} s of live`, { timeout: 180000 }, async () => {
    const { page, report } = ctx;
    await page.goto(`${ctx.daemon.url}/`);
    const caps = await probe(page);
    console.log(`${engine}: ${caps.userAgent} | MediaSource ${caps.mediaSource} (H.264 ${caps.h264}) | ` +
      `ManagedMediaSource ${caps.managedMediaSource} (H.264 ${caps.h264Managed}) | mpegts.js live playback ${caps.player} | ` +
      `requestVideoFrameCallback ${caps.frameCallback}`);
    ctx.caps = caps;
    assert.ok(caps.mediaSource, `${engine} has no MediaSource here`);
    assert.ok(caps.h264, `${engine} cannot decode H.264 through MediaSource here (MediaSource.isTypeSupported is false)`);
    assert.ok(caps.player, 'mpegts.js says live playback is unsupported');
    report.pass('Media Source with H.264', `MediaSource ${caps.h264 ? 'yes' : 'no'}, ManagedMediaSource ${caps.managedMediaSource ? (caps.h264Managed ? 'yes' : 'present, no H.264') : 'absent'}`);
    if (!caps.frameCallback) report.cannot('requestVideoFrameCallback is missing: painted frames counted with getVideoPlaybackQuality');

    const first = await started(page);
    report.pass('plays', `picture ${first.width}x${first.height} through ${first.source}`);
    assert.ok(LADDER.some((r) => r.width === first.width && r.height === first.height), `a picture of ${first.width}x${first.height}`);

    report.pass('paints frames', assertPaints(ctx, await paints(page, `web-${engine}-video.png`), 'frames'));

    const lag = await behindLive(page, MEASURE_S);
    ctx.lag = lag;
    report.pass(`within ${MAX_BEHIND_S} s of live`, assertLive(ctx, lag));

    // The rung is the daemon's choice (on a busy machine its controller may
    // step down): the page must show the one /status reports.
    const f = await waitFor('the figures to match /status', async () => {
      const x = await figures(page);
      const e = (await (await fetch(`${ctx.daemon.url}/status`)).json()).encoder || {};
      const want = { res: `${e.width}×${e.height}`, rung: `${e.rung} of ${LADDER.length}` };
      return { ...x, want, ok: x.res === want.res && x.rung === want.rung && / ms$/.test(x.rtt) && /Mbit\/s/.test(x.rx) };
    }, 10000);
    console.log(`${engine}: page figures: ${JSON.stringify(f)}`);
    if (f.rung !== `0 of ${LADDER.length}`) {
      const a = (await (await fetch(`${ctx.daemon.url}/status`)).json()).adapt || {};
      report.note(`the daemon's controller had stepped down to rung ${f.rung} during the test (${a.last_reason || 'no reason given'}); the page showed it`);
    }
    assert.equal(f.camera, 'live');
    assert.match(f.rx, /Mbit\/s/, 'the page found its own viewer entry');
    assert.match(f.rtt, / ms$/, 'the link monitor\'s RTT is shown');
    assert.match(f.loss, / %$/);
    assert.match(f.acked, /Mbit\/s/);
    report.pass('figures from /events', `${f.res}, rung ${f.rung}, RTT ${f.rtt}, received ${f.rx}`);
    ctx.phoneShot = await page.screenshot();
    fs.writeFileSync(path.join(ARTIFACTS, `web-${engine}.png`), ctx.phoneShot);
  });

  check(ctx, `${engine}: the page comes back by itself after a frozen stream and a daemon restart`, { timeout: 180000 },
    () => recovers(ctx, ''));

  check(ctx, `${engine}: the diagnosis panel shows the warnings with secrets masked, the camera, the network, the phones and QR codes`,
    { timeout: 120000 }, () => diagnosis(ctx));

  return ctx;
}
