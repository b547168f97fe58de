// Helper processes (Xvfb, WebKitWebDriver) in process groups of their own,
// killed with their whole group when the test ends, however it ends.

import { spawn } from 'node:child_process';

const groups = new Set();
const children = new Set();

function killGroup(pid, signal) {
  try { process.kill(-pid, signal); } catch { /* already gone */ }
}

process.on('exit', () => {
  for (const pid of groups) killGroup(pid, 'SIGKILL');
  for (const child of children) child.kill('SIGKILL');
});

// A plain child (the daemon) that must not outlive this process either.
export function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}
for (const [sig, n] of [['SIGINT', 2], ['SIGTERM', 15], ['SIGHUP', 1]]) {
  process.once(sig, () => process.exit(128 + n)); // 'exit' above kills the groups
}

// Like spawn(), but detached into a new process group that stop() ends.
export function spawnGroup(cmd, args, opts = {}) {
  const child = spawn(cmd, args, { ...opts, detached: true });
  groups.add(child.pid);
  child.exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
  child.stop = async () => {
    if (!groups.has(child.pid)) return;
    killGroup(child.pid, 'SIGTERM');
    const t = setTimeout(() => killGroup(child.pid, 'SIGKILL'), 5000);
    await child.exited;
    clearTimeout(t);
    killGroup(child.pid, 'SIGKILL'); // what the leader left behind
    groups.delete(child.pid);
  };
  return child;
}

// A virtual X display for engines that need one: Xvfb picks a free display
// number and writes it to a pipe (-displayfd).
export async function startXvfb(log) {
  const x = spawnGroup('Xvfb', ['-displayfd', '3', '-screen', '0', '1280x1024x24', '-nolisten', 'tcp', '-noreset'], {
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
