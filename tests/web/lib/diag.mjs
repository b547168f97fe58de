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
    // This daemon has no network module's file: the panel says so rather than guess.
    assert.match(shown.network, /not reported/);
    fs.writeFileSync(path.join(ARTIFACTS, `web-${engine}-diag.png`), await page.screenshot());

    // The QR codes, read back by another decoder.
    assert.equal(shown.qrPage, `${d.url}/`);
    const pageQr = await page.evaluate(() => document.getElementById('qr-page').toDataURL('image/png'));
    assert.equal(decodeQr(pageQr, path.join(ARTIFACTS, `web-${engine}-qr-page.png`)), `${d.url}/`);
    const wifi = await page.evaluate(() => {
      const c = document.createElement('canvas');
      const text = window.livestreamdDiag.wifiText('Café;Pi "1"', 'pa:ss,wörd\\');
      window.livestreamdDiag.drawQr(c, text);
      return { text, png: c.toDataURL('image/png') };
    });
    assert.equal(wifi.text, 'WIFI:T:WPA;S:Café\\;Pi \\"1\\";P:pa\\:ss\\,wörd\\\\;;');
    assert.equal(decodeQr(wifi.png, path.join(ARTIFACTS, `web-${engine}-qr-wifi.png`)), wifi.text);
    report.pass('diagnosis panel', `${shown.count}, secret masked, camera and network shown, both QR codes read back by zbarimg`);
  } finally {
    await d.cleanup();
  }
}
