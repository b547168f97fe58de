// Lag behind live of the phone's page, per engine and playback path, measured
// exactly as the tests measure it (lib/checks.mjs: newest buffered frame minus
// playback position, every 250 ms), over a longer window, and written into
// benches/RESULTS.md with the command, date and versions. Then HLS: the page
// on Chromium's native HLS player (Media Source removed; the page's own
// figure), hls.js in Chromium (now minus the date of the frame shown), and
// ffmpeg's HLS demuxer (a frame out of ffmpeg against the same frame into a
// /stream.ts viewer). Each row says what it measured.
//
//   bash tests/web/run.sh bench [SECONDS] [ENGINE...]     (installs, builds the release binary)
//   node bench.mjs [--seconds 60] [--engines chromium,firefox,webkit] [--no-write]
//
// It lives here, next to the tests, because it drives the same browsers with
// the same code; a shell script in benches/ would have to repeat all of it.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Daemon, repo, sleep } from './lib/daemon.mjs';
import { ENGINES, launch } from './lib/engines.mjs';
import { behindLive, describeLag, fmt, playing, probe, started, summarize } from './lib/checks.mjs';
import { ffmpegHls, liveEdge } from './lib/ffmpeg-hls.mjs';
import { HLSJS_VERSION, describeHlsJsLag, describeHlsLag, hlsJsLag, hlsJsState, openHlsJs, pageLag } from './lib/hls.mjs';
import { HIDE, startShimProxy } from './lib/shim-proxy.mjs';

function args() {
  const a = process.argv.slice(2);
  const o = { seconds: 60, engines: ENGINES, write: true };
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '--seconds') o.seconds = Number(a[++i]);
    else if (a[i] === '--engines') o.engines = a[++i].split(',').filter(Boolean);
    else if (a[i] === '--no-write') o.write = false;
    else throw new Error(`unknown argument ${a[i]}`);
  }
  if (!(o.seconds > 0)) throw new Error('--seconds must be a positive number');
  for (const e of o.engines) if (!ENGINES.includes(e)) throw new Error(`unknown engine ${e}`);
  return o;
}

const WARM_S = 5;
const BUFFER = 'newest buffered frame − playback position (the page, every 250 ms)';

// The playback paths of one engine: its own Media Source, and for WebKit
// also ManagedMediaSource alone (MediaSource removed, as on iOS 17.1+).
async function measureEngine(engine, seconds, rows) {
  const daemon = await new Daemon(`bench-${engine}`).setup();
  daemon.start();
  let page, proxy;
  try {
    await daemon.waitHealthy();
    page = await launch(engine);
    const paths = [{ path: 'MSE (mpegts.js)', url: `${daemon.url}/` }];
    await page.goto(`${daemon.url}/`);
    const caps = await probe(page);
    if (engine === 'webkit' && caps.managedMediaSource && caps.h264Managed) {
      proxy = await startShimProxy(daemon.url, HIDE.mediaSource);
      paths.push({ path: 'ManagedMediaSource (mpegts.js, MediaSource removed)', url: `${proxy.url}/` });
    }
    for (const p of paths) {
      await page.goto(p.url);
      const first = await started(page);
      await playing(page, 'playback', 20000);
      await sleep(WARM_S * 1000);
      const load = os.loadavg()[0];
      const lag = await behindLive(page, seconds);
      console.log(`${engine} ${p.path}: ${describeLag(lag)}`);
      rows.push({ engine, version: page.version, path: p.path, measure: BUFFER, source: first.source, lag, load: (load + os.loadavg()[0]) / 2 });
    }
    if (engine === 'chromium') {
      await page.goto('about:blank');
      if (proxy) await proxy.close();
      proxy = await startShimProxy(daemon.url, HIDE.allMediaSource);
      await measureNativeHls(page, `${proxy.url}/`, seconds, rows);
      await measureHlsJs(page, daemon.url, seconds, rows);
    }
  } finally {
    if (proxy) await proxy.close();
    if (page) await page.close();
    await daemon.cleanup();
  }
}

// The page with no Media Source: Chromium's own HLS player on /live.m3u8,
// measured by the page's figure (seekable end - position + the newest
// segment's age, read from the playlist).
async function measureNativeHls(page, url, seconds, rows) {
  await page.goto(url);
  const first = await started(page, 60000);
  await sleep(WARM_S * 1000);
  const load = os.loadavg()[0];
  const l = await pageLag(page, seconds);
  console.log(`chromium native HLS: ${describeHlsLag(l)}`);
  rows.push({
    engine: 'chromium', version: page.version, path: 'HLS `/live.m3u8`, native (the page, Media Source removed)',
    measure: `the page's own figure (${l.how}: seekable end − position + age of the playlist's newest segment end), every 500 ms`,
    source: first.source,
    lag: { n: l.n, median: l.median, p95: l.p95, max: l.max, paintedPerSecond: l.paintedPerSecond, waiting: null, jumps: null, restarts: l.restarts, state: l.state },
    load: (load + os.loadavg()[0]) / 2,
  });
  await page.goto('about:blank');
}

// hls.js (test harness only) in Chromium: now - playingDate.
async function measureHlsJs(page, daemonUrl, seconds, rows) {
  const p = await openHlsJs(page.context, daemonUrl);
  try {
    const deadline = Date.now() + 60000;
    while ((await hlsJsState(p)).currentTime < 0.5 && Date.now() < deadline) await sleep(250);
    await sleep(WARM_S * 1000);
    const load = os.loadavg()[0];
    const l = await hlsJsLag(p, seconds);
    console.log(`chromium hls.js: ${describeHlsJsLag(l)}`);
    rows.push({
      engine: 'chromium', version: `hls.js ${HLSJS_VERSION} in ${page.version}`, path: 'HLS `/live.m3u8` (hls.js, stand-in for Safari\'s player)',
      measure: `now − the date of the frame shown (hls.playingDate from #EXT-X-PROGRAM-DATE-TIME), every 250 ms; buffer ahead median ${fmt(l.buffer.median, 2)} s`,
      lag: { ...l.byDate, paintedPerSecond: l.paintedPerSecond, waiting: null, jumps: null, restarts: l.state.fatal, state: l.state },
      load: (load + os.loadavg()[0]) / 2,
    });
  } finally {
    await p.close();
  }
}

// ffmpeg's HLS demuxer on /live.m3u8 against a /stream.ts viewer.
async function measureFfmpeg(seconds, rows) {
  const daemon = await new Daemon('bench-ffmpeg').setup();
  daemon.start();
  let live, ff;
  try {
    await daemon.waitHealthy();
    await sleep(4000); // a few segments listed
    live = liveEdge(daemon.url);
    ff = ffmpegHls(`${daemon.url}/live.m3u8`);
    await sleep((WARM_S + 5) * 1000);
    const load = os.loadavg()[0];
    const from = ff.frames.length;
    await sleep(seconds * 1000);
    const frames = ff.frames.slice(from);
    const lags = frames.filter(([, pts]) => live.frames.has(pts)).map(([t, pts]) => (t - live.frames.get(pts)) / 1000);
    const l = { ...summarize(lags), paintedPerSecond: frames.length / seconds, waiting: null, jumps: null, restarts: null, state: {} };
    console.log(`ffmpeg HLS: ${lags.length} frames: median ${fmt(l.median, 2)} s, p95 ${fmt(l.p95, 2)} s, max ${fmt(l.max, 2)} s`);
    rows.push({
      engine: 'ffmpeg', version: sh('ffmpeg', ['-version']).split('\n')[0].replace(/ Copyright.*/, '').replace('ffmpeg version', 'ffmpeg'),
      path: 'HLS `/live.m3u8` (ffmpeg\'s HLS demuxer, `-c copy`)',
      measure: 'a frame out of ffmpeg − the same frame into a `/stream.ts` viewer (no playback clock: ffmpeg writes each segment as it gets it)',
      lag: l, load: (load + os.loadavg()[0]) / 2,
    });
  } finally {
    if (ff) ff.stop();
    if (live) live.close();
    await daemon.cleanup();
  }
}

function sh(cmd, argv) {
  try { return execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(); } catch { return '?'; }
}

function section(o, rows, when, load, bin) {
  const date = when.toISOString().slice(0, 16).replace('T', ' ');
  const rev = sh('git', ['-C', repo, 'rev-parse', '--short', 'HEAD']) + (sh('git', ['-C', repo, 'status', '--porcelain', '--untracked-files=no']) ? ' + local changes' : '');
  const ffmpeg = sh('ffmpeg', ['-version']).split('\n')[0].replace(/ Copyright.*/, '');
  const engines = [...new Map(rows.filter((r) => r.measure === BUFFER).map((r) => [r.engine, r.version])).values()].join(', ');
  const cmd = `bash tests/web/run.sh bench ${o.seconds}${o.engines.join(',') === ENGINES.join(',') ? '' : ' ' + o.engines.join(' ')}`;
  const out = [];
  out.push(`## Web player lag behind live per engine, ${date} UTC`, '');
  out.push(`Command: \`${cmd}\` (as root: installs the browsers from Debian); livestreamd ${bin.includes('/release/') ? 'release' : 'debug'} build at ${rev}.`);
  out.push(`Scenario: \`livestreamd demo\` 640x360@30 on loopback, rung 640x360@30 800 kbit/s (libx264 ultrafast), one page at a time ` +
    `(390x844 viewport; WebKitGTK's window is 447 px wide at least), ${WARM_S} s of playback before ${o.seconds} s of samples every 250 ms.`);
  out.push('Measured: "behind live" as the page itself sees it, the newest buffered frame minus the playback position — the tests\' ' +
    'limit is 1.5 s. This is the player\'s share of glass-to-glass delay: the camera, encoder and network share is the same for every ' +
    'row here (loopback) and is not in these figures. "Frames/s" are frames painted (requestVideoFrameCallback); "stalls" are ' +
    '`waiting` events; "jumps" are the page\'s own skips to the live edge (when more than 1.0 s behind); "load" is the machine\'s ' +
    '1-minute load average during the row (other work on the same cores shows up as stalls and jumps); the daemon adapts as usual, ' +
    'so a busy machine can also step the picture down to 426x240.');
  out.push(`Versions: ${engines}; mpegts.js 1.8.2; hls.js ${HLSJS_VERSION}; ${ffmpeg}; node ${process.version}; ${os.cpus().length} cores, load average ${load} at the start.`, '');
  out.push('| path | client | measured as | samples | median | p95 | max | frames/s | stalls | jumps | player restarts | picture at the end | load |');
  out.push('| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |');
  const n = (x) => (x === null || x === undefined ? '–' : x);
  for (const r of rows) {
    const l = r.lag;
    out.push(`| ${r.path} | ${r.version} | ${r.measure} | ${l.n} | ${fmt(l.median, 2)} s | ${fmt(l.p95, 2)} s | ${fmt(l.max, 2)} s | ` +
      `${fmt(l.paintedPerSecond, 1)} | ${n(l.waiting)} | ${n(l.jumps)} | ${n(l.restarts)} | ${l.state.width ? `${l.state.width}x${l.state.height}` : '–'} | ${fmt(r.load, 1)} |`);
  }
  out.push('');
  out.push('The Media Source rows measure the player\'s share only (what is buffered and not yet shown; `/stream.ts` is written ' +
    'as the hub gets it); the HLS rows measure from the moment a frame reached the hub (hls.js, by the playlist\'s dates; ffmpeg, ' +
    'against a `/stream.ts` viewer) or estimate it (native HLS, the page\'s figure), so they include that a segment is listed ' +
    'only once complete (up to a keyframe interval, 1 s) and that HLS players start a few segments back.');
  out.push('');
  return out.join('\n');
}

const o = args();
const t0 = new Date();
const load = os.loadavg().map((x) => x.toFixed(2)).join(' ');
const rows = [];
for (const engine of o.engines) await measureEngine(engine, o.seconds, rows);
await measureFfmpeg(o.seconds, rows);
const text = section(o, rows, t0, load, new Daemon('').bin);
console.log('\n' + text);
if (o.write) {
  const file = path.join(repo, 'benches', 'RESULTS.md');
  const old = fs.readFileSync(file, 'utf8');
  fs.writeFileSync(file, old.replace(/\n*$/, '\n\n') + text);
  console.log(`written to ${path.relative(process.cwd(), file)}`);
}
process.exit(0);
