// A small client for classic WebDriver over HTTP (the W3C protocol), enough
// to drive WebKitGTK's MiniBrowser through Debian's WebKitWebDriver: new
// session, navigate, execute script, window size, screenshot, end session.

import fs from 'node:fs';
import { freeTcpPort, sleep } from './daemon.mjs';
import { spawnOwned, startXvfb } from './procs.mjs';

export const WEBKIT_DRIVER = process.env.WEBKIT_WEBDRIVER || '/usr/bin/WebKitWebDriver';

class WebDriverError extends Error {}

async function call(base, method, route, body) {
  const r = await fetch(base + route, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json; charset=utf-8' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await r.json();
  if (!r.ok || (json.value && json.value.error)) {
    const v = json.value || {};
    throw new WebDriverError(`${method} ${route}: ${v.error || r.status}: ${v.message || JSON.stringify(json)}`);
  }
  return json.value;
}

export class WebDriverSession {
  constructor(base, id, capabilities) {
    this.base = base;
    this.id = id;
    this.capabilities = capabilities;
  }

  cmd(method, route, body) {
    return call(this.base, method, `/session/${this.id}${route}`, body);
  }

  goto(url) { return this.cmd('POST', '/url', { url }); }

  // Runs fn(arg) in the page and returns its (awaited) JSON-able result.
  evaluate(fn, arg) {
    return this.cmd('POST', '/execute/sync', {
      script: `return (${fn.toString()}).apply(null, arguments);`,
      args: arg === undefined ? [] : [arg],
    });
  }

  setWindowSize(width, height) { return this.cmd('POST', '/window/rect', { width, height }); }

  async screenshot() { return Buffer.from(await this.cmd('GET', '/screenshot'), 'base64'); }

  close() { return this.cmd('DELETE', ''); }
}

// Starts Xvfb and WebKitWebDriver, then a MiniBrowser session; `env` is
// added to the driver's environment (the browser inherits it).
// Returns { session, stop }.
export async function launchWebKit({ logName, args = [], env = {} }) {
  const log = fs.openSync(logName, 'a');
  const xvfb = await startXvfb(log);
  const port = await freeTcpPort();
  const driver = spawnOwned(WEBKIT_DRIVER, [`--port=${port}`], {
    stdio: ['ignore', log, log],
    env: { ...process.env, ...env, DISPLAY: xvfb.display },
  });
  fs.closeSync(log);
  const stop = async () => { await driver.stop(); await xvfb.stop(); };
  try {
    const base = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 20000;
    for (;;) {
      try {
        if ((await call(base, 'GET', '/status')).ready) break;
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`WebKitWebDriver did not answer on ${base}: ${e.message}`);
      }
      await sleep(100);
    }
    const value = await call(base, 'POST', '/session', {
      capabilities: { alwaysMatch: { 'webkitgtk:browserOptions': { args: ['--automation', ...args] } } },
    });
    const session = new WebDriverSession(base, value.sessionId, value.capabilities);
    return {
      session,
      stop: async () => {
        try { await session.close(); } catch { /* the browser is already gone */ }
        await stop();
      },
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
