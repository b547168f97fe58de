//! The phone's side of a measurement: a player stand-in that reads a live
//! MPEG-TS stream (HTTP, chunked or not, or a bare TCP stream) from inside a
//! phone's network namespace and logs every video frame as it arrives — when
//! its first and last bytes came, its PTS, and the picture size from the SPS
//! in front of each keyframe. Nothing here asks the server what it sent: the
//! figures are what the phone got.

use super::netns::PhoneLink;
use livestreamd::media::ts::{Aligner, Demux, Kind, Packet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One video frame (one PES packet of the video PID) as it arrived.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    /// Seconds since the measurement's epoch when its first packet came.
    pub start: f64,
    /// … and its last packet (the frame is complete then).
    pub end: f64,
    /// 90 kHz.
    pub pts: u64,
    pub keyframe: bool,
    /// The picture size of the newest SPS (0 until one was seen).
    pub width: u32,
    pub height: u32,
    pub bytes: usize,
    /// Which connection (1, 2, … after reconnects) carried it.
    pub conn: u32,
}

impl Frame {
    pub fn pts_s(&self) -> f64 {
        self.pts as f64 / 90_000.0
    }
}

/// How much of a PES's elementary stream is searched for an SPS.
const SPS_SEARCH: usize = 1024;

/// Turns MPEG-TS bytes into frames: the camera's sender and every phone use it.
#[derive(Default)]
pub struct FrameParser {
    aligner: Aligner,
    demux: Demux,
    size: (u32, u32),
    /// The start of the current PES's elementary stream, while an SPS may still be in it.
    es: Option<Vec<u8>>,
    pub frames: Vec<Frame>,
    conn: u32,
}

impl FrameParser {
    /// The bytes that follow come on connection `conn`: nothing carries over
    /// but the picture size and the stream's PIDs.
    pub fn new_connection(&mut self, conn: u32) {
        self.conn = conn;
        self.aligner = Aligner::default();
        self.es = None;
    }

    /// Feeds bytes that arrived at `now` (seconds since the epoch).
    pub fn push(&mut self, bytes: &[u8], now: f64) {
        let packets = self.aligner.push(bytes);
        for pkt in packets.chunks_exact(188) {
            self.packet(pkt, now);
        }
    }

    fn packet(&mut self, pkt: &[u8], now: f64) {
        let Kind::Video { keyframe, pts } = self.demux.classify(pkt) else {
            return;
        };
        let p = Packet(pkt);
        let payload = p.payload();
        if p.unit_start() {
            let Some(pts) = pts else {
                self.es = None;
                return;
            };
            let es = payload
                .get(8)
                .and_then(|&h| payload.get(9 + usize::from(h)..))
                .unwrap_or(&[]);
            self.es = Some(es.to_vec());
            self.frames.push(Frame {
                start: now,
                end: now,
                pts,
                keyframe,
                width: self.size.0,
                height: self.size.1,
                bytes: pkt.len(),
                conn: self.conn,
            });
        } else if let Some(last) = self.frames.last_mut() {
            last.end = now;
            last.bytes += pkt.len();
            if let Some(es) = self.es.as_mut() {
                es.extend_from_slice(payload);
            }
        }
        let Some(es) = &self.es else { return };
        if let Some(size) = find_sps_size(es) {
            self.size = size;
            if let Some(last) = self.frames.last_mut() {
                (last.width, last.height) = size;
            }
            self.es = None;
        } else if es.len() >= SPS_SEARCH {
            self.es = None;
        }
    }
}

/// The picture size from the first complete SPS NAL unit in Annex B bytes.
pub fn find_sps_size(es: &[u8]) -> Option<(u32, u32)> {
    let mut i = 0;
    while i + 3 < es.len() {
        if es[i..i + 3] == [0, 0, 1] {
            if es[i + 3] & 0x1f == 7 {
                return sps_size(&es[i + 3..]);
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    None
}

/// Reads an H.264 RBSP bit by bit (emulation prevention bytes removed).
struct Bits {
    data: Vec<u8>,
    pos: usize,
}

impl Bits {
    fn new(nal: &[u8]) -> Bits {
        let mut data = Vec::with_capacity(nal.len());
        let mut zeros = 0;
        for &b in nal {
            if zeros >= 2 && b == 3 {
                zeros = 0;
                continue;
            }
            zeros = if b == 0 { zeros + 1 } else { 0 };
            data.push(b);
        }
        Bits { data, pos: 0 }
    }

    fn bit(&mut self) -> Option<u32> {
        let byte = self.data.get(self.pos / 8)?;
        let b = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(u32::from(b))
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0, |v, _| Some(v << 1 | self.bit()?))
    }

    /// Exp-Golomb, unsigned.
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some((1u32 << zeros) - 1 + self.bits(zeros)?)
    }

    /// Exp-Golomb, signed.
    fn se(&mut self) -> Option<i32> {
        let k = self.ue()? as i64;
        Some(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) } as i32)
    }
}

/// Width and height (after cropping) from an SPS NAL unit, header byte first
/// (ITU-T H.264 7.3.2.1.1).
pub fn sps_size(nal: &[u8]) -> Option<(u32, u32)> {
    let mut r = Bits::new(nal.get(1..)?);
    let profile = r.bits(8)?;
    r.bits(16)?; // constraint flags, level
    r.ue()?; // seq_parameter_set_id
    let mut chroma_format = 1;
    let mut separate_planes = false;
    if [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135].contains(&profile) {
        chroma_format = r.ue()?;
        if chroma_format == 3 {
            separate_planes = r.bit()? == 1;
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.bit()?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? == 1 {
            let lists = if chroma_format == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? == 1 {
                    let size = if i < 6 { 16 } else { 64 };
                    let (mut last, mut next) = (8i32, 8i32);
                    for _ in 0..size {
                        if next != 0 {
                            next = (last + r.se()? + 256) % 256;
                        }
                        if next != 0 {
                            last = next;
                        }
                    }
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?;
        }
        1 => {
            r.bit()?;
            r.se()?;
            r.se()?;
            for _ in 0..r.ue()? {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = r.ue()? + 1;
    let height_units = r.ue()? + 1;
    let frame_mbs_only = r.bit()?;
    if frame_mbs_only == 0 {
        r.bit()?; // mb_adaptive_frame_field_flag
    }
    r.bit()?; // direct_8x8_inference_flag
    let (mut left, mut right, mut top, mut bottom) = (0, 0, 0, 0);
    if r.bit()? == 1 {
        (left, right, top, bottom) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
    }
    let fields = 2 - frame_mbs_only;
    let (crop_x, crop_y) = match (separate_planes, chroma_format) {
        (true, _) | (false, 0) => (1, fields),
        (false, 1) => (2, 2 * fields),
        (false, 2) => (2, fields),
        _ => (1, fields),
    };
    let width = (width_mbs * 16).checked_sub(crop_x * (left + right))?;
    let height = (fields * height_units * 16).checked_sub(crop_y * (top + bottom))?;
    Some((width, height))
}

/// Undoes `Transfer-Encoding: chunked` (ffmpeg's `-listen` server sends it).
#[derive(Default)]
struct Dechunk {
    line: Vec<u8>,
    /// Data bytes left in the current chunk.
    left: usize,
    /// CR LF after a chunk's data still to skip.
    trailer: usize,
}

impl Dechunk {
    fn push(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        while !input.is_empty() {
            if self.left > 0 {
                let n = self.left.min(input.len());
                out.extend_from_slice(&input[..n]);
                self.left -= n;
                input = &input[n..];
                if self.left == 0 {
                    self.trailer = 2;
                }
            } else if self.trailer > 0 {
                let n = self.trailer.min(input.len());
                self.trailer -= n;
                input = &input[n..];
            } else {
                let b = input[0];
                input = &input[1..];
                if b != b'\n' {
                    self.line.push(b);
                    continue;
                }
                let text = String::from_utf8_lossy(&self.line).into_owned();
                let hex = text.split(';').next().unwrap_or("").trim();
                self.left = usize::from_str_radix(hex, 16).unwrap_or(0);
                self.line.clear();
            }
        }
    }
}

/// What the phone asks for: `path` over HTTP, or (None) a bare TCP stream.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub path: Option<String>,
}

/// Everything one phone saw.
#[derive(Default)]
pub struct PhoneLog {
    pub parser: FrameParser,
    /// Every body byte, when asked to keep them.
    pub bytes: Option<Vec<u8>>,
    /// (seconds since the epoch, what happened) for every connection attempt and end.
    pub events: Vec<(f64, String)>,
    /// Connections that delivered a response head (or, bare TCP, any byte).
    pub connections: u32,
}

impl PhoneLog {
    pub fn frames(&self) -> &[Frame] {
        &self.parser.frames
    }

    fn new_connection(&mut self) {
        self.connections += 1;
        self.parser.new_connection(self.connections);
    }
}

/// A thread that fills a shared value until it is told to stop.
pub struct Worker<T> {
    pub data: Arc<Mutex<T>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl<T: Default + Send + 'static> Worker<T> {
    /// Runs `work(data, stop)` on a thread; it should return soon after `stop` is set.
    pub fn start(
        data: T,
        work: impl FnOnce(Arc<Mutex<T>>, Arc<AtomicBool>) + Send + 'static,
    ) -> Worker<T> {
        let data = Arc::new(Mutex::new(data));
        let stop = Arc::new(AtomicBool::new(false));
        let (d, s) = (data.clone(), stop.clone());
        Worker {
            data,
            stop,
            thread: Some(std::thread::spawn(move || work(d, s))),
        }
    }

    /// Stops the thread and returns the value.
    pub fn finish(mut self) -> T {
        self.stop_thread();
        std::mem::take(&mut *self.data.lock().unwrap())
    }

    fn stop_thread(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl<T> Drop for Worker<T> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A player on a phone: connects from the phone's namespace, reads as fast
/// as its link allows, reconnects a second after the stream ends or a
/// connection fails, until it is dropped.
pub struct FrameClient(Worker<PhoneLog>);

impl FrameClient {
    pub fn start(
        link: &PhoneLink,
        target: Target,
        epoch: Instant,
        keep_bytes: bool,
    ) -> FrameClient {
        let log = PhoneLog {
            bytes: keep_bytes.then(Vec::new),
            ..PhoneLog::default()
        };
        let link = link.netns();
        FrameClient(Worker::start(log, move |l, s| {
            while !s.load(Ordering::Relaxed) {
                let at = epoch.elapsed().as_secs_f64();
                let outcome = match link.connect(target.addr, Duration::from_secs(2)) {
                    Ok(sock) => read_stream(sock, &target, epoch, &l, &s),
                    Err(e) => format!("connect: {e}"),
                };
                l.lock().unwrap().events.push((at, outcome));
                let retry = Instant::now() + Duration::from_secs(1);
                while Instant::now() < retry && !s.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }))
    }

    /// Whether a connection has been answered (or, bare TCP, made) yet.
    pub fn connected(&self) -> bool {
        self.0.data.lock().unwrap().connections > 0
    }

    /// A copy of the frames so far.
    pub fn frames(&self) -> Vec<Frame> {
        self.0.data.lock().unwrap().frames().to_vec()
    }

    /// Every body byte so far, if they are kept.
    pub fn bytes(&self) -> Vec<u8> {
        self.0
            .data
            .lock()
            .unwrap()
            .bytes
            .clone()
            .unwrap_or_default()
    }

    /// Stops reading (closing the connection) and returns the log.
    pub fn finish(self) -> PhoneLog {
        self.0.finish()
    }
}

/// One connection: the request, the response head, then the body until it
/// ends or the client stops. Returns how it ended.
fn read_stream(
    mut sock: TcpStream,
    target: &Target,
    epoch: Instant,
    log: &Mutex<PhoneLog>,
    stop: &AtomicBool,
) -> String {
    let _ = sock.set_read_timeout(Some(Duration::from_millis(200)));
    // Until the response head is complete (HTTP only).
    let mut head: Option<Vec<u8>> = None;
    if let Some(path) = &target.path {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: livestreamd-bench\r\nAccept: */*\r\n\r\n",
            target.addr
        );
        if let Err(e) = sock.write_all(request.as_bytes()) {
            return format!("request: {e}");
        }
        head = Some(Vec::new());
    } else {
        log.lock().unwrap().new_connection();
    }
    let mut chunked: Option<Dechunk> = None;
    let mut buf = vec![0u8; 65536];
    let mut body = Vec::with_capacity(65536);
    let mut total = 0usize;
    loop {
        if stop.load(Ordering::Relaxed) {
            return format!("stopped after {total} bytes");
        }
        let n = match sock.read(&mut buf) {
            Ok(0) => return format!("closed by the server after {total} bytes"),
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => return format!("read: {e} after {total} bytes"),
        };
        let now = epoch.elapsed().as_secs_f64();
        let mut input = buf[..n].to_vec();
        if let Some(h) = head.as_mut() {
            h.extend_from_slice(&input);
            let Some(end) = h.windows(4).position(|w| w == b"\r\n\r\n") else {
                if h.len() > 16384 {
                    return "no response head in 16 KiB".into();
                }
                continue;
            };
            let text = String::from_utf8_lossy(&h[..end]).to_ascii_lowercase();
            if text.split_whitespace().nth(1) != Some("200") {
                return format!("answer {}", text.lines().next().unwrap_or(""));
            }
            if text.contains("transfer-encoding: chunked") {
                chunked = Some(Dechunk::default());
            }
            log.lock().unwrap().new_connection();
            input = h.split_off(end + 4);
            head = None;
        }
        body.clear();
        match chunked.as_mut() {
            Some(d) => d.push(&input, &mut body),
            None => body.extend_from_slice(&input),
        }
        total += body.len();
        let mut g = log.lock().unwrap();
        g.parser.push(&body, now);
        if let Some(all) = g.bytes.as_mut() {
            all.extend_from_slice(&body);
        }
    }
}
