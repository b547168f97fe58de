// livestreamd's page in Debian's WebKitGTK (the engine family of Safari):
// MiniBrowser driven by WebKitWebDriver on an Xvfb display. The checks every
// engine passes (lib/suite.mjs) run with the page as it is, through
// MediaSource. Then, since iOS Safari has only ManagedMediaSource (17.1 and
// later) and older iPhones have no Media Source at all, the same page is
// loaded with MediaSource removed before its scripts run (lib/shim-proxy.mjs):
// it must play through ManagedMediaSource, and with neither it must say so.
// This is WebKitGTK on Linux, not iOS: see docs/WEB.md for what that leaves out.
import assert from 'node:assert/strict';
import { engineSuite, assertLive, assertPaints, check, recovers, MEASURE_S } from './lib/suite.mjs';
import { behindLive, noPlayer, paints, probe, started, videoState, waitFor } from './lib/checks.mjs';
import { HIDE, startShimProxy } from './lib/shim-proxy.mjs';

const ctx = engineSuite('webkit');

// Opens the page with the APIs `hide` removes; fn(probe) runs while it is open.
async function withoutApis(hide, fn) {
  const proxy = await startShimProxy(ctx.daemon.url, hide);
  try {
    await ctx.page.goto(`${proxy.url}/`);
    return await fn(await probe(ctx.page));
  } finally {
    await proxy.close();
  }
}

check(ctx, 'webkit: with only ManagedMediaSource (as on iOS 17.1+) the page plays, paints frames, stays live and recovers', { timeout: 240000 }, async (t) => {
  const { page, report } = ctx;
  if (!ctx.caps?.managedMediaSource || !ctx.caps?.h264Managed) {
    const why = ctx.caps ? 'this WebKitGTK has no ManagedMediaSource with H.264' : 'the first test did not get as far as probing the engine';
    report.cannot(`ManagedMediaSource path: ${why}`);
    t.skip(why);
    return;
  }
  await withoutApis(HIDE.mediaSource, async (caps) => {
    assert.equal(caps.mediaSource, false, 'the shim removed MediaSource');
    assert.ok(caps.player, 'mpegts.js offers live playback through ManagedMediaSource');
    const first = await started(page);
    assert.equal(first.source, 'ManagedMediaSource', 'mpegts.js attached a ManagedMediaSource (srcObject)');
    report.pass('plays through ManagedMediaSource (MediaSource removed)', `picture ${first.width}x${first.height}`);
    const p = await paints(page, 'web-webkit-managed-video.png');
    report.pass('paints frames through ManagedMediaSource', assertPaints(ctx, p, 'ManagedMediaSource frames'));
    const lag = await behindLive(page, MEASURE_S);
    report.pass(`within 1.5 s of live through ManagedMediaSource`, assertLive(ctx, lag));
    await recovers(ctx, ' through ManagedMediaSource');
    assert.equal((await videoState(page)).source, 'ManagedMediaSource', 'the restarted player uses ManagedMediaSource again');
  });
});

check(ctx, 'webkit: with no Media Source at all (older iPhones) the page says so and links the stream', { timeout: 60000 }, async () => {
  const { page, report } = ctx;
  await withoutApis(HIDE.allMediaSource, async (caps) => {
    assert.equal(caps.mediaSource || caps.managedMediaSource, false, 'the shim removed both');
    const msg = await waitFor('the no-player message', async () => {
      const m = await noPlayer(page);
      return { ...m, ok: m.shown };
    }, 10000);
    console.log(`webkit: without Media Source: badge "${msg.badge}", message "${msg.text}"`);
    assert.equal(msg.badge, 'no player');
    assert.equal(msg.link, '/stream.ts');
    report.pass('no Media Source: the page says so and links /stream.ts', `badge "${msg.badge}"`);
  });
});
