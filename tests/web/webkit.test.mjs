// livestreamd's page in Debian's WebKitGTK (the engine family of Safari):
// MiniBrowser driven by WebKitWebDriver on an Xvfb display. The checks every
// engine passes (lib/suite.mjs) run with the page as it is, through
// MediaSource. Then, since iOS Safari has only ManagedMediaSource (17.1 and
// later) and older iPhones have no Media Source at all, the same page is
// loaded with MediaSource removed before its scripts run (lib/shim-proxy.mjs):
// it must play through ManagedMediaSource, and with neither it must play the
// HLS playlist natively (WebKitGTK: GStreamer's hlsdemux), and with no HLS
// either it must say so.
// This is WebKitGTK on Linux, not iOS: see docs/WEB.md for what that leaves out.
import assert from 'node:assert/strict';
import { engineSuite, assertLive, assertPaints, check, recovers, MEASURE_S } from './lib/suite.mjs';
import { behindLive, paints, probe, started, videoState } from './lib/checks.mjs';
import { nativeHlsFallback, noPlayerAtAll } from './lib/hls.mjs';
import { HIDE, withoutApis } from './lib/shim-proxy.mjs';

const ctx = engineSuite('webkit');

// Opens the page with the APIs `hide` removes; fn(probe) runs while it is open.
const without = (hide, fn) => withoutApis(ctx.page, ctx.daemon.url, hide, async () => fn(await probe(ctx.page)));

check(ctx, 'webkit: with only ManagedMediaSource (as on iOS 17.1+) the page plays, paints frames, stays live and recovers', { timeout: 240000 }, async (t) => {
  const { page, report } = ctx;
  if (!ctx.caps?.managedMediaSource || !ctx.caps?.h264Managed) {
    const why = ctx.caps ? 'this WebKitGTK has no ManagedMediaSource with H.264' : 'the first test did not get as far as probing the engine';
    report.cannot(`ManagedMediaSource path: ${why}`);
    t.skip(why);
    return;
  }
  await without(HIDE.mediaSource, async (caps) => {
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

// WebKitGTK's player (GStreamer's hlsdemux, switched on for these tests)
// started our playlist and then stood still in some runs here, in others it
// played on (GStreamer's own playbin plays the same playlist steadily): what
// it does is reported, the choice of the path and its label are asserted.
check(ctx, 'webkit: with no Media Source at all (older iPhones) the page chooses native HLS and says so; plays where WebKitGTK does', { timeout: 240000 }, async () => {
  await nativeHlsFallback(ctx, MEASURE_S, { mustPlay: false });
});

check(ctx, 'webkit: with neither Media Source nor HLS the page says so and links the stream', { timeout: 60000 }, () => noPlayerAtAll(ctx));
