// Processes the tests start themselves (the daemon, Xvfb, WebKitWebDriver):
// each gets SIGKILL from the kernel if this node process dies however it dies
// (`setpriv --pdeathsig`, util-linux), stays in this process group (so that
// run.sh ends it with the group), and is killed on exit.

import { spawn } from 'node:child_process';

const owned = new Set();

process.on('exit', () => { for (const child of owned) child.kill('SIGKILL'); });
for (const [sig, n] of [['SIGINT', 2], ['SIGTERM', 15], ['SIGHUP', 1]]) {
  process.once(sig, () => process.exit(128 + n)); // 'exit' above kills them
}

// Like spawn(); the child has `exited` (a promise) and `stop()`: SIGTERM,
// then SIGKILL after graceMs.
export function spawnOwned(cmd, args, opts = {}, graceMs = 5000) {
  const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', cmd, ...args], opts);
  owned.add(child);
  child.exited = new Promise((r) => child.once('exit', (code, signal) => { owned.delete(child); r({ code, signal }); }));
  child.stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGCONT'); // in case it was left frozen
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await child.exited;
    clearTimeout(t);
  };
  return child;
}

// A virtual X display for engines that need one: Xvfb picks a free display
// number and writes it to a pipe (-displayfd).
export async function startXvfb(log) {
  const x = spawnOwned('Xvfb', ['-displayfd', '3', '-screen', '0', '1280x1024x24', '-nolisten', 'tcp', '-noreset'], {
    stdio: ['ignore', log, log, 'pipe'],
  });
  const display = await new Promise((resolve, reject) => {
    let out = '';
    x.stdio[3].on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(':' + out.trim());
    });
    x.once('exit', (code) => reject(new Error(`Xvfb exited (${code}) before it gave a display`)));
    setTimeout(() => reject(new Error('Xvfb gave no display in 20 s')), 20000);
  });
  x.display = display;
  return x;
}
