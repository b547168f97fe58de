//! The picture size in an H.264 sequence parameter set (ITU-T H.264 section
//! 7.3.2.1.1): what a passthrough rung without a stated size shows.
//!
//! Pure. Reads just far enough (profile, chroma format, scaling lists, the
//! picture order fields, the size in macroblocks and the cropping window);
//! anything malformed or cut short is None, never a panic.

/// Width and height in pixels of the first SPS in Annex B bytes `es`.
pub fn h264_picture_size(es: &[u8]) -> Option<(u32, u32)> {
    let start = es
        .windows(4)
        .position(|w| w[..3] == [0, 0, 1] && w[3] & 0x1f == 7)?;
    let body = &es[start + 4..];
    let end = body.windows(3).position(|w| w[..2] == [0, 0] && w[2] <= 1);
    let rbsp = unescape(&body[..end.unwrap_or(body.len())]);
    parse(&rbsp)
}

/// Removes emulation prevention bytes (`00 00 03` → `00 00`).
fn unescape(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// Reads bits and Exp-Golomb codes, most significant bit first.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn bit(&mut self) -> Option<u32> {
        let byte = self.data.get(self.pos / 8)?;
        let b = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(u32::from(b))
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0, |v, _| Some(v << 1 | self.bit()?))
    }

    fn flag(&mut self) -> Option<bool> {
        Some(self.bit()? == 1)
    }

    /// ue(v). Values over 2^31 are not in any valid SPS: None.
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

    /// se(v).
    fn se(&mut self) -> Option<i64> {
        let k = i64::from(self.ue()?);
        Some(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

fn parse(rbsp: &[u8]) -> Option<(u32, u32)> {
    let mut r = Bits { data: rbsp, pos: 0 };
    let profile = r.bits(8)?;
    r.bits(16)?; // constraint flags, level
    r.ue()?; // seq_parameter_set_id
    let mut chroma_format = 1;
    let mut separate_planes = false;
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format = r.ue()?;
        if chroma_format == 3 {
            separate_planes = r.flag()?;
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.flag()?; // qpprime_y_zero_transform_bypass_flag
        if r.flag()? {
            let lists = if chroma_format == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.flag()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            r.flag()?;
            r.se()?;
            r.se()?;
            let cycle = r.ue()?;
            if cycle > 255 {
                return None;
            }
            for _ in 0..cycle {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.flag()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = r.ue()?.checked_add(1)?;
    let height_units = r.ue()?.checked_add(1)?;
    let frame_mbs_only = r.flag()?;
    if !frame_mbs_only {
        r.flag()?; // mb_adaptive_frame_field_flag
    }
    r.flag()?; // direct_8x8_inference_flag
    let field_factor = if frame_mbs_only { 1 } else { 2 };
    let (mut crop_x, mut crop_y) = (0, 0);
    if r.flag()? {
        let (left, right, top, bottom) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
        // Crop units by chroma format (Table 6-1): 4:2:0 halves both ways,
        // 4:2:2 only across; monochrome and separate planes do not.
        let (sub_w, sub_h) = match (chroma_format, separate_planes) {
            (1, _) => (2, 2),
            (2, _) => (2, 1),
            _ => (1, 1),
        };
        crop_x = sub_w * left.checked_add(right)?;
        crop_y = sub_h * field_factor * top.checked_add(bottom)?;
    }
    let width = width_mbs.checked_mul(16)?.checked_sub(crop_x)?;
    let height = (field_factor * height_units)
        .checked_mul(16)?
        .checked_sub(crop_y)?;
    (width > 0 && height > 0 && width <= 16_384 && height <= 16_384).then_some((width, height))
}

fn skip_scaling_list(r: &mut Bits, size: usize) -> Option<()> {
    let (mut last, mut next) = (8i64, 8i64);
    for _ in 0..size {
        if next != 0 {
            next = (last + r.se()? + 256) % 256;
        }
        last = if next == 0 { last } else { next };
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes bits and Exp-Golomb codes, to build parameter sets.
    #[derive(Default)]
    struct Writer {
        bits: Vec<bool>,
    }

    impl Writer {
        fn bits(&mut self, v: u32, n: u32) -> &mut Self {
            for i in (0..n).rev() {
                self.bits.push(v >> i & 1 == 1);
            }
            self
        }
        fn ue(&mut self, v: u32) -> &mut Self {
            let n = 32 - (v + 1).leading_zeros();
            self.bits(0, n - 1).bits(v + 1, n)
        }
        fn bytes(&self) -> Vec<u8> {
            let mut b = self.bits.clone();
            b.push(true); // rbsp stop bit
            b.chunks(8)
                .map(|c| {
                    c.iter()
                        .enumerate()
                        .fold(0u8, |v, (i, x)| v | u8::from(*x) << (7 - i))
                })
                .collect()
        }
    }

    /// A Main-profile SPS for `w` x `h` in macroblocks with a bottom/right crop.
    fn main_sps(mbs_w: u32, mbs_h: u32, crop: Option<(u32, u32)>) -> Vec<u8> {
        let mut w = Writer::default();
        w.bits(77, 8).bits(0x40, 8).bits(31, 8).ue(0);
        w.ue(0).ue(0).ue(4); // frame num, poc type 0, its lsb
        w.ue(1).bits(0, 1); // refs, gaps
        w.ue(mbs_w - 1).ue(mbs_h - 1).bits(1, 1).bits(1, 1); // frame_mbs_only, direct_8x8
        match crop {
            Some((right, bottom)) => w.bits(1, 1).ue(0).ue(right).ue(0).ue(bottom),
            None => w.bits(0, 1),
        };
        w.bits(0, 1); // no VUI
        [vec![0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x67], w.bytes()].concat()
    }

    #[test]
    fn the_size_comes_from_macroblocks_less_the_crop() {
        // 1920x1080: 120x68 macroblocks, 8 lines cropped (4 chroma units).
        assert_eq!(
            h264_picture_size(&main_sps(120, 68, Some((0, 4)))),
            Some((1920, 1080))
        );
        assert_eq!(
            h264_picture_size(&main_sps(53, 30, Some((0, 0)))),
            Some((848, 480))
        );
        assert_eq!(
            h264_picture_size(&main_sps(40, 23, Some((0, 4)))),
            Some((640, 360))
        );
        assert_eq!(
            h264_picture_size(&main_sps(80, 45, None)),
            Some((1280, 720))
        );
    }

    #[test]
    fn a_high_profile_sps_with_scaling_lists_is_read_past_them() {
        let mut w = Writer::default();
        w.bits(100, 8).bits(0, 8).bits(40, 8).ue(0);
        w.ue(1).ue(0).ue(0).bits(0, 1); // 4:2:0, 8-bit, no bypass
        w.bits(1, 1); // scaling matrices present
        for i in 0..8 {
            // List 0 given (a delta of +1 each, then 0 = repeat), the rest not.
            if i == 0 {
                w.bits(1, 1);
                for _ in 0..16 {
                    w.ue(1); // se(+1)
                }
            } else {
                w.bits(0, 1);
            }
        }
        w.ue(0).ue(2); // frame num, poc type 2
        w.ue(1).bits(0, 1);
        w.ue(79).ue(44).bits(1, 1).bits(1, 1).bits(0, 1).bits(0, 1);
        let es = [vec![0, 0, 1, 0x67], w.bytes()].concat();
        assert_eq!(h264_picture_size(&es), Some((1280, 720)));
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn sps_written_by_libx264_give_their_size() {
        // ffmpeg -f lavfi -i testsrc=size=WxH -pix_fmt yuv420p -c:v libx264
        // -profile:v high: High profile, VUI, emulation prevention bytes.
        let x264_848x480 = "0000016764001facd940d43db0110000030001000003003c0f18319600";
        let x264_1080p = "00000167640028acd940780227e5c044000003000400000300f03c60c65800";
        assert_eq!(h264_picture_size(&hex(x264_848x480)), Some((848, 480)));
        assert_eq!(h264_picture_size(&hex(x264_1080p)), Some((1920, 1080)));
    }

    #[test]
    fn emulation_prevention_bytes_are_removed() {
        assert_eq!(
            unescape(&[0, 0, 3, 1, 0, 0, 3, 0, 3]),
            vec![0, 0, 1, 0, 0, 0, 3]
        );
    }

    #[test]
    fn no_sps_or_a_short_one_is_none_never_a_panic() {
        assert_eq!(
            h264_picture_size(&[0, 0, 1, 0x65, 0x88]),
            None,
            "an IDR slice"
        );
        let full = main_sps(80, 45, None);
        for cut in 0..full.len() - 1 {
            let _ = h264_picture_size(&full[..cut]);
        }
        assert_eq!(h264_picture_size(&full[..full.len() - 4]), None);
        let mut x = 0x9e37_79b9u32;
        for _ in 0..5000 {
            let junk: Vec<u8> = (0..24)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            let _ = h264_picture_size(&[&[0, 0, 1, 0x67][..], &junk].concat());
        }
    }
}
