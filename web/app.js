// livestreamd's phone page: plays /stream.ts through Media Source Extensions
// or Managed Media Source (mpegts.js), or, in a browser with neither, the HLS
// playlist /live.m3u8 natively (<video src>); stays at the live edge,
// reconnects by itself, and shows the figures from /events with small
// graphs. No framework, no build step.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const video = $('video');
  const badge = $('badge');

  // One token per page load tags both our /stream.ts and /events requests,
  // so the server can tell us which viewer entry is ours.
  const token = Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, '0')).join('');

  // How far behind the newest buffered frame we let playback fall before
  // jumping forward, and where we land.
  const MAX_BEHIND_S = 1.0;
  const LAND_BEHIND_S = 0.3;
  // Playback that makes no progress for this long restarts the player.
  const STALL_RESTART_MS = 4000;
  // Native HLS starts later (playlists, then whole segments) and moves in
  // segments: more patience, and a jump only when far behind (back from the
  // background), to a few segments before the end of what it can play.
  const HLS_STALL_RESTART_MS = 12000;
  const HLS_MAX_BEHIND_S = 8;
  const HLS_LAND_BEHIND_S = 3;
  const HLS_TYPE = 'application/vnd.apple.mpegurl';
  const WINDOW_MS = 5 * 60 * 1000; // graphs show the last five minutes

  // ---- figures shared with the test (window.livestreamd) -------------------
  // path: 'mse', 'managed' (ManagedMediaSource), 'hls' (native) or 'none';
  // latencyHow says what the latency figure is made of.
  const stats = { jumps: 0, restarts: 0, errors: 0, latency: null, latencyHow: null, lastError: null, path: null, edgeAge: null };
  window.livestreamd = { token, stats, latency };

  // How far behind live playback is, in seconds, or null.
  //   Media Source: the newest buffered frame minus the playback position
  //     (the stream arrives as it is made, so that is the whole backlog).
  //   Native HLS: where the player can show a date for its position
  //     (Safari's getStartDate(), from #EXT-X-PROGRAM-DATE-TIME, the time a
  //     frame reached the server), now minus that date; else the end of what
  //     it can play (seekable, else buffered) minus its position, plus how old
  //     the playlist's newest segment end is (read by the page itself): an
  //     estimate, and labelled so; a player that shows no range ahead of its
  //     position leaves only the segment's age: at least that much.
  function latency() {
    if (stats.path === 'hls') return hlsLatency();
    stats.latencyHow = 'buffer';
    const b = video.buffered;
    if (!b || b.length === 0) return null;
    return b.end(b.length - 1) - video.currentTime;
  }

  function hlsLatency() {
    const start = video.getStartDate ? video.getStartDate() : null;
    const t0 = start ? start.getTime() : NaN;
    if (isFinite(t0) && t0 > 0 && video.currentTime > 0) {
      stats.latencyHow = 'program-date-time';
      return (Date.now() - t0) / 1000 - video.currentTime;
    }
    const r = video.seekable && video.seekable.length ? video.seekable : video.buffered;
    if (!r || r.length === 0) return null;
    const edge = r.end(r.length - 1) - video.currentTime;
    // A player whose range ends where it plays tells nothing of its own
    // distance: then only the segment's age is known, a lower bound.
    if (edge < 0.05) {
      stats.latencyHow = stats.edgeAge === null ? null : 'segment-age';
      return stats.edgeAge;
    }
    stats.latencyHow = stats.edgeAge === null ? 'player' : 'player+segment-age';
    return edge + (stats.edgeAge || 0);
  }

  // ---- the player -----------------------------------------------------------
  let player = null;
  let retryMs = 1000;
  let restartTimer = null;
  let lastProgress = { t: performance.now(), time: 0 };

  function supported() {
    return window.mpegts && mpegts.isSupported() && mpegts.getFeatureList().mseLivePlayback;
  }

  function nativeHls() {
    return typeof video.canPlayType === 'function' && video.canPlayType(HLS_TYPE) !== '';
  }

  // The playback path: Media Source or Managed Media Source when there is
  // one (mpegts.js picks), else the browser's own HLS player, else none.
  function choosePath() {
    if (supported()) return window.MediaSource ? 'mse' : 'managed';
    if (nativeHls()) return 'hls';
    return 'none';
  }
  // Short enough for a phone's figure; the full name on hover.
  const PATH_NAMES = { mse: 'MSE', managed: 'Managed', hls: 'HLS', none: 'none' };
  const PATH_TITLES = {
    mse: 'Media Source Extensions (mpegts.js)',
    managed: 'Managed Media Source (mpegts.js)',
    hls: 'the browser\'s own HLS player (/live.m3u8)',
    none: 'no way to play the stream here',
  };

  function setBadge(text, cls) {
    if (badge.textContent !== text) badge.textContent = text;
    badge.className = 'badge ' + cls;
  }

  function startPlayer() {
    stopPlayer();
    setBadge('connecting…', 'wait');
    if (stats.path === 'hls') {
      startHls();
      return;
    }
    player = mpegts.createPlayer(
      { type: 'mpegts', isLive: true, url: '/stream.ts?client=' + token },
      {
        enableWorker: false,
        enableStashBuffer: false, // hand every byte to MSE as it arrives
        isLive: true,
        lazyLoad: false,
        liveBufferLatencyChasing: true, // hard jump when far behind
        liveBufferLatencyMaxLatency: 1.2,
        liveBufferLatencyMinRemain: 0.3,
        liveSync: true, // gentle catch-up by playback rate before that
        liveSyncMaxLatency: 0.7,
        liveSyncTargetLatency: 0.35,
        liveSyncPlaybackRate: 1.2,
        autoCleanupSourceBuffer: true,
        autoCleanupMaxBackwardDuration: 20,
        autoCleanupMinBackwardDuration: 10,
      },
    );
    player.on(mpegts.Events.ERROR, (type, detail) => {
      stats.errors++;
      stats.lastError = type + ': ' + detail;
      scheduleRestart('error: ' + detail);
    });
    player.on(mpegts.Events.LOADING_COMPLETE, () => scheduleRestart('stream ended'));
    player.attachMediaElement(video);
    player.load();
    play();
    lastProgress = { t: performance.now(), time: video.currentTime };
  }

  // The browser's own HLS player on the multivariant playlist: it picks the
  // rung itself among those running.
  function startHls() {
    player = { hls: true };
    video.src = '/live.m3u8';
    video.load();
    play();
    lastProgress = { t: performance.now(), time: video.currentTime };
  }
  video.addEventListener('error', () => {
    if (!player || !player.hls) return;
    const e = video.error;
    stats.errors++;
    stats.lastError = 'video error ' + (e ? e.code + (e.message ? ': ' + e.message : '') : '');
    scheduleRestart(stats.lastError);
  });
  video.addEventListener('ended', () => { if (player && player.hls) scheduleRestart('playlist ended'); });

  // The age of the newest segment end in the playlist the page would play:
  // the part of the delay the player cannot see. Read every 2 s while on HLS.
  async function readEdgeAge() {
    try {
      const master = await (await fetch('/live.m3u8', { cache: 'no-store' })).text();
      const uri = master.split('\n').find((l) => l && !l.startsWith('#'));
      if (!uri) return;
      const text = await (await fetch(uri.trim(), { cache: 'no-store' })).text();
      let date = null, dur = 0;
      for (const l of text.split('\n')) {
        if (l.startsWith('#EXT-X-PROGRAM-DATE-TIME:')) date = Date.parse(l.slice(25));
        else if (l.startsWith('#EXTINF:')) dur = parseFloat(l.slice(8));
      }
      if (isFinite(date)) stats.edgeAge = Math.max(0, (Date.now() - date) / 1000 - dur);
    } catch (e) {
      /* the next try */
    }
  }
  setInterval(() => { if (stats.path === 'hls' && !document.hidden) readEdgeAge(); }, 2000);

  function stopPlayer() {
    if (!player) return;
    if (player.hls) {
      player = null;
      video.removeAttribute('src');
      video.load();
      return;
    }
    try {
      player.pause();
      player.unload();
      player.detachMediaElement();
      player.destroy();
    } catch (e) {
      /* already torn down */
    }
    player = null;
  }

  function scheduleRestart(why) {
    if (restartTimer) return;
    stopPlayer();
    setBadge('reconnecting…', 'bad');
    restartTimer = setTimeout(() => {
      restartTimer = null;
      stats.restarts++;
      startPlayer();
    }, retryMs);
    retryMs = Math.min(retryMs * 2, 5000);
    console.log('livestreamd: restarting the player in', retryMs, 'ms:', why);
  }

  function play() {
    const p = video.play();
    if (p && p.catch) {
      p.then(() => { $('tap').hidden = true; }).catch((e) => {
        if (e && e.name === 'NotAllowedError') $('tap').hidden = false;
      });
    }
  }
  $('tap').addEventListener('click', () => { $('tap').hidden = true; video.muted = true; play(); });

  // Keep to the live edge and notice a stream that stopped moving.
  setInterval(() => {
    if (!player || document.hidden) return;
    const now = performance.now();
    const behind = latency();
    stats.latency = behind;
    const hls = !!player.hls;
    if (!hls && behind !== null && behind > MAX_BEHIND_S) {
      const b = video.buffered;
      video.currentTime = b.end(b.length - 1) - LAND_BEHIND_S;
      stats.jumps++;
    }
    if (hls && video.seekable.length) {
      const end = video.seekable.end(video.seekable.length - 1);
      if (end - video.currentTime > HLS_MAX_BEHIND_S) {
        video.currentTime = end - HLS_LAND_BEHIND_S;
        stats.jumps++;
      }
    }
    if (video.paused && (hls ? video.readyState >= 2 : behind !== null && behind > 0.1)) play();
    const stallMs = hls ? HLS_STALL_RESTART_MS : STALL_RESTART_MS;
    if (video.currentTime > lastProgress.time + 0.01) {
      lastProgress = { t: now, time: video.currentTime };
      retryMs = 1000;
      setBadge('LIVE', 'live');
    } else if (now - lastProgress.t > stallMs) {
      lastProgress = { t: now, time: video.currentTime };
      scheduleRestart('no progress for ' + stallMs + ' ms');
    }
  }, 250);

  // A phone that comes back from the background jumps straight to live.
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && player) {
      lastProgress = { t: performance.now(), time: video.currentTime };
      const b = player.hls ? video.seekable : video.buffered;
      const land = player.hls ? HLS_LAND_BEHIND_S : LAND_BEHIND_S;
      if (b.length) video.currentTime = Math.max(video.currentTime, b.end(b.length - 1) - land);
      play();
    }
  });

  // ---- live figures from /events --------------------------------------------
  let es = null;
  let lastEvent = 0;
  let ladder = [];
  let me = null; // address of our /stream.ts connection
  let camera = null;
  let prevOwn = null; // {t, bytes} for our receive rate
  const series = { rtt: [], rx: [], link: [], capacity: [], bitrate: [], rung: [] };

  function connectEvents() {
    if (es) es.close();
    es = new EventSource('/events?client=' + token);
    lastEvent = performance.now();
    const on = (name, fn) => es.addEventListener(name, (e) => {
      lastEvent = performance.now();
      try { fn(JSON.parse(e.data)); } catch (err) { console.warn('livestreamd: bad event', name, err); }
    });
    on('hello', (h) => {
      ladder = h.ladder || [];
      if (window.livestreamdDiag) window.livestreamdDiag.onLog(h.log);
      series.rung = [];
      series.bitrate = [];
      for (const p of h.history || []) {
        if (p.rung !== null && p.rung !== undefined) series.rung.push([p.t, p.rung]);
        if (p.bitrate_kbps) series.bitrate.push([p.t, p.bitrate_kbps / 1000]);
      }
    });
    on('status', onStatus);
    on('log', (l) => { if (window.livestreamdDiag) window.livestreamdDiag.onLog(l); });
    // The start rung's encoder, until the page knows its own viewer entry.
    on('rung', (r) => { if (!ownRung) showRung(r); });
    on('camera', (c) => { camera = c; });
    on('me', (m) => { me = m.address; prevOwn = null; });
    es.onerror = () => {
      // EventSource retries by itself unless the answer was not an event
      // stream (e.g. 503); then we start over after a pause.
      if (es.readyState === EventSource.CLOSED) setTimeout(connectEvents, 2000);
    };
  }
  // Status comes every second; silence means a half-open connection.
  setInterval(() => { if (performance.now() - lastEvent > 5000) connectEvents(); }, 1000);

  function push(arr, t, v) {
    arr.push([t, v]);
    const cut = t - WINDOW_MS;
    while (arr.length && arr[0][0] < cut) arr.shift();
  }

  function set(id, text, cls) {
    const el = $(id);
    if (el.textContent !== text) el.textContent = text;
    el.className = 'v' + (cls ? ' ' + cls : '');
  }

  const mbit = (bps) => (bps / 1e6).toFixed(bps < 1e7 ? 2 : 1) + ' Mbit/s';

  function showRung(e) {
    if (!e || e.rung === null || e.rung === undefined) {
      set('f-res', '–'); set('f-bitrate', '–'); set('f-rung', 'no encoder', 'bad');
      return;
    }
    set('f-res', e.width + '×' + e.height);
    const k = e.fps ? 'Picture · ' + e.fps + ' fps' : 'Picture';
    if ($('k-res').textContent !== k) $('k-res').textContent = k;
    set('f-bitrate', mbit(e.bitrate_kbps * 1000));
    const of = ladder.length ? ' of ' + ladder.length : '';
    const pending = e.pending_rung !== null && e.pending_rung !== undefined ? ' → ' + e.pending_rung : '';
    set('f-rung', e.rung + of + pending, e.rung === 0 ? 'ok' : 'warn');
  }

  const num = (x) => typeof x === 'number' && isFinite(x);

  // This phone's rung: its own viewer entry's, with the ladder's figures;
  // on HLS (no viewer entry: the player picks among the playlists) the rung
  // whose picture the video shows.
  let ownRung = null;
  function rungOf(s, own) {
    if (stats.path === 'hls' && video.videoHeight) {
      const i = ladder.findIndex((r) => r.width === video.videoWidth && r.height === video.videoHeight);
      if (i >= 0) return Object.assign({ rung: i, pending_rung: null }, ladder[i]);
    }
    if (own && num(own.rung) && ladder[own.rung]) {
      const r = ladder[own.rung];
      return {
        rung: own.rung, width: r.width, height: r.height, fps: r.fps, bitrate_kbps: r.bitrate_kbps,
        pending_rung: num(own.target_rung) ? own.target_rung : null,
      };
    }
    return s.encoder ? Object.assign({ pending_rung: null }, s.encoder) : null;
  }

  // The Pi has no clock of its own: while the daemon says it would take a
  // phone's, this page offers its clock, once.
  let clockOffered = false;
  function offerClock(s) {
    if (clockOffered || !s.clock || !s.clock.wants_phone) return;
    clockOffered = true;
    fetch('/clock?t=' + Date.now(), { method: 'POST' }).catch(() => {});
  }

  function onStatus(s) {
    offerClock(s);
    if (window.livestreamdDiag) window.livestreamdDiag.onStatus(s);
    const t = s.t || Date.now();
    const own = (s.viewers || []).find((v) => v.address === me);
    const e = rungOf(s, own);
    ownRung = own && num(own.rung) ? own.rung : null;
    showRung(e);
    if (e && e.rung !== null && e.rung !== undefined) {
      push(series.bitrate, t, e.bitrate_kbps / 1000);
      push(series.rung, t, e.rung);
    }

    // Camera and source: the camera's own state when the daemon drives one,
    // else the source's (video arriving or not).
    const cam = s.camera || (camera && camera.camera) || null;
    const src = s.source || {};
    const state = (cam && cam.state) || src.state || '–';
    let text = state;
    if (state === 'stalled' || src.state === 'stalled') {
      const since = cam && num(cam.stalled_since) ? Date.now() / 1000 - cam.stalled_since : src.last_packet_age_ms / 1000;
      text = 'lost ' + (num(since) ? Math.max(0, Math.round(since)) + ' s ago' : '');
    } else if (cam && cam.state && src.state && src.state !== 'live' && cam.state !== src.state) {
      text = cam.state + ' · ' + src.state;
    }
    const cls = state === 'live' ? 'ok' : /stalled|unreachable|stopped|refused/.test(state) ? 'bad' : 'warn';
    set('f-camera', text, cls);
    // What the camera is: its model when it said, else its API, else the kind configured.
    const what = cam && (cam.model || cam.api || (cam.kind !== 'udp' && cam.kind));
    const k = what ? 'Camera · ' + what : 'Camera';
    if ($('k-camera').textContent !== k) $('k-camera').textContent = k;
    set('f-viewers', String((s.viewers || []).length) + (s.http && s.http.max_viewers ? ' / ' + s.http.max_viewers : ''));

    // Our own viewer entry and its link figures (TCP_INFO, last second).
    const extra = [];
    if (own) {
      if (prevOwn && t > prevOwn.t && own.bytes_sent >= prevOwn.bytes) {
        const bps = ((own.bytes_sent - prevOwn.bytes) * 8 * 1000) / (t - prevOwn.t);
        set('f-rx', mbit(bps));
        push(series.rx, t, bps / 1e6);
      }
      prevOwn = { t, bytes: own.bytes_sent };
      const l = own.link;
      if (l && num(l.rtt_ms)) {
        const ms = l.rtt_ms;
        set('f-rtt', (ms < 10 ? ms.toFixed(1) : ms.toFixed(0)) + (num(l.rttvar_ms) ? ' ±' + l.rttvar_ms.toFixed(ms < 10 ? 1 : 0) : '') + ' ms',
          ms < 100 ? 'ok' : ms < 300 ? 'warn' : 'bad');
        push(series.rtt, t, ms);
      } else set('f-rtt', '–');
      if (l && num(l.loss_pct)) {
        set('f-loss', l.loss_pct.toFixed(1) + ' %', l.loss_pct < 1 ? 'ok' : l.loss_pct < 5 ? 'warn' : 'bad');
      } else set('f-loss', '–');
      if (l && num(l.throughput_kbps)) {
        set('f-rate', mbit(l.throughput_kbps * 1000));
        push(series.link, t, l.throughput_kbps / 1000);
      } else set('f-rate', '–');
      if (l && num(l.delivery_kbps) && l.delivery_kbps > 0) {
        push(series.capacity, t, l.delivery_kbps / 1000);
        extra.push('capacity ' + mbit(l.delivery_kbps * 1000));
      }
      if (l && num(l.notsent_bytes)) extra.push('unsent ' + Math.round(l.notsent_bytes / 1024) + ' KiB');
      if (num(own.lag_ms)) extra.push('server lag ' + own.lag_ms + ' ms');
      if (own.skips) extra.push('skips ' + own.skips);
    } else {
      set('f-rx', '–');
    }
    if (stats.path === 'hls') extra.push('HLS: the player picks its rung; its link is not measured');
    const a = own && own.adapt ? own.adapt : s.adapt;
    if (a) {
      extra.push('quality: ' + (a.mode || 'auto') + (num(a.switching_to) ? ' → rung ' + a.switching_to : ''));
      if (a.last_reason) extra.push('last change: ' + a.last_reason);
    }
    $('f-link-extra').textContent = extra.join(' · ');
    const lat = latency();
    showLatency(lat);
    draw();
  }

  // The latency figure, labelled with what it is made of.
  const LATENCY_KEYS = {
    buffer: 'Behind live',
    'program-date-time': 'Behind live · by date',
    'player+segment-age': 'Behind live · ≈',
    player: 'Behind live · ≥',
    'segment-age': 'Behind live · ≥',
  };
  function showLatency(lat) {
    const hls = stats.path === 'hls';
    // HLS is seconds behind by design (whole segments): judged by its own scale.
    const [good, fair] = hls ? [4, 8] : [1, 1.5];
    set('f-latency', lat === null ? '–' : lat.toFixed(2) + ' s', lat === null ? '' : lat < good ? 'ok' : lat < fair ? 'warn' : 'bad');
    const k = LATENCY_KEYS[stats.latencyHow] || 'Behind live';
    if ($('k-latency').textContent !== k) $('k-latency').textContent = k;
  }

  // ---- graphs -----------------------------------------------------------
  function chart(canvas, lines, opts) {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (!w || !h) return;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    const c = canvas.getContext('2d');
    c.setTransform(dpr, 0, 0, dpr, 0, 0);
    c.clearRect(0, 0, w, h);
    // The window grows with the data, from one minute up to WINDOW_MS.
    const now = Date.now();
    let oldest = now;
    for (const l of lines) if (l.points.length && l.points[0][0] < oldest) oldest = l.points[0][0];
    const span = Math.min(WINDOW_MS, Math.max(60000, now - oldest));
    const t0 = now - span;
    let max = opts.max || 0;
    let min = opts.min || 0;
    for (const l of lines) for (const [, v] of l.points) { if (v > max) max = v; if (v < min) min = v; }
    if (max <= min) max = min + 1;
    const padL = 34, padB = 12, padT = 4;
    const x = (t) => padL + ((t - t0) / span) * (w - padL - 2);
    const yr = (v) => (opts.invert ? (v - min) / (max - min) : 1 - (v - min) / (max - min));
    const y = (v) => padT + yr(v) * (h - padT - padB);
    c.font = '10px system-ui, sans-serif';
    c.fillStyle = '#8a8a8a';
    c.strokeStyle = '#333';
    c.lineWidth = 1;
    c.beginPath();
    for (const v of opts.ticks ? opts.ticks(min, max) : [min, (min + max) / 2, max]) {
      c.moveTo(padL, y(v) + 0.5); c.lineTo(w, y(v) + 0.5);
      c.fillText(opts.label ? opts.label(v) : fmt(v), 2, y(v) + 3);
    }
    c.stroke();
    c.fillText('-' + (span >= 120000 ? Math.round(span / 60000) + ' min' : Math.round(span / 1000) + ' s'), padL, h - 1);
    c.fillText('now', w - 22, h - 1);
    for (const l of lines) {
      const pts = l.points.filter(([t]) => t >= t0 - 5000);
      if (!pts.length) continue;
      c.strokeStyle = l.color;
      c.lineWidth = 1.5;
      c.setLineDash(l.dash ? [4, 3] : []);
      c.beginPath();
      pts.forEach(([t, v], i) => {
        const px = Math.max(padL, x(t)), py = y(v);
        if (i === 0) c.moveTo(px, py);
        else if (l.step) { c.lineTo(px, y(pts[i - 1][1])); c.lineTo(px, py); } else c.lineTo(px, py);
      });
      if (l.step) c.lineTo(x(now), y(pts[pts.length - 1][1]));
      c.stroke();
    }
    c.setLineDash([]);
    if (lines.every((l) => !l.points.length)) {
      c.fillStyle = '#666';
      c.fillText(opts.empty || 'no data yet', padL + 8, h / 2);
    }
  }
  const fmt = (v) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(0) : v.toFixed(1));

  function draw() {
    chart($('g-rtt'), [{ points: series.rtt, color: '#5ac8fa' }], { empty: 'no link figures from the server yet' });
    chart($('g-rate'), [
      { points: series.rx, color: '#34c759' },
      { points: series.link, color: '#5ac8fa' },
      { points: series.capacity, color: '#bf5af2' },
      { points: series.bitrate, color: '#ffcc00', dash: true, step: true },
    ], {});
    const n = Math.max(ladder.length, 1);
    chart($('g-rung'), [{ points: series.rung, color: '#ff9f0a', step: true }], {
      min: 0,
      max: n - 1 || 1,
      invert: true,
      ticks: () => ladder.length ? ladder.map((_, i) => i) : [0],
      label: (v) => (ladder[v] ? ladder[v].height + 'p' : String(v)),
    });
  }
  window.addEventListener('resize', draw);

  // ---- start --------------------------------------------------------------
  connectEvents();
  stats.path = choosePath();
  set('f-path', PATH_NAMES[stats.path], stats.path === 'none' ? 'bad' : '');
  $('f-path').title = PATH_TITLES[stats.path];
  if (stats.path !== 'none') {
    startPlayer();
  } else {
    $('nomse').hidden = false;
    setBadge('no player', 'bad');
  }
})();
