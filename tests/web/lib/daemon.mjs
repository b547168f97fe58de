// The daemon the browsers look at: `livestreamd demo` on loopback ports of its
// own, with a two-rung ladder, started, frozen, stopped and restarted by the
// tests. Shared by every engine's test and by the benchmark.

import fs from 'node:fs';
import net from 'node:net';
import dgram from 'node:dgram';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnOwned } from './procs.mjs';

export const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const repo = path.resolve(here, '..', '..');
export const ARTIFACTS = path.join(repo, 'artifacts');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function freeTcpPort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

function freeUdpPort() {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

// The rungs, best first (the demo camera sends 640x360 at 30 fps).
export const LADDER = [
  { width: 640, height: 360, fps: 30, bitrate_kbps: 800 },
  { width: 426, height: 240, fps: 15, bitrate_kbps: 300 },
];

export class Daemon {
  // name: used for the log file (artifacts/web-NAME-daemon.log).
  // extra: more configuration, appended to the file.
  constructor(name, bin = process.env.LIVESTREAMD_BIN || path.join(repo, 'target', 'debug', 'livestreamd'), extra = '') {
    this.name = name;
    this.extra = extra;
    // More environment for the daemon (e.g. LIVESTREAMD_NETWORK_FILE).
    this.env = {};
    this.bin = bin;
    this.child = null;
  }

  async setup() {
    if (!fs.existsSync(this.bin)) throw new Error(`${this.bin} is missing: run cargo build first`);
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), `livestreamd-web-${this.name}-`));
    this.port = await freeTcpPort();
    const udp = await freeUdpPort();
    this.url = `http://127.0.0.1:${this.port}`;
    this.config = path.join(this.tmp, 'livestreamd.toml');
    this.log = path.join(ARTIFACTS, `web-${this.name}-daemon.log`);
    fs.writeFileSync(this.log, '');
    fs.writeFileSync(this.config, `[source]
url = "udp://127.0.0.1:${udp}"
[encoder]
preset = "ultrafast"
${LADDER.map((r) => `[[ladder]]\nwidth = ${r.width}\nheight = ${r.height}\nfps = ${r.fps}\nbitrate_kbps = ${r.bitrate_kbps}\n`).join('')}[server]
listen = "127.0.0.1:${this.port}"
max_viewers = 4
${this.extra}`);
    return this;
  }

  start() {
    const log = fs.openSync(this.log, 'a');
    const child = spawnOwned(this.bin, ['demo', '--config', this.config, '--size', '640x360', '--fps', '30'], {
      stdio: ['ignore', log, log],
      env: { ...process.env, ...this.env },
    }, 10000);
    fs.closeSync(log);
    this.child = child;
    return this;
  }

  get running() {
    return this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  async stop() {
    if (this.child) await this.child.stop();
  }

  // The connection stays open but nothing arrives, as over a dead Wi-Fi link.
  async freeze(ms) {
    this.child.kill('SIGSTOP');
    try { await sleep(ms); } finally { this.child.kill('SIGCONT'); }
  }

  async waitHealthy(ms = 30000) {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      try {
        const r = await fetch(`${this.url}/healthz`);
        if (r.status === 200) return;
      } catch { /* not listening yet */ }
      if (!this.running) break;
      await sleep(200);
    }
    throw new Error('livestreamd did not become healthy:\n' + fs.readFileSync(this.log, 'utf8'));
  }

  async cleanup() {
    await this.stop();
    if (this.tmp) fs.rmSync(this.tmp, { recursive: true, force: true });
  }
}
