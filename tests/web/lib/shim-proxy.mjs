// A loopback HTTP proxy in front of the daemon that serves the page with a
// script put in before any of the page's own: it removes browser APIs, so an
// engine can be made to look like a phone that lacks them (an iPhone has
// ManagedMediaSource but no MediaSource; older iPhones have neither).
// WebDriver classic has no "run this script before the page" command; this
// does the same for every engine. Everything else is passed through as is.

import http from 'node:http';

const NO_MEDIA_SOURCE = 'delete window.MediaSource; delete window.ManagedMediaSource; delete window.WebKitMediaSource;';
// The video element says it cannot play HLS playlists.
const NO_HLS = '(function () { const can = HTMLMediaElement.prototype.canPlayType; ' +
  'HTMLMediaElement.prototype.canPlayType = function (t) { return /mpegurl/i.test(String(t)) ? \'\' : can.call(this, t); }; })();';

export const HIDE = {
  // iOS Safari 17.1 and later: only Managed Media Source.
  mediaSource: 'delete window.MediaSource;',
  // iOS before 17.1, many in-app and TV browsers: no Media Source at all
  // (they have native HLS instead).
  allMediaSource: NO_MEDIA_SOURCE,
  // Neither Media Source nor HLS: nothing the page can play with.
  everything: NO_MEDIA_SOURCE + ' ' + NO_HLS,
};

// Opens the daemon's page in `page` with the APIs `hide` removes, through a
// proxy of its own; fn() runs while it is open.
export async function withoutApis(page, daemonUrl, hide, fn) {
  const proxy = await startShimProxy(daemonUrl, hide);
  try {
    await page.goto(`${proxy.url}/`);
    return await fn(proxy);
  } finally {
    // Off the proxy's page first, so that it does not go on asking a closed port.
    await page.goto('about:blank').catch(() => {});
    await proxy.close();
  }
}

export function startShimProxy(upstream, shim) {
  const up = new URL(upstream);
  const server = http.createServer(async (req, res) => {
    if (req.method === 'GET' && req.url === '/') {
      try {
        const r = await fetch(new URL('/', up));
        const html = (await r.text()).replace('<head>', `<head>\n<script>${shim}</script>`);
        res.writeHead(r.status, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
        res.end(html);
      } catch (e) {
        res.writeHead(502).end(String(e));
      }
      return;
    }
    const out = http.request({
      host: up.hostname, port: up.port, method: req.method, path: req.url,
      headers: { ...req.headers, host: up.host },
    }, (r) => {
      res.writeHead(r.statusCode, r.headers);
      r.pipe(res);
    });
    out.on('error', (e) => { if (!res.headersSent) res.writeHead(502); res.end(String(e)); });
    res.on('close', () => out.destroy());
    req.pipe(out);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    resolve({
      url: `http://127.0.0.1:${server.address().port}`,
      close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }),
    });
  }));
}
