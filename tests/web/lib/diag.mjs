// The diagnosis panel, in any engine: with a daemon of its own whose output
// URL holds a secret and cannot connect, the panel shows the warnings it
// causes with the secret masked, the camera's state, what it knows of the
// network, this phone in the phones table, and QR codes that an independent
// decoder (zbarimg) reads back as the page's address and a Wi-Fi login.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ARTIFACTS, Daemon } from './daemon.mjs';
import { waitFor } from './checks.mjs';

const SECRET = 'SECRETKEY4711';

// The text a QR code drawn on a canvas (a data: URL) holds, read by zbarimg.
function decodeQr(dataUrl, file) {
  fs.writeFileSync(file, Buffer.from(dataUrl.replace(/^data:image\/png;base64,/, ''), 'base64'));
  return execFileSync('zbarimg', ['--raw', '-q', '-Sbinary', file]).toString('utf8').replace(/\n$/, '');
}

export async function diagnosis(ctx) {
  const { page, engine, report } = ctx;
  const d = await new Daemon(`${engine}-diag`, undefined,
    `[[output]]\nurl = "rtmp://127.0.0.1:1/live/${SECRET}"\n`).setup();
  // The image's network status file, as livestream-net writes it (docs/IMAGES.md).
  const network = {
    version: 1,
    access_point: {
      state: 'up', mode: 'own-chip', interface: 'wlan0', ssid: 'Café;Pi "1"', password: 'pa:ss,wörd\\', channel: 6,
      why: 'the camera is on USB: the Pi\'s own Wi-Fi serves the phones',
    },
    address: '192.168.4.1',
    short_name: 'livestream.lan',
    page: 'http://livestream.lan/',
    page_by_address: 'http://192.168.4.1:8080/',
    problems: ["/boot/firmware/livestream-network.txt line 3: unknown setting 'CAMERA_SSDI'; ignored"],
  };
  d.env.LIVESTREAMD_NETWORK_FILE = path.join(d.tmp, 'network.json');
  fs.writeFileSync(d.env.LIVESTREAMD_NETWORK_FILE, JSON.stringify(network));
  d.start();
  try {
    await d.waitHealthy();
    await page.goto(`${d.url}/#diag`);
    const shown = await waitFor('the panel to show the output\'s warnings', async () => {
      const x = await page.evaluate(() => ({
        open: document.getElementById('diag').open,
        count: document.getElementById('d-count').textContent,
        log: document.getElementById('d-log').innerText,
        camera: document.getElementById('d-camera').innerText,
        network: document.getElementById('d-network').innerText,
        phones: document.getElementById('d-phones').rows.length,
        verdict: document.getElementById('d-verdict').innerText,
        body: document.body.innerText,
        qrPage: document.getElementById('qr-page').dataset.text || null,
        qrWifi: document.getElementById('q-wifi').hidden ? null : document.getElementById('qr-wifi').dataset.text,
      }));
      return { ...x, ok: x.open && /rtmp:\/\/127\.0\.0\.1:1\/live\/\*\*\*/.test(x.log) && /Output/.test(x.verdict) && x.phones >= 1 && /live/.test(x.camera) };
    }, 45000);
    console.log(`${engine}: diagnosis: ${shown.count}; camera ${JSON.stringify(shown.camera)}; network ${JSON.stringify(shown.network)}; verdict ${JSON.stringify(shown.verdict)}`);
    assert.match(shown.count, /warnings/);
    assert.ok(!shown.body.includes(SECRET), 'the output\'s secret is on the page');
    const raw = await (await fetch(`${d.url}/log`)).text();
    assert.ok(!raw.includes(SECRET), 'the secret is in /log');
    assert.match(shown.log, /Connection refused/);
    // What is wrong, in words: the output that cannot connect, masked.
    assert.match(shown.verdict, /Output rtmp:\/\/127\.0\.0\.1:1\/live\/\*\*\*/);
    // The network: shown from /status `network` where the daemon reads the
    // image's file (src/network.rs), else said to be unreported.
    const status = await (await fetch(`${d.url}/status`)).json();
    let networkShown;
    if ('network' in status) {
      assert.match(shown.network, /Pi's own Wi-Fi serves the phones/);
      assert.match(shown.network, /livestream\.lan/);
      // What was wrong in the user's file, in the verdict list.
      assert.match(shown.verdict, /Network: .*line 3: unknown setting 'CAMERA_SSDI'/);
      assert.equal(shown.qrPage, network.page);
      const wifiPng = await page.evaluate(() => document.getElementById('qr-wifi').toDataURL('image/png'));
      const want = 'WIFI:T:WPA;S:Café\\;Pi \\"1\\";P:pa\\:ss\\,wörd\\\\;;';
      assert.equal(shown.qrWifi, want);
      assert.equal(decodeQr(wifiPng, path.join(ARTIFACTS, `web-${engine}-qr-ap.png`)), want);
      networkShown = 'network from /status (access point, why, short name, a problem in the settings file), Wi-Fi QR read back';
    } else {
      assert.match(shown.network, /not reported/);
      assert.equal(shown.qrPage, `${d.url}/`);
      networkShown = 'no network in /status: said so';
    }
    fs.writeFileSync(path.join(ARTIFACTS, `web-${engine}-diag.png`), await page.screenshot());

    // The page's QR code and a Wi-Fi login, read back by another decoder.
    const pageQr = await page.evaluate(() => document.getElementById('qr-page').toDataURL('image/png'));
    assert.equal(decodeQr(pageQr, path.join(ARTIFACTS, `web-${engine}-qr-page.png`)), shown.qrPage);
    const wifi = await page.evaluate(() => {
      const c = document.createElement('canvas');
      const text = window.livestreamdDiag.wifiText('Café;Pi "1"', 'pa:ss,wörd\\');
      window.livestreamdDiag.drawQr(c, text);
      return { text, png: c.toDataURL('image/png') };
    });
    assert.equal(wifi.text, 'WIFI:T:WPA;S:Café\\;Pi \\"1\\";P:pa\\:ss\\,wörd\\\\;;');
    assert.equal(decodeQr(wifi.png, path.join(ARTIFACTS, `web-${engine}-qr-wifi.png`)), wifi.text);
    report.pass('diagnosis panel', `${shown.count}, secret masked, camera shown, ${networkShown}; QR codes read back by zbarimg`);
  } finally {
    await d.cleanup();
  }
}
