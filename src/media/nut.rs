//! The shared decoder's output cut into whole frames (pure). The decoder
//! writes NUT, ffmpeg's own container, because it carries raw video with a
//! timestamp on every frame: the encoders read it back with `-copyts` and so
//! stamp their output with the camera's time, as when each decoded the camera
//! itself. The daemon hands each encoder the stream's header and then whole
//! frames; cut at frame ends (not at the next syncpoint) a frame goes out the
//! moment its last byte is read, and a slow encoder can skip whole frames.
//!
//! What is parsed is what cutting needs: the packets' lengths and checksums,
//! the main header's frame-code table and the frame headers that table
//! describes (the NUT specification, `nut.txt` in the NUT sources). A stream
//! that breaks any of it is an error: the decoder is restarted.

use bytes::{Bytes, BytesMut};

const ID: &[u8] = b"nut/multimedia container\0";
const MAIN: u64 = 0x4E4D_7A56_1F5F_04AD;
const STREAM: u64 = 0x4E53_1140_5BF2_F9DB;
const SYNCPOINT: u64 = 0x4E4B_E4AD_EECA_4569;
const INFO: u64 = 0x4E49_AB68_B596_BA78;
const INDEX: u64 = 0x4E58_DD67_2F23_E64E;

const FLAG_CODED_PTS: u64 = 0x0008;
const FLAG_STREAM_ID: u64 = 0x0010;
const FLAG_SIZE_MSB: u64 = 0x0020;
const FLAG_CHECKSUM: u64 = 0x0040;
const FLAG_RESERVED: u64 = 0x0080;
const FLAG_HEADER_IDX: u64 = 0x0400;
const FLAG_MATCH_TIME: u64 = 0x0800;
const FLAG_CODED: u64 = 0x1000;
const FLAG_INVALID: u64 = 0x2000;

/// Headers (main, stream, info) are a few hundred bytes; this is plenty.
const MAX_HEADER: usize = 64 << 10;
/// Fields a frame header may say it has reserved (ffmpeg writes none).
const MAX_RESERVED: u64 = 64;

/// What the stream is cut into.
#[derive(Debug)]
pub enum Piece {
    /// Everything before the first syncpoint: the ID string and the main,
    /// stream and info packets. An encoder reads this first.
    Header(Bytes),
    Frame(Frame),
}

/// One frame with the packets before it (its syncpoint, headers repeated).
#[derive(Debug, Clone)]
pub struct Frame {
    pub data: Bytes,
    /// It starts with a syncpoint: a reader may begin here, or resume after
    /// skipping frames (the syncpoint resets the timestamps it codes from).
    pub sync: bool,
    /// The syncpoint's timestamp, in the stream's time base.
    pub pts: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    NotNut,
    Malformed(&'static str),
    /// A packet or frame longer than the frames this stream should carry.
    TooLarge(u64),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::NotNut => write!(f, "not NUT"),
            Error::Malformed(what) => write!(f, "malformed NUT: {what}"),
            Error::TooLarge(n) => write!(f, "a NUT frame or packet of {n} bytes"),
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct FrameCode {
    flags: u64,
    size_mul: u64,
    size_lsb: u64,
    reserved: u64,
    header_idx: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Id,
    Header,
    Frames,
}

/// Cuts a NUT byte stream into its header and frames. Holds at most one
/// frame (bounded by `max_frame`) plus what one read brings.
pub struct Splitter {
    buf: BytesMut,
    /// Bytes at the front of `buf` already parsed into the pending piece.
    parsed: usize,
    phase: Phase,
    tables: Tables,
    sync: bool,
    pts: Option<u64>,
}

/// What the main header says about the frames that follow.
struct Tables {
    /// The frame-code table, once the main header has been read.
    codes: Option<Box<[FrameCode; 256]>>,
    time_bases: u64,
    /// Lengths of the elided frame headers (index 0: none).
    elided: Vec<u64>,
    max_frame: u64,
}

/// Why parsing stopped short of a whole item.
enum Stop {
    More,
    Bad(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Bad(e)
    }
}

/// Reads NUT's fields from a slice that may end early (`Stop::More`).
struct Fields<'a> {
    b: &'a [u8],
    at: usize,
}

impl Fields<'_> {
    fn u8(&mut self) -> Result<u8, Stop> {
        let x = *self.b.get(self.at).ok_or(Stop::More)?;
        self.at += 1;
        Ok(x)
    }

    fn be(&mut self, n: usize) -> Result<u64, Stop> {
        let mut x = 0u64;
        for _ in 0..n {
            x = (x << 8) | u64::from(self.u8()?);
        }
        Ok(x)
    }

    /// `v`: big-endian groups of 7 bits, the high bit set on all but the last.
    fn v(&mut self) -> Result<u64, Stop> {
        let mut x = 0u64;
        for _ in 0..9 {
            let b = self.u8()?;
            x = (x << 7) | u64::from(b & 0x7f);
            if b & 0x80 == 0 {
                return Ok(x);
            }
        }
        Err(Stop::Bad(Error::Malformed("a number longer than 63 bits")))
    }

    fn skip(&mut self, n: u64) -> Result<(), Stop> {
        let end = usize::try_from(n)
            .ok()
            .and_then(|n| self.at.checked_add(n))
            .ok_or(Stop::Bad(Error::TooLarge(n)))?;
        if end > self.b.len() {
            return Err(Stop::More);
        }
        self.at = end;
        Ok(())
    }

    fn rest(&self) -> usize {
        self.b.len() - self.at
    }
}

/// NUT's checksum: CRC-32 with the polynomial 0x04C11DB7, most significant
/// bit first, starting from 0.
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = 0u32;
    for &b in data {
        c ^= u32::from(b) << 24;
        for _ in 0..8 {
            c = if c & 0x8000_0000 != 0 {
                (c << 1) ^ 0x04C1_1DB7
            } else {
                c << 1
            };
        }
    }
    c
}

impl Splitter {
    /// A splitter for frames of at most `max_frame` bytes.
    pub fn new(max_frame: usize) -> Splitter {
        Splitter {
            buf: BytesMut::new(),
            parsed: 0,
            phase: Phase::Id,
            tables: Tables {
                codes: None,
                time_bases: 1,
                elided: vec![0],
                max_frame: max_frame as u64,
            },
            sync: false,
            pts: None,
        }
    }

    /// Where the next bytes read go (`AsyncReadExt::read_buf`).
    pub fn input(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Bytes held, not yet handed out.
    pub fn held(&self) -> usize {
        self.buf.len()
    }

    /// Appends bytes (what `input` is for, by copy).
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next whole piece, None until more bytes come.
    pub fn next_piece(&mut self) -> Result<Option<Piece>, Error> {
        loop {
            if self.phase == Phase::Id {
                if self.buf.len() < ID.len() {
                    return if ID.starts_with(&self.buf) {
                        Ok(None)
                    } else {
                        Err(Error::NotNut)
                    };
                }
                if &self.buf[..ID.len()] != ID {
                    return Err(Error::NotNut);
                }
                self.parsed = ID.len();
                self.phase = Phase::Header;
            }
            let mut f = Fields {
                b: &self.buf[self.parsed..],
                at: 0,
            };
            let step = match f.b.first() {
                None => return Ok(None),
                Some(&b'N') => self.tables.packet(&mut f),
                Some(_) if self.phase != Phase::Frames => {
                    return Err(Error::Malformed("a frame before the first syncpoint"))
                }
                Some(_) => self.tables.frame(&mut f, self.parsed),
            };
            match step {
                Err(Stop::More) => {
                    if self.phase == Phase::Header && self.buf.len() > MAX_HEADER {
                        return Err(Error::TooLarge(self.buf.len() as u64));
                    }
                    return Ok(None);
                }
                Err(Stop::Bad(e)) => return Err(e),
                Ok(Item::Packet { len, code, pts }) => {
                    if code == SYNCPOINT && self.phase == Phase::Header {
                        // The header ends where the first syncpoint begins.
                        let header = self.buf.split_to(self.parsed).freeze();
                        self.parsed = 0;
                        self.phase = Phase::Frames;
                        return Ok(Some(Piece::Header(header)));
                    }
                    if code == SYNCPOINT {
                        self.sync = self.parsed == 0;
                        self.pts = pts;
                    }
                    self.parsed += len;
                    if self.parsed as u64 > self.tables.max_frame {
                        return Err(Error::TooLarge(self.parsed as u64));
                    }
                }
                Ok(Item::Frame { len }) => {
                    let data = self.buf.split_to(self.parsed + len).freeze();
                    self.parsed = 0;
                    let frame = Frame {
                        data,
                        sync: std::mem::take(&mut self.sync),
                        pts: self.pts.take(),
                    };
                    return Ok(Some(Piece::Frame(frame)));
                }
            }
        }
    }
}

impl Tables {
    /// A packet: startcode, length, (header checksum), payload, checksum.
    fn packet(&mut self, f: &mut Fields) -> Result<Item, Stop> {
        let code = f.be(8)?;
        if ![MAIN, STREAM, SYNCPOINT, INFO, INDEX].contains(&code) {
            return Err(Error::Malformed("an unknown startcode").into());
        }
        let len = f.v()?;
        if len > self.max_frame.max(MAX_HEADER as u64) {
            return Err(Error::TooLarge(len).into());
        }
        if len > 4096 {
            f.skip(4)?; // the header's own checksum
        }
        if len < 4 {
            return Err(Error::Malformed("a packet shorter than its checksum").into());
        }
        let start = f.at;
        f.skip(len)?;
        let body = &f.b[start..f.at - 4];
        let sum = u32::from_be_bytes(f.b[f.at - 4..f.at].try_into().unwrap());
        if crc32(body) != sum {
            return Err(Error::Malformed("a packet's checksum does not match").into());
        }
        let mut pts = None;
        match code {
            MAIN => self.main_header(body)?,
            SYNCPOINT => {
                let mut p = Fields { b: body, at: 0 };
                let global = p.v().map_err(|_| Error::Malformed("a short syncpoint"))?;
                pts = Some(global / self.time_bases);
            }
            _ => {}
        }
        Ok(Item::Packet {
            len: f.at,
            code,
            pts,
        })
    }

    /// The main header: the time bases, the frame-code table, elided headers.
    fn main_header(&mut self, body: &[u8]) -> Result<(), Error> {
        let short = Error::Malformed("a short main header");
        let mut p = Fields { b: body, at: 0 };
        let mut v = || p.v().map_err(|_| short.clone());
        let version = v()?;
        if version > 3 {
            v()?; // minor version
        }
        let streams = v()?;
        v()?; // max_distance
        let time_bases = v()?;
        if streams == 0 || time_bases == 0 || time_bases > 1024 {
            return Err(Error::Malformed("no stream or time base"));
        }
        for _ in 0..2 * time_bases {
            v()?;
        }
        let mut codes = Box::new([FrameCode::default(); 256]);
        let (mut mul, mut stream, mut head_idx) = (1u64, 0u64, 0u64);
        let mut i = 0usize;
        while i < 256 {
            let flags = v()?;
            let fields = v()?;
            if fields > 0 {
                v()?; // pts delta (signed)
            }
            if fields > 1 {
                mul = v()?;
            }
            if fields > 2 {
                stream = v()?;
            }
            let size = if fields > 3 { v()? } else { 0 };
            let reserved = if fields > 4 { v()? } else { 0 };
            let count = if fields > 5 {
                v()?
            } else {
                mul.checked_sub(size)
                    .ok_or(Error::Malformed("a frame code's size"))?
            };
            if fields > 6 {
                v()?; // match time delta (signed)
            }
            if fields > 7 {
                head_idx = v()?;
            }
            for _ in 8..fields.min(64) {
                v()?;
            }
            let room = 256 - i - usize::from(i <= usize::from(b'N'));
            if count == 0 || count > room as u64 || stream >= streams {
                return Err(Error::Malformed("a frame-code table entry"));
            }
            let mut j = 0;
            while j < count {
                if i == usize::from(b'N') {
                    codes[i].flags = FLAG_INVALID;
                    i += 1;
                    continue;
                }
                codes[i] = FrameCode {
                    flags,
                    size_mul: mul,
                    size_lsb: size + j,
                    reserved,
                    header_idx: head_idx,
                };
                i += 1;
                j += 1;
            }
        }
        codes[usize::from(b'N')].flags = FLAG_INVALID;
        let mut elided = vec![0];
        if p.rest() > 0 {
            let count = p.v().map_err(|_| short.clone())?;
            if count >= 128 {
                return Err(Error::Malformed("elided headers"));
            }
            for _ in 0..count {
                let len = p.v().map_err(|_| short.clone())?;
                if len == 0 || len >= 256 {
                    return Err(Error::Malformed("an elided header's length"));
                }
                p.skip(len).map_err(|_| short.clone())?;
                elided.push(len);
            }
        }
        self.codes = Some(codes);
        self.time_bases = time_bases;
        self.elided = elided;
        Ok(())
    }

    /// A frame: its header as the frame-code table describes it, then data.
    /// `parsed`: bytes of the pending piece before it (its syncpoint).
    fn frame(&self, f: &mut Fields, parsed: usize) -> Result<Item, Stop> {
        let Some(codes) = self.codes.as_ref() else {
            return Err(Error::Malformed("a frame before the main header").into());
        };
        let fc = codes[usize::from(f.u8()?)];
        let mut flags = fc.flags;
        if flags & FLAG_INVALID != 0 {
            return Err(Error::Malformed("an invalid frame code").into());
        }
        if flags & FLAG_CODED != 0 {
            flags ^= f.v()?;
        }
        if flags & FLAG_STREAM_ID != 0 {
            f.v()?;
        }
        if flags & FLAG_CODED_PTS != 0 {
            f.v()?;
        }
        let mut size = fc.size_lsb;
        if flags & FLAG_SIZE_MSB != 0 {
            size = f
                .v()?
                .checked_mul(fc.size_mul)
                .and_then(|s| s.checked_add(size))
                .ok_or(Error::TooLarge(u64::MAX))?;
        }
        if flags & FLAG_MATCH_TIME != 0 {
            f.v()?;
        }
        let mut head_idx = fc.header_idx;
        if flags & FLAG_HEADER_IDX != 0 {
            head_idx = f.v()?;
        }
        let mut reserved = fc.reserved;
        if flags & FLAG_RESERVED != 0 {
            reserved = f.v()?;
        }
        if reserved > MAX_RESERVED {
            return Err(Error::Malformed("reserved fields").into());
        }
        for _ in 0..reserved {
            f.v()?;
        }
        if size > 4096 {
            head_idx = 0;
        }
        let elided = *usize::try_from(head_idx)
            .ok()
            .and_then(|i| self.elided.get(i))
            .ok_or(Error::Malformed("an elided header's index"))?;
        let size = size
            .checked_sub(elided)
            .ok_or(Error::Malformed("a frame shorter than its elided header"))?;
        if flags & FLAG_CHECKSUM != 0 {
            f.skip(4)?;
        }
        if (parsed as u64).saturating_add(size) > self.max_frame {
            return Err(Error::TooLarge(size).into());
        }
        f.skip(size)?;
        Ok(Item::Frame { len: f.at })
    }
}

enum Item {
    Packet {
        len: usize,
        code: u64,
        pts: Option<u64>,
    },
    Frame {
        len: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(mut x: u64) -> Vec<u8> {
        let mut out = vec![(x & 0x7f) as u8];
        x >>= 7;
        while x > 0 {
            out.insert(0, 0x80 | (x & 0x7f) as u8);
            x >>= 7;
        }
        out
    }

    fn packet(code: u64, body: &[u8]) -> Vec<u8> {
        let mut p = code.to_be_bytes().to_vec();
        p.extend(v(body.len() as u64 + 4));
        p.extend_from_slice(body);
        p.extend(crc32(body).to_be_bytes());
        p
    }

    /// A main header for one stream, one time base (1/90000) and a table in
    /// which every code but 'N' is a keyframe whose size follows as `v`
    /// (size_mul 1, size_lsb 0) and whose pts is coded.
    fn main_header() -> Vec<u8> {
        let mut b = Vec::new();
        for x in [3, 1, 32768, 1, 1, 90000] {
            b.extend(v(x));
        }
        // Codes 0..=255 less 'N': flags KEY|SIZE_MSB|CODED_PTS, fields 6:
        // pts 0, mul 1, stream 0, size 0, reserved 0, count 255.
        for x in [1 | FLAG_SIZE_MSB | FLAG_CODED_PTS, 6, 0, 1, 0, 0, 0, 255] {
            b.extend(v(x));
        }
        packet(MAIN, &b)
    }

    fn header() -> Vec<u8> {
        let mut h = ID.to_vec();
        h.extend(main_header());
        h.extend(packet(STREAM, &[0, 0, 4, b'I', b'4', b'2', b'0']));
        h.extend(packet(INFO, &[0, 0, 0, 0, 0]));
        h
    }

    fn syncpoint(pts: u64) -> Vec<u8> {
        let mut b = v(pts);
        b.push(0);
        packet(SYNCPOINT, &b)
    }

    /// A frame with code `code` of the table above (its size_lsb is its
    /// place in the table, 'N' left out).
    fn frame(code: u8, pts: u64, data: &[u8]) -> Vec<u8> {
        let lsb = u64::from(if code < b'N' { code } else { code - 1 });
        let mut f = vec![code];
        f.extend(v(pts));
        f.extend(v(data.len() as u64 - lsb));
        f.extend_from_slice(data);
        f
    }

    fn split_all(s: &mut Splitter, bytes: &[u8], step: usize) -> Vec<Piece> {
        let mut out = Vec::new();
        for part in bytes.chunks(step) {
            s.push(part);
            while let Some(p) = s.next_piece().unwrap() {
                out.push(p);
            }
        }
        out
    }

    #[test]
    fn the_checksum_is_nuts() {
        // A syncpoint ffmpeg wrote: global_key_pts 132000, back_ptr 0.
        assert_eq!(crc32(&[0x88, 0x87, 0x20, 0x00]), 0x96f2_9724);
    }

    #[test]
    fn a_stream_is_cut_into_its_header_and_whole_frames_at_any_read_size() {
        let mut stream = header();
        let head_len = stream.len();
        stream.extend(syncpoint(3000));
        stream.extend(frame(1, 3000, &[7u8; 5000]));
        stream.extend(syncpoint(6000));
        stream.extend(packet(INFO, &[0, 0, 0, 0, 0])); // headers repeated mid-stream
        stream.extend(frame(2, 6000, &[8u8; 100]));
        let last = frame(3, 9000, &[9u8; 10]); // no syncpoint before it
        stream.extend(&last);
        for step in [1, 7, 188, 4096, stream.len()] {
            let mut s = Splitter::new(10_000);
            let pieces = split_all(&mut s, &stream, step);
            assert_eq!(pieces.len(), 4, "read size {step}");
            let Piece::Header(h) = &pieces[0] else {
                panic!("header first")
            };
            assert_eq!(h.len(), head_len);
            let frames: Vec<&Frame> = pieces[1..]
                .iter()
                .map(|p| match p {
                    Piece::Frame(f) => f,
                    Piece::Header(_) => panic!("one header"),
                })
                .collect();
            assert!(frames[0].sync && frames[1].sync && !frames[2].sync);
            assert_eq!(
                frames.iter().map(|f| f.pts).collect::<Vec<_>>(),
                [Some(3000), Some(6000), None]
            );
            assert!(frames[0].data.ends_with(&[7u8; 5000]));
            assert!(frames[1].data.ends_with(&[8u8; 100]));
            assert_eq!(frames[2].data.as_ref(), last.as_slice());
            let total: usize = h.len() + frames.iter().map(|f| f.data.len()).sum::<usize>();
            assert_eq!(total, stream.len(), "nothing lost or added");
            assert_eq!(s.held(), 0);
        }
    }

    #[test]
    fn a_frame_goes_out_with_its_last_byte_not_with_the_next_syncpoint() {
        let mut stream = header();
        stream.extend(syncpoint(3000));
        stream.extend(frame(1, 3000, &[7u8; 50]));
        let mut s = Splitter::new(1000);
        let pieces = split_all(&mut s, &stream, 10);
        assert_eq!(pieces.len(), 2);
    }

    #[test]
    fn bad_streams_are_errors_not_waits() {
        let mut s = Splitter::new(1000);
        s.push(b"RIFF");
        assert_eq!(s.next_piece().unwrap_err(), Error::NotNut);

        let mut s = Splitter::new(1000);
        let mut stream = header();
        stream.extend(syncpoint(3000));
        stream.extend(frame(1, 3000, &[7u8; 5000]));
        s.push(&stream);
        assert!(matches!(s.next_piece(), Ok(Some(Piece::Header(_)))));
        assert!(matches!(s.next_piece(), Err(Error::TooLarge(_))));

        let mut s = Splitter::new(1000);
        let mut stream = header();
        let mut sp = syncpoint(3000);
        let last = sp.len() - 1;
        sp[last] ^= 1;
        stream.extend(sp);
        s.push(&stream);
        assert!(
            matches!(s.next_piece(), Err(Error::Malformed(_))),
            "a syncpoint whose checksum is wrong"
        );

        let mut s = Splitter::new(1000);
        let mut stream = ID.to_vec();
        stream.extend(syncpoint(3000));
        stream.push(1);
        s.push(&stream);
        assert!(matches!(s.next_piece(), Ok(Some(Piece::Header(_)))));
        assert!(
            matches!(s.next_piece(), Err(Error::Malformed(_))),
            "a frame without a main header"
        );

        let mut s = Splitter::new(1000);
        let mut stream = header();
        stream.extend(syncpoint(3000));
        stream.push(b'N');
        stream.extend(0x1234_5678u64.to_be_bytes());
        s.push(&stream);
        assert!(matches!(s.next_piece(), Ok(Some(Piece::Header(_)))));
        assert!(matches!(s.next_piece(), Err(Error::Malformed(_))));
    }

    #[test]
    fn a_packet_longer_than_any_frame_is_an_error_at_once() {
        let mut s = Splitter::new(1000);
        s.push(&header());
        let mut junk = INFO.to_be_bytes().to_vec();
        junk.extend(v(100_000));
        s.push(&junk);
        assert!(matches!(s.next_piece(), Err(Error::TooLarge(_))));
    }
}
