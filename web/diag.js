// livestreamd's diagnosis panel: what a person with only a phone needs to
// tell what is wrong. It shows, from /events, the recent warnings and errors
// (the daemon keeps them, secrets masked), the camera link, the network the
// image set up (access point, why, name, password, the page's address) and
// each phone; and QR codes for the next phone: the Wi-Fi and the page.
// Fields that the daemon does not report are left out, not guessed.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const LOG_LINES = 60; // the newest lines kept on the page
  const log = new Map(); // id -> line
  let counts = { warnings: 0, errors: 0, dropped: 0 };

  const text = (el, t) => { if (el.textContent !== t) el.textContent = t; };
  const isNum = (x) => typeof x === 'number' && isFinite(x);
  const scalar = (v) => v !== null && v !== undefined && typeof v !== 'object' && v !== '';
  // Keys never shown from a generic object, whatever it carries.
  const SECRET = /pass|psk|secret|token|key/i;

  // ---- the log --------------------------------------------------------------
  function onLog(snap) {
    if (!snap) return;
    for (const l of snap.lines || []) log.set(l.id, l);
    const ids = Array.from(log.keys()).sort((a, b) => a - b);
    for (const id of ids.slice(0, Math.max(0, ids.length - LOG_LINES))) log.delete(id);
    counts = { warnings: snap.warnings || 0, errors: snap.errors || 0, dropped: snap.dropped || 0 };
    drawLog();
  }

  function clock(t) {
    const d = new Date(t * 1000);
    const two = (n) => String(n).padStart(2, '0');
    return two(d.getHours()) + ':' + two(d.getMinutes()) + ':' + two(d.getSeconds());
  }

  function drawLog() {
    const ol = $('d-log');
    const lines = Array.from(log.values()).sort((a, b) => b.id - a.id);
    ol.replaceChildren(...lines.map((l) => {
      const li = document.createElement('li');
      li.className = l.level === 'ERROR' ? 'bad' : 'warn';
      const when = document.createElement('time');
      when.textContent = clock(l.t);
      const what = document.createElement('span');
      what.textContent = l.message + (l.repeats > 1 ? ' (×' + l.repeats + ')' : '');
      const who = document.createElement('small');
      who.textContent = (l.target || '').replace(/^livestreamd::/, '');
      li.append(when, ' ', what, ' ', who);
      return li;
    }));
    if (!lines.length) {
      const li = document.createElement('li');
      li.className = 'ok';
      li.textContent = 'No warnings or errors since the daemon started.';
      ol.append(li);
    }
    const n = counts.warnings + counts.errors;
    text($('d-count'), n ? counts.errors + ' errors · ' + counts.warnings + ' warnings' : 'no warnings');
    $('d-count').className = counts.errors ? 'bad' : n ? 'warn' : 'ok';
    text($('d-log-note'), counts.dropped ? counts.dropped + ' older lines no longer kept' : '');
  }

  // ---- facts ----------------------------------------------------------------
  // Known fields first, with their labels; then any other plain field the
  // daemon adds, under its own name (secrets never).
  // The names /status uses (camera: src/status.rs; network: the image's
  // /run/livestream/network.json, docs/IMAGES.md).
  const CAMERA_LABELS = [
    ['state', 'State'], ['reason', 'Why'], ['model', 'Model'], ['firmware', 'Firmware'],
    ['api', 'API'], ['api_version', 'API version'], ['address', 'Address'], ['transport', 'Link'],
    ['found_by', 'Found by'], ['mode', 'Mode'], ['mode_reason', 'Mode, why'], ['codec', 'Codec'],
    ['last_error', 'Last error'], ['last_answer', 'Last answer'], ['kind', 'Configured kind'],
  ];
  const NETWORK_LABELS = [
    ['access_point', 'Access point'], ['page', 'Page'], ['short_name', 'Short name'],
    ['page_by_address', 'Page by address'], ['address', 'Pi\'s address'], ['camera', 'Camera link'],
    ['camera_link', 'Camera link'], ['problems', 'Problems in livestream-network.txt'], ['state', 'State'],
  ];

  function facts(dl, obj, labels, allowed) {
    const rows = [];
    const seen = new Set();
    const add = (label, v) => rows.push([label, String(v)]);
    if (obj && typeof obj === 'object') {
      for (const [k, label] of labels) {
        const v = obj[k];
        if (seen.has(k)) continue;
        seen.add(k);
        if (scalar(v) && (!SECRET.test(k) || allowed.includes(k))) add(label, v);
        else if (v && typeof v === 'object' && !Array.isArray(v)) {
          // e.g. access_point: { interface, why }
          for (const [k2, v2] of Object.entries(v)) if (scalar(v2) && !SECRET.test(k2)) add(label + ' · ' + k2, v2);
        }
      }
      // Other words the daemon adds (counters stay in /status and /metrics),
      // and lists: of words, one after another; of entries, how many.
      for (const [k, v] of Object.entries(obj)) {
        if (seen.has(k) || SECRET.test(k)) continue;
        const label = k.replace(/_/g, ' ');
        if (Array.isArray(v) && v.length) {
          add(label, v.every((x) => typeof x === 'string') ? v.join('; ') : v.length + ' entries');
        } else if (scalar(v) && typeof v !== 'number') add(label, v);
      }
    }
    dl.replaceChildren(...rows.flatMap(([k, v]) => {
      const dt = document.createElement('dt');
      dt.textContent = k;
      const dd = document.createElement('dd');
      dd.textContent = v;
      return [dt, dd];
    }));
    return rows.length;
  }

  // What is wrong, in words, most important first.
  function verdicts(s) {
    const out = [];
    const cam = s.camera || {};
    const src = s.source || {};
    if (cam.state && !/^(live|streaming)$/.test(cam.state)) {
      out.push(['bad', 'Camera ' + cam.state + (cam.reason || cam.last_error ? ': ' + (cam.reason || cam.last_error) : '')]);
    }
    if (src.state === 'stalled') out.push(['bad', 'No video from the camera for ' + Math.round((src.last_packet_age_ms || 0) / 1000) + ' s']);
    else if (src.state === 'waiting') out.push(['warn', 'Waiting for the camera\'s video (nothing has arrived yet)']);
    if (src.foreign_datagrams) out.push(['warn', src.foreign_datagrams + ' datagrams from another sender than the camera were dropped']);
    for (const e of s.encoders || []) {
      if (!isNum(e.pid)) out.push(['bad', 'Encoder for rung ' + e.rung + ' not running' + (e.last_exit ? ': ' + e.last_exit : '')]);
    }
    for (const o of s.outputs || []) {
      const err = o.push && (o.push.last_error || o.push.error);
      if (err) out.push(['warn', 'Output ' + o.url + ': ' + err]);
    }
    if (s.network === null) out.push(['warn', 'The network reports nothing (no network status file)']);
    const n = s.network || {};
    const ap = n.access_point;
    if (ap && typeof ap === 'object' && ap.state && ap.state !== 'up') {
      out.push(['bad', 'Access point ' + ap.state + (ap.why ? ': ' + ap.why : '')]);
    }
    for (const w of [].concat(n.warnings || [], n.errors || [], n.problems || [])) {
      out.push(['warn', 'Network: ' + (typeof w === 'string' ? w : JSON.stringify(w))]);
    }
    if (s.http && s.http.viewers_rejected) out.push(['warn', s.http.viewers_rejected + ' phones were turned away (full)']);
    const c = s.clock;
    if (c && c.set_by) out.push(['ok', 'Clock set from the ' + c.set_by + (c.from ? ' (' + c.from + ')' : '') + (isNum(c.step_s) ? ', moved ' + Math.round(c.step_s) + ' s' : '')]);
    else if (c && !c.synchronized) out.push(['warn', 'The Pi\'s clock is a guess (no camera or phone time yet): log times may be wrong']);
    if (!out.some(([cls]) => cls !== 'ok')) out.unshift(['ok', 'Nothing wrong seen']);
    return out;
  }

  function phones(s) {
    const tb = $('d-phones');
    const rows = (s.viewers || []).map((v) => {
      const l = v.link || {};
      const cells = [
        v.address || '–',
        isNum(v.rung) ? String(v.rung) : '–',
        isNum(l.rtt_ms) ? l.rtt_ms.toFixed(0) + ' ms' : '–',
        isNum(l.loss_pct) ? l.loss_pct.toFixed(1) + ' %' : '–',
        isNum(v.lag_ms) ? v.lag_ms + ' ms' : '–',
      ];
      const tr = document.createElement('tr');
      for (const c of cells) {
        const td = document.createElement('td');
        td.textContent = c;
        tr.append(td);
      }
      return tr;
    });
    tb.replaceChildren(...rows);
    text($('d-phones-note'), rows.length ? '' : 'No phone is watching /stream.ts now.');
  }

  // ---- QR codes ---------------------------------------------------------------
  const drawn = { wifi: null, page: null };

  // Wi-Fi QR text (the format phones' cameras read): special characters escaped.
  const wifiEscape = (s) => String(s).replace(/([\\;,:"])/g, '\\$1');
  function wifiText(ssid, password) {
    return 'WIFI:T:' + (password ? 'WPA' : 'nopass') + ';S:' + wifiEscape(ssid) + ';' +
      (password ? 'P:' + wifiEscape(password) + ';' : '') + ';';
  }

  function drawQr(canvas, data) {
    if (typeof qrcode !== 'function') return false;
    // Names and passwords may be any text: bytes of UTF-8, as phones read them.
    qrcode.stringToBytes = qrcode.stringToBytesFuncs['UTF-8'];
    const qr = qrcode(0, 'M');
    qr.addData(data, 'Byte');
    qr.make();
    const n = qr.getModuleCount();
    const quiet = 4;
    const scale = Math.max(2, Math.floor(200 / (n + 2 * quiet)));
    const size = (n + 2 * quiet) * scale;
    canvas.width = size;
    canvas.height = size;
    const c = canvas.getContext('2d');
    c.fillStyle = '#fff';
    c.fillRect(0, 0, size, size);
    c.fillStyle = '#000';
    for (let y = 0; y < n; y++) {
      for (let x = 0; x < n; x++) if (qr.isDark(y, x)) c.fillRect((x + quiet) * scale, (y + quiet) * scale, scale, scale);
    }
    canvas.dataset.text = data;
    return true;
  }

  // The page's own address for the next phone: the image's short name if it
  // has one, else its address, else what this phone used.
  function pageAddress(n) {
    for (const a of [n.page, n.page_by_address]) {
      if (typeof a === 'string' && /^https?:\/\/[^\s]+$/.test(a)) return a;
    }
    return location.origin + '/';
  }

  function qrs(s) {
    const n = s.network || {};
    const ap = (n.access_point && typeof n.access_point === 'object') ? n.access_point : n;
    const ssid = ap.ssid || n.ssid;
    const password = ap.password || n.password;
    const wifi = ssid ? wifiText(ssid, password) : null;
    if (wifi !== drawn.wifi) {
      drawn.wifi = wifi;
      $('q-wifi').hidden = !wifi;
      if (wifi) {
        drawQr($('qr-wifi'), wifi);
        text($('qr-wifi-cap'), 'Wi-Fi: ' + ssid + (password ? ' · password ' + password : ' · open'));
      }
    }
    const page = pageAddress(n);
    if (page !== drawn.page) {
      drawn.page = page;
      drawQr($('qr-page'), page);
      text($('qr-page-cap'), 'This page: ' + page);
    }
  }

  function onStatus(s) {
    const ul = $('d-verdict');
    ul.replaceChildren(...verdicts(s).map(([cls, t]) => {
      const li = document.createElement('li');
      li.className = cls;
      li.textContent = t;
      return li;
    }));
    const worst = verdicts(s)[0][0];
    $('diag').dataset.state = worst;
    const cam = Object.assign({}, s.camera || {});
    if (!cam.state && s.source) cam.state = s.source.state;
    facts($('d-camera'), cam, CAMERA_LABELS, []);
    const net = s.network;
    const shown = net && typeof net === 'object' ? facts($('d-network'), net, NETWORK_LABELS, ['password']) : 0;
    if (!shown) facts($('d-network'), { state: net === null ? 'not reported (no network status file)' : 'not reported by this daemon' }, NETWORK_LABELS, []);
    phones(s);
    qrs(s);
  }

  // A link to /#diag opens the panel.
  if (location.hash === '#diag') $('diag').open = true;

  window.livestreamdDiag = { onStatus, onLog, wifiText, drawQr };
})();
