// The three browser engines behind one small interface, so that every check
// runs the same way in each:
//   chromium  Debian's chromium, driven by playwright-core (CDP)
//   firefox   Debian's firefox-esr, driven by puppeteer-core over WebDriver BiDi
//   webkit    Debian's WebKitGTK MiniBrowser, driven by WebKitWebDriver
//             (classic WebDriver) on an Xvfb display
// None of them downloads a browser. A page has: name, label, version,
// goto(url), evaluate(fn, arg), screenshot() -> PNG Buffer, close(), notes
// (what this engine cannot do or show here), remarks (how it runs), and `raw` (the
// driver's own page object, for engine-specific checks).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ARTIFACTS } from './daemon.mjs';
import { launchWebKit, WEBKIT_DRIVER } from './webdriver.mjs';

export const ENGINES = ['chromium', 'firefox', 'webkit'];
export const PHONE = { width: 390, height: 844, deviceScaleFactor: 2 };

export const BINARIES = {
  chromium: process.env.CHROMIUM || '/usr/bin/chromium',
  firefox: process.env.FIREFOX || '/usr/bin/firefox-esr',
  webkit: WEBKIT_DRIVER,
};

// What a pass in each engine here does not show.
const NOT_HERE = {
  chromium: ['Chrome on an Android phone (hardware decoder, mobile power and memory limits)'],
  firefox: ['Firefox for Android (GeckoView)'],
  webkit: ['iOS Safari itself: WebKitGTK decodes through GStreamer, not Apple\'s media stack, and does not apply iOS\'s ' +
    'ManagedMediaSource policies (startstreaming/endstreaming under power or memory pressure)'],
};

const LABELS = {
  chromium: 'Chromium (playwright-core, CDP)',
  firefox: 'Firefox ESR (puppeteer-core, WebDriver BiDi)',
  webkit: 'WebKitGTK MiniBrowser (WebKitWebDriver, Xvfb)',
};

// Firefox must not reach out to the internet; puppeteer-core already turns
// off updates, safe browsing, health reports and add-on updates.
const FIREFOX_PREFS = {
  'app.update.auto': false,
  'app.update.enabled': false,
  'toolkit.telemetry.enabled': false,
  'toolkit.telemetry.unified': false,
  'toolkit.telemetry.server': '',
  'browser.ping-centre.telemetry': false,
  'network.captive-portal-service.enabled': false,
  'network.connectivity-service.enabled': false,
  'network.dns.disablePrefetch': true,
  'network.prefetch-next': false,
  'network.trr.mode': 5,
  'media.gmp-provider.enabled': false,
  'media.gmp-gmpopenh264.enabled': false,
  'browser.region.update.enabled': false,
  'browser.region.network.url': '',
  'extensions.systemAddon.update.enabled': false,
  'browser.aboutConfig.showWarning': false,
};

function forwardConsole(name) {
  return (type, text) => {
    if (type === 'error' || type === 'warning' || type === 'warn') console.log(`[${name} page]`, type, text);
  };
}

async function launchChromium(tmp) {
  const { chromium } = await import('playwright-core');
  const context = await chromium.launchPersistentContext(path.join(tmp, 'profile'), {
    executablePath: BINARIES.chromium,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    viewport: { width: PHONE.width, height: PHONE.height },
    deviceScaleFactor: PHONE.deviceScaleFactor,
  });
  const page = context.pages()[0] || (await context.newPage());
  const log = forwardConsole('chromium');
  page.on('console', (m) => log(m.type(), m.text()));
  page.on('pageerror', (e) => console.log('[chromium page error]', e.message));
  const ua = await page.evaluate(() => navigator.userAgent);
  return {
    version: 'Chromium ' + (/Chrome\/([\d.]+)/.exec(ua) || [, ua])[1],
    raw: page,
    context,
    goto: (url) => page.goto(url),
    evaluate: (fn, arg) => page.evaluate(fn, arg),
    screenshot: () => page.screenshot(),
    close: () => context.close(),
    notes: [],
  };
}

async function launchFirefox(tmp) {
  const puppeteer = (await import('puppeteer-core')).default;
  const browser = await puppeteer.launch({
    browser: 'firefox',
    protocol: 'webDriverBiDi',
    executablePath: BINARIES.firefox,
    headless: true,
    userDataDir: path.join(tmp, 'profile'),
    extraPrefsFirefox: FIREFOX_PREFS,
    env: { ...process.env, MOZ_CRASHREPORTER_DISABLE: '1', MOZ_DISABLE_AUTO_SAFE_MODE: '1' },
  });
  const page = (await browser.pages())[0] || (await browser.newPage());
  await page.setViewport(PHONE);
  const log = forwardConsole('firefox');
  page.on('console', (m) => log(m.type(), m.text()));
  page.on('pageerror', (e) => console.log('[firefox page error]', e.message));
  return {
    version: (await browser.version()).replace('firefox/', 'Firefox ESR '),
    raw: page,
    goto: (url) => page.goto(url),
    evaluate: (fn, arg) => page.evaluate(fn, arg),
    screenshot: async () => Buffer.from(await page.screenshot()),
    close: () => browser.close(),
    notes: [],
  };
}

// WebKitGTK lists HLS among the types its GStreamer backend plays only when
// this is set (GStreamerRegistryScanner; off by default, though Debian ships
// GStreamer's hlsdemux): set, the page's no-Media-Source path to native HLS
// can be exercised in Safari's engine family, as on an older iPhone.
export const WEBKIT_HLS_ENV = { WEBKIT_GST_ENABLE_HLS_SUPPORT: '1' };

async function launchWebKitEngine(name) {
  const { session, stop } = await launchWebKit({ logName: path.join(ARTIFACTS, `web-${name}-browser.log`), env: WEBKIT_HLS_ENV });
  // GTK keeps MiniBrowser's window (toolbar included) wider than a phone.
  const rect = await session.setWindowSize(PHONE.width, PHONE.height);
  const inner = await session.evaluate(() => [innerWidth, innerHeight, devicePixelRatio]);
  const notes = [];
  if (inner[0] !== PHONE.width) {
    notes.push(`viewport ${inner[0]}x${inner[1]} at ${inner[2]}x, not ${PHONE.width}x${PHONE.height} at ${PHONE.deviceScaleFactor}x: ` +
      `MiniBrowser's window cannot be narrower than ${rect.width} px and WebDriver cannot set the device pixel ratio`);
  }
  return {
    version: `WebKitGTK ${session.capabilities.browserVersion}`,
    raw: session,
    goto: (url) => session.goto(url),
    evaluate: (fn, arg) => session.evaluate(fn, arg),
    screenshot: () => session.screenshot(),
    close: stop,
    notes,
    remarks: ['MiniBrowser runs on an Xvfb display: WebKitGTK\'s MiniBrowser has no headless switch (that is WPE WebKit\'s)',
      'native HLS through GStreamer\'s hlsdemux is enabled with WEBKIT_GST_ENABLE_HLS_SUPPORT=1 (WebKitGTK leaves it off by default)'],
  };
}

// Launches `engine`; the result also has name and label.
export async function launch(engine) {
  if (!fs.existsSync(BINARIES[engine])) {
    throw new Error(`${BINARIES[engine]} is missing: run tests/web/run.sh, which installs it`);
  }
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `livestreamd-${engine}-`));
  let page;
  if (engine === 'chromium') page = await launchChromium(tmp);
  else if (engine === 'firefox') page = await launchFirefox(tmp);
  else if (engine === 'webkit') page = await launchWebKitEngine(engine);
  else throw new Error(`unknown engine ${engine}`);
  const close = page.close;
  page.close = async () => {
    try { await close(); } finally { fs.rmSync(tmp, { recursive: true, force: true }); }
  };
  page.notes.push(...NOT_HERE[engine]);
  return Object.assign(page, { name: engine, label: LABELS[engine], remarks: page.remarks || [] });
}
