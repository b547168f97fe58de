// livestreamd's page in Debian's Firefox ESR, driven by puppeteer-core over
// WebDriver BiDi (no browser download): the checks every engine passes
// (lib/suite.mjs). Firefox has no ManagedMediaSource; it plays through
// MediaSource like Chromium.
import { engineSuite } from './lib/suite.mjs';

engineSuite('firefox');
