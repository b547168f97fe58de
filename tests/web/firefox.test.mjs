// livestreamd's page in Debian's Firefox ESR, driven by puppeteer-core over
// WebDriver BiDi (no browser download): the checks every engine passes
// (lib/suite.mjs). Firefox has no ManagedMediaSource; it plays through
// MediaSource like Chromium. Without Media Source the page would turn to
// native HLS, which Firefox on the desktop does not have: it must say it has
// no player (and the test records that Firefox cannot play HLS).
import { check, engineSuite, MEASURE_S } from './lib/suite.mjs';
import { nativeHlsFallback } from './lib/hls.mjs';

const ctx = engineSuite('firefox');

check(ctx, 'firefox: with no Media Source the page turns to native HLS if the engine has it, else says it has no player', { timeout: 180000 }, async () => {
  await nativeHlsFallback(ctx, MEASURE_S);
});
