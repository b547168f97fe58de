// ffmpeg as an HLS client, for the benchmark: it plays /live.m3u8 and writes
// what it gets (timestamps kept) as MPEG-TS to a pipe; the same frames are
// watched arriving at a viewer of the daemon's own /stream.ts. How much later
// a frame comes out of ffmpeg than into that viewer is the HLS path's lag
// behind live as a client that does not wait for a playback clock sees it
// (ffmpeg writes a segment as soon as it has it): the floor under any HLS
// player's delay, which adds its own start offset and buffer.

import { spawn } from 'node:child_process';
import http from 'node:http';

const PACKET = 188;

// Video PTS of an MPEG-TS byte stream, as it arrives: PAT -> PMT -> the first
// H.264 stream's PES headers. onFrame(pts) for each frame start.
export class TsClock {
  constructor(onFrame) {
    this.onFrame = onFrame;
    this.rest = Buffer.alloc(0);
    this.pmt = null;
    this.video = null;
  }

  push(chunk) {
    let buf = this.rest.length ? Buffer.concat([this.rest, chunk]) : chunk;
    let i = 0;
    while (buf.length - i >= PACKET) {
      if (buf[i] !== 0x47) { i++; continue; }
      this.packet(buf.subarray(i, i + PACKET));
      i += PACKET;
    }
    this.rest = Buffer.from(buf.subarray(i));
  }

  packet(p) {
    const pid = ((p[1] & 0x1f) << 8) | p[2];
    const start = (p[1] & 0x40) !== 0;
    const afc = (p[3] >> 4) & 3;
    if (!(afc & 1) || !start) return;
    const off = afc & 2 ? 5 + p[4] : 4;
    const pl = p.subarray(off);
    if (pid === 0 || pid === this.pmt) {
      const s = pl.subarray(1 + pl[0]);
      const len = ((s[1] & 0x0f) << 8) | s[2];
      const end = Math.min(s.length, 3 + len) - 4;
      if (pid === 0 && s[0] === 0x00) {
        for (let j = 8; j + 4 <= end; j += 4) {
          const prog = (s[j] << 8) | s[j + 1];
          if (prog !== 0) { this.pmt = ((s[j + 2] & 0x1f) << 8) | s[j + 3]; break; }
        }
      } else if (s[0] === 0x02) {
        let j = 12 + (((s[10] & 0x0f) << 8) | s[11]);
        while (j + 5 <= end) {
          if (s[j] === 0x1b) { this.video = ((s[j + 1] & 0x1f) << 8) | s[j + 2]; break; }
          j += 5 + (((s[j + 3] & 0x0f) << 8) | s[j + 4]);
        }
      }
      return;
    }
    if (pid !== this.video || pl.length < 14 || pl[0] !== 0 || pl[1] !== 0 || pl[2] !== 1 || !(pl[7] & 0x80)) return;
    const b = pl.subarray(9, 14);
    const pts = (b[0] >> 1 & 7) * 2 ** 30 + b[1] * 2 ** 22 + (b[2] >> 1) * 2 ** 15 + b[3] * 2 ** 7 + (b[4] >> 1);
    this.onFrame(pts);
  }
}

// Reads /stream.ts: when each frame (PTS) first arrived. Returns { frames, close }.
export function liveEdge(url) {
  const frames = new Map();
  const clock = new TsClock((pts) => { if (!frames.has(pts)) frames.set(pts, performance.now()); });
  const req = http.get(`${url}/stream.ts`, (res) => res.on('data', (d) => clock.push(d)));
  req.on('error', () => {});
  return { frames, close: () => req.destroy() };
}

// ffmpeg playing `url` (an HLS playlist): [arrival ms, PTS] of each frame it writes.
export function ffmpegHls(url) {
  const out = [];
  const clock = new TsClock((pts) => out.push([performance.now(), pts]));
  const child = spawn('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-i', url,
    '-map', '0:v:0', '-c', 'copy', '-copyts', '-muxdelay', '0', '-muxpreload', '0',
    '-flush_packets', '1', '-f', 'mpegts', 'pipe:1'], { stdio: ['ignore', 'pipe', 'inherit'] });
  child.stdout.on('data', (d) => clock.push(d));
  return { frames: out, stop: () => child.kill('SIGKILL') };
}
