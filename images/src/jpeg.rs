//! Baseline JPEG decoded at 1/8, 1/4 or 1/2 of its size in the DCT domain.
//!
//! A shrunken rendition and a 32×32 hash thumbnail need only the low frequencies of each 8×8
//! block: the Huffman data is read whole (it cannot be skipped), but only the top-left N×N
//! coefficients are kept and each block becomes N×N pixels, the box average of what a full
//! decode of those coefficients gives. The inverse DCT, the colour conversion and the resize
//! then work on a quarter, a sixteenth or a sixty-fourth of the pixels. libjpeg does the same
//! (`scale_num`/`scale_denom`), and OpenCV's `IMREAD_REDUCED_*` through it.
//!
//! Only what cameras and the web mostly write is handled here: baseline (sequential,
//! Huffman-coded, 8-bit) JPEG in one interleaved scan, grey or YCbCr with the chroma at full,
//! half-width or half-size resolution. For anything else (progressive, arithmetic coding,
//! 12-bit, CMYK, Adobe RGB, several scans) [`decode`] answers `Ok(None)` and the caller decodes
//! the whole image with a general decoder.

use std::cmp::Ordering;

use image::RgbImage;

/// Bits looked up at once when decoding a Huffman symbol.
const LOOK: u32 = 11;

/// Natural (row-major) position of each zigzag index.
const ZIGZAG: [u8; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

struct Huffman {
    /// By the next [`LOOK`] bits: `length << 8 | symbol`, 0 when the code is longer.
    look: Vec<u16>,
    /// For AC tables, by the next [`LOOK`] bits when the code and the value's bits both fit:
    /// `value << 8 | run << 4 | bits used` (never 0: bits are used), end of block and sixteen
    /// zeros with value 0; 0 otherwise.
    fast_ac: Vec<i32>,
    /// Largest code of each length (-1 when none), for codes longer than [`LOOK`].
    maxcode: [i32; 17],
    /// Index into `symbols` of the first code of each length, minus that code.
    offset: [i32; 17],
    symbols: Vec<u8>,
}

impl Huffman {
    /// The table of `counts` codes of each length and their `symbols`; with `ac`, the fast
    /// table of AC coefficients too.
    fn new(counts: &[u8; 16], symbols: &[u8], ac: bool) -> Result<Huffman, String> {
        let mut look = vec![0u16; 1 << LOOK];
        let mut maxcode = [-1i32; 17];
        let mut offset = [0i32; 17];
        let mut code: u32 = 0;
        let mut k = 0usize;
        for len in 1..=16u32 {
            let n = usize::from(counts[len as usize - 1]);
            offset[len as usize] = k as i32 - code as i32;
            for _ in 0..n {
                if code >= 1 << len {
                    return Err("bad Huffman table".to_string());
                }
                let sym = *symbols.get(k).ok_or("bad Huffman table")?;
                if len <= LOOK {
                    let shift = LOOK - len;
                    for low in 0..(1u32 << shift) {
                        look[((code << shift) | low) as usize] = (len as u16) << 8 | u16::from(sym);
                    }
                }
                code += 1;
                k += 1;
            }
            if n > 0 {
                maxcode[len as usize] = code as i32 - 1;
            }
            code <<= 1;
        }
        let mut fast_ac = vec![0i32; if ac { 1 << LOOK } else { 0 }];
        for (i, e) in look.iter().enumerate() {
            if *e == 0 || !ac {
                continue;
            }
            let len = u32::from(e >> 8);
            let rs = (e & 0xff) as u32;
            let (run, size) = (rs >> 4, rs & 15);
            // end of block (value and run 0) and sixteen zeros (run 15, value 0) too
            if size == 0 {
                if run == 0 || run == 15 {
                    fast_ac[i] = (run * 16 + len) as i32;
                }
                continue;
            }
            if len + size > LOOK {
                continue;
            }
            let bits = ((i as u32) >> (LOOK - len - size)) & ((1 << size) - 1);
            let mut v = bits as i32;
            if v < 1 << (size - 1) {
                v += 1 - (1 << size);
            }
            fast_ac[i] = v * 256 + (run as i32) * 16 + (len + size) as i32;
        }
        Ok(Huffman {
            look,
            fast_ac,
            maxcode,
            offset,
            symbols: symbols.to_vec(),
        })
    }
}

/// The entropy-coded data of a scan, read with the byte stuffing undone; at a marker or the
/// end it gives zero bits and counts them.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    acc: u64,
    /// Bits in `acc`, from the top.
    n: u32,
    /// Zero bytes given past a marker or the end since the last restart.
    padded: u32,
}

impl<'a> Bits<'a> {
    /// `acc` (with `n` bits, from the top) topped up to at least 57 bits, or to 56 to 63 when
    /// eight bytes without 0xFF come at once. Taken and given by value, so that the block
    /// loop keeps them in registers.
    #[inline(never)]
    fn refill(&mut self, mut acc: u64, mut n: u32) -> (u64, u32) {
        if let Some(w) = self.data.get(self.pos..self.pos + 8) {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            let word = u64::from_be_bytes(b);
            // no byte is 0xFF: no stuffing, no marker
            if (!word).wrapping_sub(0x0101_0101_0101_0101) & word & 0x8080_8080_8080_8080 == 0 {
                let take = (63 - n) / 8;
                if take > 0 {
                    acc |= (word >> (64 - 8 * take)) << (64 - n - 8 * take);
                    n += 8 * take;
                    self.pos += take as usize;
                }
                return (acc, n);
            }
        }
        while n <= 56 {
            let mut byte = 0u8;
            match self.data.get(self.pos) {
                Some(0xff) => {
                    if self.data.get(self.pos + 1) == Some(&0) {
                        byte = 0xff;
                        self.pos += 2;
                    } else {
                        self.padded += 1;
                    }
                }
                Some(&b) => {
                    byte = b;
                    self.pos += 1;
                }
                None => self.padded += 1,
            }
            acc |= u64::from(byte) << (56 - n);
            n += 8;
        }
        (acc, n)
    }

    /// One block's coefficients: the DC difference added to `pred`, the kept ones (quantised)
    /// into `coef` (by `keep`, dropped ones into slot 16). Whether an AC coefficient was kept.
    /// Not inlined: on its own it keeps its bit buffer and counters in registers.
    #[inline(never)]
    fn block(
        &mut self,
        dct: &Huffman,
        act: &Huffman,
        pred: &mut i32,
        keep: &[u8; 64],
        coef: &mut [i32; 17],
    ) -> Result<bool, &'static str> {
        let (mut acc, mut n) = (self.acc, self.n);
        *coef = [0; 17];
        let mut kept_ac = false;
        if n < 32 {
            (acc, n) = self.refill(acc, n);
        }
        let s = u32::from(symbol(dct, &mut acc, &mut n)?);
        if s > 16 {
            return Err("bad DC coefficient");
        }
        if s > 0 {
            *pred = pred.wrapping_add(value(s, &mut acc, &mut n));
        }
        coef[0] = *pred;
        let mut k = 1usize;
        while k < 64 {
            if n < 32 {
                (acc, n) = self.refill(acc, n);
            }
            let f = act.fast_ac[(acc >> (64 - LOOK)) as usize];
            let (run, v) = if f != 0 {
                let used = (f & 15) as u32;
                acc <<= used;
                n -= used;
                if f >> 4 == 0 {
                    // end of block
                    break;
                }
                (((f >> 4) & 15) as usize, f >> 8)
            } else {
                let rs = u32::from(symbol(act, &mut acc, &mut n)?);
                let (r, s) = ((rs >> 4) as usize, rs & 15);
                if s == 0 {
                    if r == 15 {
                        k += 16;
                        continue;
                    }
                    break;
                }
                (r, value(s, &mut acc, &mut n))
            };
            k += run;
            if k > 63 {
                // sixteen zeros past the end end the block, as the slow path (and libjpeg) has it
                if v == 0 {
                    break;
                }
                return Err("bad AC coefficient");
            }
            // branch-free: a dropped coefficient goes to slot 16
            let at = usize::from(keep[k]);
            coef[at] = v;
            kept_ac |= at != 16;
            k += 1;
        }
        self.acc = acc;
        self.n = n;
        Ok(kept_ac)
    }

    /// Past a restart marker: the bits left in the byte dropped, the marker read.
    fn restart(&mut self) -> Result<(), String> {
        self.acc = 0;
        self.n = 0;
        self.padded = 0;
        while self.data.get(self.pos) == Some(&0xff) && self.data.get(self.pos + 1) == Some(&0xff) {
            self.pos += 1;
        }
        match (self.data.get(self.pos), self.data.get(self.pos + 1)) {
            (Some(0xff), Some(m)) if (0xd0..=0xd7).contains(m) => {
                self.pos += 2;
                Ok(())
            }
            _ => Err("restart marker missing".to_string()),
        }
    }
}

/// A Huffman symbol from the top of `acc` (at least 16 bits in it).
#[inline(always)]
fn symbol(h: &Huffman, acc: &mut u64, n: &mut u32) -> Result<u8, &'static str> {
    let e = h.look[(*acc >> (64 - LOOK)) as usize];
    if e != 0 {
        let len = u32::from(e >> 8);
        *acc <<= len;
        *n -= len;
        return Ok(e as u8);
    }
    for len in LOOK + 1..=16 {
        let code = (*acc >> (64 - len)) as i32;
        if code <= h.maxcode[len as usize] {
            *acc <<= len;
            *n -= len;
            let i = usize::try_from(h.offset[len as usize] + code).unwrap_or(usize::MAX);
            return h.symbols.get(i).copied().ok_or("bad Huffman code");
        }
    }
    Err("bad Huffman code")
}

/// `size` bits (1 to 16) from the top of `acc` as a signed value.
#[inline(always)]
fn value(size: u32, acc: &mut u64, n: &mut u32) -> i32 {
    let v = (*acc >> (64 - size)) as i32;
    *acc <<= size;
    *n -= size;
    if v < 1 << (size - 1) {
        v + 1 - (1 << size)
    } else {
        v
    }
}

struct Component {
    id: u8,
    h: usize,
    v: usize,
    tq: usize,
    dc: usize,
    ac: usize,
}

/// The factor of frequency `u` (0 to `n` - 1) when a block becomes `n` pixels a side.
///
/// Averaging the 8-point inverse DCT's basis `C(u)/2 cos((2x+1)uπ/16)` over runs of `8/n`
/// pixels gives exactly an `n`-point basis `cos((2x'+1)uπ/2n)` times a factor per frequency
/// (product-to-sum: a pair's average is `cos(uπ/16)` times the cosine at its middle, a
/// quadruple's `cos(uπ/16) cos(uπ/8)`). The factors go into the dequantisation, and each block
/// becomes the box average of the pixels its kept coefficients describe.
fn factor(n: usize, u: usize) -> f32 {
    let c = if u == 0 {
        std::f64::consts::FRAC_1_SQRT_2
    } else {
        1.0
    };
    let a = |k: f64| (u as f64 * std::f64::consts::PI / k).cos();
    let f = match n {
        2 => a(16.0) * a(8.0),
        4 => a(16.0),
        // a block of one pixel keeps only u = 0; whole blocks, the 8-point basis itself
        _ => 1.0,
    };
    (c / 2.0 * f) as f32
}

/// Output pixels per block side (1, 2 or 4) for a `w`×`h` JPEG to give at least
/// `min_w`×`min_h`; `None` when only the whole image does.
pub fn scale_for(w: u32, h: u32, min_w: u32, min_h: u32) -> Option<usize> {
    [1usize, 2, 4].into_iter().find(|&n| {
        (w as usize * n).div_ceil(8) >= min_w as usize
            && (h as usize * n).div_ceil(8) >= min_h as usize
    })
}

/// Decodes a baseline JPEG at the smallest of 1/8, 1/4 and 1/2 of its size (each side rounded
/// up) that is at least `min_w`×`min_h`. `Ok(None)` when the image is of a kind not handled
/// here or is needed at its full size; an error when the data is broken or the image has more
/// than `max_pixels`.
pub fn decode(
    bytes: &[u8],
    max_pixels: u64,
    min_w: u32,
    min_h: u32,
) -> Result<Option<RgbImage>, String> {
    let mut q = [[0u16; 64]; 4];
    // Huffman tables as defined (counts and symbols), built only for the scan's components
    let mut dc_def: [Option<([u8; 16], &[u8])>; 4] = [None; 4];
    let mut ac_def: [Option<([u8; 16], &[u8])>; 4] = [None; 4];
    let mut comps: Vec<Component> = Vec::new();
    let (mut width, mut height) = (0usize, 0usize);
    let mut restart = 0usize;
    let mut adobe_transform: Option<u8> = None;
    if bytes.get(..2) != Some(&[0xff, 0xd8]) {
        return Err("not a JPEG".to_string());
    }
    let mut pos = 2;
    loop {
        // markers may be preceded by fill bytes
        while bytes.get(pos) == Some(&0xff) && bytes.get(pos + 1) == Some(&0xff) {
            pos += 1;
        }
        let (Some(&0xff), Some(&marker)) = (bytes.get(pos), bytes.get(pos + 1)) else {
            return Err("JPEG marker expected".to_string());
        };
        pos += 2;
        if marker == 0xd8 || (0xd0..=0xd7).contains(&marker) || marker == 0x01 {
            continue;
        }
        if marker == 0xd9 {
            return Err("JPEG ends before its image data".to_string());
        }
        let len = match bytes.get(pos..pos + 2) {
            Some(l) => usize::from(u16::from_be_bytes([l[0], l[1]])),
            None => return Err("JPEG ends inside a header".to_string()),
        };
        let seg = bytes
            .get(pos + 2..pos + len.max(2))
            .ok_or("JPEG ends inside a header")?;
        pos += len.max(2);
        match marker {
            0xdb => {
                let mut s = seg;
                while let Some((&pq_tq, rest)) = s.split_first() {
                    let (pq, tq) = (pq_tq >> 4, usize::from(pq_tq & 15));
                    let size = if pq == 0 { 64 } else { 128 };
                    let table = rest.get(..size).ok_or("bad quantisation table")?;
                    let slot = q.get_mut(tq).ok_or("bad quantisation table")?;
                    for k in 0..64 {
                        slot[k] = if pq == 0 {
                            u16::from(table[k])
                        } else {
                            u16::from_be_bytes([table[2 * k], table[2 * k + 1]])
                        };
                    }
                    s = &rest[size..];
                }
            }
            0xc4 => {
                let mut s = seg;
                while let Some((&tc_th, rest)) = s.split_first() {
                    let counts: [u8; 16] = rest
                        .get(..16)
                        .and_then(|c| c.try_into().ok())
                        .ok_or("bad Huffman table")?;
                    let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
                    let symbols = rest.get(16..16 + total).ok_or("bad Huffman table")?;
                    let th = usize::from(tc_th & 15);
                    let slot = match tc_th >> 4 {
                        0 => dc_def.get_mut(th),
                        1 => ac_def.get_mut(th),
                        _ => None,
                    }
                    .ok_or("bad Huffman table")?;
                    *slot = Some((counts, symbols));
                    s = &rest[16 + total..];
                }
            }
            0xdd => {
                restart = usize::from(u16::from_be_bytes([
                    *seg.first().ok_or("bad restart interval")?,
                    *seg.get(1).ok_or("bad restart interval")?,
                ]));
            }
            0xee if seg.starts_with(b"Adobe") => adobe_transform = seg.get(11).copied(),
            0xc0 | 0xc1 => {
                if seg.first() != Some(&8) || seg.len() < 6 {
                    return Ok(None);
                }
                height = usize::from(u16::from_be_bytes([seg[1], seg[2]]));
                width = usize::from(u16::from_be_bytes([seg[3], seg[4]]));
                let nf = usize::from(seg[5]);
                // one frame header per image
                comps.clear();
                for i in 0..nf {
                    let c = seg.get(6 + 3 * i..9 + 3 * i).ok_or("bad frame header")?;
                    comps.push(Component {
                        id: c[0],
                        h: usize::from(c[1] >> 4),
                        v: usize::from(c[1] & 15),
                        tq: usize::from(c[2] & 3),
                        dc: 0,
                        ac: 0,
                    });
                }
            }
            // progressive, lossless, arithmetic-coded, hierarchical
            0xc2 | 0xc3 | 0xc5..=0xc7 | 0xc9..=0xcb | 0xcd..=0xcf => return Ok(None),
            0xda => {
                let ns = usize::from(*seg.first().ok_or("bad scan header")?);
                if comps.is_empty() || ns != comps.len() {
                    return Ok(None);
                }
                for i in 0..ns {
                    let s = seg.get(1 + 2 * i..3 + 2 * i).ok_or("bad scan header")?;
                    let c = comps
                        .iter_mut()
                        .find(|c| c.id == s[0])
                        .ok_or("bad scan header")?;
                    c.dc = usize::from(s[1] >> 4) & 3;
                    c.ac = usize::from(s[1] & 15) & 3;
                }
                break;
            }
            _ => {}
        }
    }
    if width == 0 || height == 0 {
        return Ok(None);
    }
    if (width as u64) * (height as u64) > max_pixels {
        return Err(format!("{width}x{height} is more than {max_pixels} pixels"));
    }
    let grey = comps.len() == 1;
    if !grey {
        // YCbCr with chroma at full, half-width or half-size resolution
        // RGB (Adobe's transform 0, or components named R, G, B) is left to the full decoder
        let rgb = comps.iter().map(|c| c.id).eq(*b"RGB");
        if comps.len() != 3 || adobe_transform == Some(0) || rgb {
            return Ok(None);
        }
        let (y, cb, cr) = (&comps[0], &comps[1], &comps[2]);
        if !(1..=2).contains(&y.h) || !(1..=2).contains(&y.v) || [cb.h, cb.v, cr.h, cr.v] != [1; 4]
        {
            return Ok(None);
        }
    }
    let Some(n) = scale_for(width as u32, height as u32, min_w, min_h) else {
        return Ok(None);
    };
    // the tables the scan's components use, each built once
    let mut dc: [Option<Huffman>; 4] = [None, None, None, None];
    let mut ac: [Option<Huffman>; 4] = [None, None, None, None];
    for c in &comps {
        for (built, def, i, is_ac) in [
            (&mut dc, &dc_def, c.dc, false),
            (&mut ac, &ac_def, c.ac, true),
        ] {
            if built[i].is_none() {
                let (counts, symbols) = def[i].ok_or("scan uses a Huffman table never defined")?;
                built[i] = Some(Huffman::new(&counts, symbols, is_ac)?);
            }
        }
    }
    // each component's two tables, all built above
    let tables: Vec<(&Huffman, &Huffman)> = comps
        .iter()
        .map(|c| Some((dc[c.dc].as_ref()?, ac[c.ac].as_ref()?)))
        .collect::<Option<_>>()
        .ok_or("scan uses a Huffman table never defined")?;
    let (hmax, vmax) = if grey {
        (1, 1)
    } else {
        (comps[0].h, comps[0].v)
    };
    let (mcux, mcuy) = (width.div_ceil(8 * hmax), height.div_ceil(8 * vmax));
    // the blocks of each component, and its plane of n×n pixels per block
    let blocks: Vec<(usize, usize)> = if grey {
        vec![(width.div_ceil(8), height.div_ceil(8))]
    } else {
        comps.iter().map(|c| (mcux * c.h, mcuy * c.v)).collect()
    };
    // pixels per block side of each component: n for luma; subsampled chroma at up to twice
    // that (as libjpeg scales it), so that its resolution is not halved again
    let sides: Vec<usize> = comps
        .iter()
        .map(|c| {
            let sub = if grey {
                1
            } else {
                hmax.max(vmax) / c.h.max(c.v)
            };
            (n * sub).min(4)
        })
        .collect();
    let mut planes: Vec<Vec<u8>> = blocks
        .iter()
        .zip(&sides)
        .map(|(&(bx, by), &m)| vec![0u8; bx * by * m * m])
        .collect();
    // for each component, which zigzag index lands where in the m×m kept corner (16: dropped),
    // and the quantisation table in that order
    let mut keeps = [[16u8; 64]; 3];
    let mut quant = [[0f32; 17]; 3];
    for (ci, c) in comps.iter().enumerate() {
        let m = sides[ci];
        for (k, &z) in ZIGZAG.iter().enumerate() {
            let (r, col) = (usize::from(z) / 8, usize::from(z) % 8);
            if r < m && col < m {
                let at = r * m + col;
                keeps[ci][k] = at as u8;
                quant[ci][at] = f32::from(q[c.tq][k]) * factor(m, r) * factor(m, col);
            }
        }
    }
    let scan = &bytes[pos..];
    let mut bits = Bits {
        data: scan,
        pos: 0,
        acc: 0,
        n: 0,
        padded: 0,
    };
    let mut pred = [0i32; 3];
    let total_mcus = if grey {
        blocks[0].0 * blocks[0].1
    } else {
        mcux * mcuy
    };
    let mcus_per_row = if grey { blocks[0].0 } else { mcux };
    let mut coef = [0i32; 17];
    for m in 0..total_mcus {
        if restart > 0 && m > 0 && m % restart == 0 {
            bits.restart()?;
            pred = [0; 3];
        }
        let (mx, my) = (m % mcus_per_row, m / mcus_per_row);
        for (ci, c) in comps.iter().enumerate() {
            let (bh, bv) = if grey { (1, 1) } else { (c.h, c.v) };
            let (dct, act) = tables[ci];
            let side = sides[ci];
            let keep = &keeps[ci];
            let stride = blocks[ci].0 * side;
            for by in 0..bv {
                for bx in 0..bh {
                    let kept_ac = bits.block(dct, act, &mut pred[ci], keep, &mut coef)?;
                    if bits.padded > 16 {
                        return Err("JPEG data ends early".to_string());
                    }
                    let (px, py) = ((mx * bh + bx) * side, (my * bv + by) * side);
                    let at = py * stride + px;
                    if kept_ac {
                        idct(&coef, &quant[ci], side, &mut planes[ci], at, stride);
                    } else {
                        // a flat block
                        let v = to_u8(coef[0] as f32 * quant[ci][0]);
                        for y in 0..side {
                            if let Some(row) =
                                planes[ci].get_mut(at + y * stride..at + y * stride + side)
                            {
                                row.fill(v);
                            }
                        }
                    }
                }
            }
        }
    }
    // to RGB at the scaled size
    let (ow, oh) = ((width * n).div_ceil(8), (height * n).div_ceil(8));
    let mut out = vec![0u8; ow * oh * 3];
    if grey {
        let stride = blocks[0].0 * n;
        for y in 0..oh {
            let row = &planes[0][y * stride..y * stride + ow];
            for (o, &l) in out[y * ow * 3..(y + 1) * ow * 3]
                .chunks_exact_mut(3)
                .zip(row)
            {
                o.fill(l);
            }
        }
    } else {
        let (s0, s1) = (blocks[0].0 * n, blocks[1].0 * sides[1]);
        // where an output pixel's chroma lies, by axis: the same place, half of it (repeated),
        // or twice it (two samples averaged)
        let kind = |max: usize| (sides[1] * 8 / max).cmp(&(n * 8));
        let (hk, vk) = (kind(hmax), kind(vmax));
        fn chroma_row(plane: &[u8], r: usize, s1: usize) -> Result<&[u8], String> {
            plane
                .get(r * s1..(r + 1) * s1)
                .ok_or_else(|| "JPEG plane too small".to_string())
        }
        let (mut cbr, mut crr) = (vec![0u8; ow], vec![0u8; ow]);
        let (mut cb2, mut cr2) = (vec![0u8; s1], vec![0u8; s1]);
        for (y, orow) in out.chunks_exact_mut(ow * 3).enumerate() {
            let yrow = planes[0]
                .get(y * s0..y * s0 + ow)
                .ok_or("JPEG plane too small")?;
            let (cb, cr) = match vk {
                Ordering::Less => (
                    chroma_row(&planes[1], y >> 1, s1)?,
                    chroma_row(&planes[2], y >> 1, s1)?,
                ),
                Ordering::Equal => (
                    chroma_row(&planes[1], y, s1)?,
                    chroma_row(&planes[2], y, s1)?,
                ),
                Ordering::Greater => {
                    for (plane, dst) in [(&planes[1], &mut cb2), (&planes[2], &mut cr2)] {
                        let (a, b) = (
                            chroma_row(plane, 2 * y, s1)?,
                            chroma_row(plane, 2 * y + 1, s1)?,
                        );
                        for ((d, &a), &b) in dst.iter_mut().zip(a).zip(b) {
                            *d = ((u16::from(a) + u16::from(b) + 1) >> 1) as u8;
                        }
                    }
                    (&cb2[..], &cr2[..])
                }
            };
            for (src, dst) in [(cb, &mut cbr), (cr, &mut crr)] {
                match hk {
                    Ordering::Less => {
                        for (d, &c) in dst.chunks_mut(2).zip(src) {
                            d.fill(c);
                        }
                    }
                    Ordering::Equal => {
                        for (d, &c) in dst.iter_mut().zip(src) {
                            *d = c;
                        }
                    }
                    Ordering::Greater => {
                        for (d, c) in dst.iter_mut().zip(src.chunks_exact(2)) {
                            *d = ((u16::from(c[0]) + u16::from(c[1]) + 1) >> 1) as u8;
                        }
                    }
                }
            }
            for (((o, &l), &b), &r) in orow.chunks_exact_mut(3).zip(yrow).zip(&cbr).zip(&crr) {
                let l = i32::from(l) << 16;
                let (b, r) = (i32::from(b) - 128, i32::from(r) - 128);
                // BT.601 full range, 16-bit fixed point
                o[0] = ((l + 91881 * r + 32768) >> 16).clamp(0, 255) as u8;
                o[1] = ((l - 22554 * b - 46802 * r + 32768) >> 16).clamp(0, 255) as u8;
                o[2] = ((l + 116130 * b + 32768) >> 16).clamp(0, 255) as u8;
            }
        }
    }
    Ok(RgbImage::from_raw(ow as u32, oh as u32, out))
}

/// The kept n×n coefficients of a block (n 2 or 4: a block of side 1 is always flat),
/// dequantised and scaled by [`factor`] (`quant`), to n×n pixels at `at` in `plane` (rows of
/// `stride`).
#[inline(never)]
fn idct(
    quantised: &[i32; 17],
    quant: &[f32; 17],
    n: usize,
    plane: &mut [u8],
    at: usize,
    stride: usize,
) {
    let mut coef = [0f32; 16];
    for ((c, &q), &f) in coef.iter_mut().zip(quantised).zip(quant) {
        *c = q as f32 * f;
    }
    let px = to_u8;
    match n {
        2 => {
            const C: f32 = std::f32::consts::FRAC_1_SQRT_2;
            let (a, b, c, d) = (coef[0], coef[1] * C, coef[2] * C, coef[3] * C * C);
            // rows then columns of the 2-point inverse DCT
            let (r0, r1, r2, r3) = (a + b, a - b, c + d, c - d);
            if let Some(row) = plane.get_mut(at..at + 2) {
                row[0] = px(r0 + r2);
                row[1] = px(r1 + r3);
            }
            if let Some(row) = plane.get_mut(at + stride..at + stride + 2) {
                row[0] = px(r0 - r2);
                row[1] = px(r1 - r3);
            }
        }
        _ => {
            // columns: the 4-point inverse DCT down each column, four columns at once
            let row = |v: usize| {
                [
                    coef[4 * v],
                    coef[4 * v + 1],
                    coef[4 * v + 2],
                    coef[4 * v + 3],
                ]
            };
            let rows = idct4_columns(row(0), row(1), row(2), row(3));
            // rows: out[x] = 128 + sum of g[u] cos((2x+1)uπ/8)
            let mut o = [0f32; 16];
            for (y, g) in rows.iter().enumerate() {
                let r = lin(
                    lin(COS4[0], g[0], COS4[1], g[1]),
                    1.0,
                    lin(COS4[2], g[2], COS4[3], g[3]),
                    1.0,
                );
                o[4 * y..4 * y + 4].copy_from_slice(&r);
            }
            let mut px = [0u8; 16];
            for (p, v) in px.iter_mut().zip(o) {
                *p = to_u8(v);
            }
            for y in 0..4 {
                if let Some(out) = plane.get_mut(at + y * stride..at + y * stride + 4) {
                    out.copy_from_slice(&px[4 * y..4 * y + 4]);
                }
            }
        }
    }
}

/// `v + 128` rounded and limited to 0..=255: adding 2^23 puts the rounded integer in the
/// float's low mantissa bits (no saturating float-to-int conversion per pixel, and it
/// vectorises).
#[inline(always)]
fn to_u8(v: f32) -> u8 {
    let v = (v + 128.0).clamp(0.0, 255.0);
    ((v + 8_388_608.0).to_bits() & 0xff) as u8
}

const C1: f32 = 0.923_879_5; // cos(π/8)
const C2: f32 = std::f32::consts::FRAC_1_SQRT_2; // cos(2π/8)
const C3: f32 = 0.382_683_43; // cos(3π/8)

/// `COS4[u][x]` = cos((2x+1)uπ/8).
const COS4: [[f32; 4]; 4] = [
    [1.0, 1.0, 1.0, 1.0],
    [C1, C3, -C3, -C1],
    [C2, -C2, -C2, C2],
    [C3, -C1, C1, -C3],
];

type F4 = [f32; 4];

#[inline(always)]
fn lin(a: F4, ka: f32, b: F4, kb: f32) -> F4 {
    [
        a[0] * ka + b[0] * kb,
        a[1] * ka + b[1] * kb,
        a[2] * ka + b[2] * kb,
        a[3] * ka + b[3] * kb,
    ]
}

/// The 4-point inverse DCT of four columns at once (`g0` to `g3`: the coefficients' rows).
#[inline(always)]
fn idct4_columns(g0: F4, g1: F4, g2: F4, g3: F4) -> [F4; 4] {
    let (e0, e1) = (lin(g0, 1.0, g2, C2), lin(g0, 1.0, g2, -C2));
    let (o0, o1) = (lin(g1, C1, g3, C3), lin(g1, C3, g3, -C1));
    [
        lin(e0, 1.0, o0, 1.0),
        lin(e1, 1.0, o1, 1.0),
        lin(e1, 1.0, o1, -1.0),
        lin(e0, 1.0, o0, -1.0),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

    /// A `w`×`h` picture with smooth areas, edges and texture.
    fn picture(w: u16, h: u16) -> Vec<u8> {
        let mut px = Vec::with_capacity(usize::from(w) * usize::from(h) * 3);
        for y in 0..usize::from(h) {
            for x in 0..usize::from(w) {
                let edge = if (x / 13 + y / 9) % 2 == 0 { 60 } else { 0 };
                let tex = ((x * 7 + y * 13) % 17) as u8;
                px.push((x * 255 / usize::from(w)) as u8 / 2 + edge + tex);
                px.push((y * 255 / usize::from(h)) as u8 / 2 + tex * 2);
                px.push(200 - edge - tex);
            }
        }
        px
    }

    fn encode(
        w: u16,
        h: u16,
        sampling: Option<SamplingFactor>,
        restart: u16,
        progressive: bool,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        let mut e = Encoder::new(&mut out, 90);
        let color = match sampling {
            Some(s) => {
                e.set_sampling_factor(s);
                ColorType::Rgb
            }
            None => ColorType::Luma,
        };
        e.set_restart_interval(restart);
        e.set_progressive(progressive);
        let px = picture(w, h);
        let px = if sampling.is_none() {
            px.iter().step_by(3).copied().collect()
        } else {
            px
        };
        e.encode(&px, w, h, color).unwrap();
        out
    }

    /// Peak signal-to-noise ratio of `small` against the full decode averaged over runs of
    /// `8/n` pixels (blocks cut by the image's edge left out).
    fn psnr_against_full(bytes: &[u8], small: &RgbImage, n: usize) -> f64 {
        let full = crate::check::decode(bytes, u64::MAX).unwrap().to_rgb8();
        let g = 8 / n;
        let (w, h) = (full.width() as usize / g, full.height() as usize / g);
        let mut se = 0.0;
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    let mut s = 0.0;
                    for dy in 0..g {
                        for dx in 0..g {
                            s += f64::from(
                                full.get_pixel((x * g + dx) as u32, (y * g + dy) as u32)[c],
                            );
                        }
                    }
                    let d = s / (g * g) as f64 - f64::from(small.get_pixel(x as u32, y as u32)[c]);
                    se += d * d;
                }
            }
        }
        10.0 * (255.0f64 * 255.0 / (se / (w * h * 3) as f64)).log10()
    }

    #[test]
    fn each_layout_and_scale_is_the_full_decode_averaged() {
        // sizes that are no multiple of a block or an MCU
        let (w, h) = (203u16, 117u16);
        let layouts = [
            Some(SamplingFactor::R_4_4_4),
            Some(SamplingFactor::R_4_2_2),
            Some(SamplingFactor::R_4_4_0),
            Some(SamplingFactor::R_4_2_0),
            None,
        ];
        for sampling in layouts {
            for restart in [0, 3] {
                let bytes = encode(w, h, sampling, restart, false);
                for n in [1usize, 2, 4] {
                    let (mw, mh) = ((203 * n).div_ceil(8) as u32, (117 * n).div_ceil(8) as u32);
                    let img = decode(&bytes, u64::MAX, mw, mh)
                        .unwrap()
                        .unwrap_or_else(|| {
                            panic!("{sampling:?} restart {restart} n {n}: not decoded")
                        });
                    assert_eq!((img.width(), img.height()), (mw, mh), "{sampling:?} n {n}");
                    let psnr = psnr_against_full(&bytes, &img, n);
                    // measured 36.5 to 59 dB; at 1/2, subsampled chroma (kept at 1/4: no 8-point
                    // inverse DCT here) is repeated where a full decode interpolates it, and the
                    // picture's sharp colour edges make that 26.5 to 29.5 dB
                    let sub = !matches!(sampling, None | Some(SamplingFactor::R_4_4_4));
                    let floor = if n == 4 && sub { 25.0 } else { 35.0 };
                    assert!(
                        psnr > floor,
                        "{sampling:?} restart {restart} 1/{}: {psnr:.1} dB",
                        8 / n
                    );
                }
            }
        }
    }

    #[test]
    fn the_smallest_scale_that_covers_the_target_is_taken() {
        assert_eq!(scale_for(1000, 600, 100, 75), Some(1));
        assert_eq!(scale_for(1000, 600, 126, 75), Some(2));
        assert_eq!(scale_for(1000, 600, 256, 154), Some(4));
        assert_eq!(scale_for(1000, 600, 501, 10), None);
        let bytes = encode(203, 117, Some(SamplingFactor::R_4_2_0), 0, false);
        let img = decode(&bytes, u64::MAX, 40, 20).unwrap().unwrap();
        assert_eq!((img.width(), img.height()), (51, 30));
        assert!(decode(&bytes, u64::MAX, 103, 59).unwrap().is_none());
        let err = decode(&bytes, 1_000, 10, 10).unwrap_err();
        assert!(err.contains("203x117 is more than 1000 pixels"), "{err}");
    }

    #[test]
    fn other_kinds_are_left_to_the_full_decoder() {
        let progressive = encode(64, 48, Some(SamplingFactor::R_4_2_0), 0, true);
        let wide_chroma = encode(64, 48, Some(SamplingFactor::R_4_1_1), 0, false);
        let mut cmyk = Vec::new();
        Encoder::new(&mut cmyk, 90)
            .encode(&vec![90u8; 64 * 48 * 4], 64, 48, ColorType::Cmyk)
            .unwrap();
        for (what, bytes) in [
            ("progressive", progressive),
            ("4:1:1", wide_chroma),
            ("CMYK", cmyk),
        ] {
            assert!(decode(&bytes, u64::MAX, 8, 6).unwrap().is_none(), "{what}");
            let img = crate::check::decode_at_least(&bytes, u64::MAX, 8, 6).unwrap();
            assert_eq!((img.width(), img.height()), (64, 48), "{what}");
        }
    }

    #[test]
    fn broken_data_is_an_error_and_never_a_panic() {
        let bytes = encode(96, 80, Some(SamplingFactor::R_4_2_0), 2, false);
        let scan = bytes.windows(2).position(|w| w == [0xff, 0xda]).unwrap();
        for cut in 0..bytes.len() {
            let r = decode(&bytes[..cut], u64::MAX, 12, 10);
            // cut before the scan or in its first half: too little is left to make it up
            if cut < scan + (bytes.len() - scan) / 2 {
                assert!(r.is_err(), "cut at {cut} of {}: {r:?}", bytes.len());
            }
        }
        // every byte changed in turn, in files of three layouts: whatever it gives, it returns
        let files = [
            bytes.clone(),
            encode(40, 24, None, 0, false),
            encode(40, 24, Some(SamplingFactor::R_4_2_2), 0, false),
        ];
        for file in &files {
            for i in 0..file.len() {
                for x in [0x01, 0x5a, 0xff] {
                    let mut b = file.clone();
                    b[i] ^= x;
                    let _ = decode(&b, 1 << 20, 12, 10);
                }
            }
        }
        // the same cut file the full decoder takes (grey where the data is missing) is not
        // judged by its size: the reduced decode's refusal sends it to the full decoder
        let cut = &bytes[..scan + (bytes.len() - scan) / 3];
        let small = crate::check::decode_at_least(cut, u64::MAX, 12, 10);
        let whole = crate::check::decode(cut, u64::MAX);
        assert_eq!(small.is_ok(), whole.is_ok(), "{small:?} against {whole:?}");
        // the farm's broken image: a cut JPEG padded with bytes of 0x55
        let mut b = encode(640, 480, Some(SamplingFactor::R_4_2_0), 0, false);
        b.truncate(600);
        b.extend(std::iter::repeat_n(0x55, 400));
        assert!(decode(&b, u64::MAX, 32, 32).is_err());
    }

    /// The 8-point inverse DCT of one coefficient `f` at (`v`, `u`), averaged over runs of
    /// `8/n` pixels, at (`y`, `x`) of the n×n result.
    fn reference(f: f64, v: usize, u: usize, n: usize, y: usize, x: usize) -> f64 {
        let c = |k: usize| {
            if k == 0 {
                std::f64::consts::FRAC_1_SQRT_2
            } else {
                1.0
            }
        };
        let basis = |k: usize, p: usize| {
            c(k) / 2.0 * ((2 * p + 1) as f64 * k as f64 * std::f64::consts::PI / 16.0).cos()
        };
        let g = 8 / n;
        let mut s = 0.0;
        for py in y * g..(y + 1) * g {
            for px in x * g..(x + 1) * g {
                s += f * basis(v, py) * basis(u, px);
            }
        }
        s / (g * g) as f64
    }

    #[test]
    fn each_kept_frequency_is_the_box_average_of_its_full_inverse_dct() {
        for n in [2usize, 4] {
            for v in 0..n {
                for u in 0..n {
                    let mut quantised = [0i32; 17];
                    quantised[v * n + u] = 3;
                    let mut quant = [0f32; 17];
                    for (at, q) in quant.iter_mut().enumerate().take(n * n) {
                        // a quantiser of 20 everywhere
                        *q = 20.0 * factor(n, at / n) * factor(n, at % n);
                    }
                    let mut plane = vec![0u8; n * n];
                    idct(&quantised, &quant, n, &mut plane, 0, n);
                    for y in 0..n {
                        for x in 0..n {
                            let want = 128.0 + reference(60.0, v, u, n, y, x);
                            let got = f64::from(plane[y * n + x]);
                            assert!(
                                (got - want).abs() <= 0.5 + 1e-3,
                                "n {n} ({v},{u}) at ({y},{x}): {got} against {want:.2}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn subsampled_chroma_lands_on_its_own_pixels_at_every_scale() {
        // four colours in quadrants of 64x48 pixels, split on chroma block edges (16 pixels)
        let (w, h) = (64u16, 48u16);
        let colours = [
            [200u8, 40, 40],
            [40, 40, 200],
            [40, 180, 40],
            [220, 220, 60],
        ];
        let quadrant = |x: usize, y: usize| usize::from(x >= 32) + 2 * usize::from(y >= 32);
        let mut px = Vec::new();
        for y in 0..usize::from(h) {
            for x in 0..usize::from(w) {
                px.extend_from_slice(&colours[quadrant(x, y)]);
            }
        }
        for sampling in [
            SamplingFactor::R_4_2_0,
            SamplingFactor::R_4_2_2,
            SamplingFactor::R_4_4_0,
        ] {
            let mut bytes = Vec::new();
            let mut e = Encoder::new(&mut bytes, 100);
            e.set_sampling_factor(sampling);
            e.encode(&px, w, h, ColorType::Rgb).unwrap();
            for n in [1usize, 2, 4] {
                let img = decode(&bytes, u64::MAX, (64 * n / 8) as u32, (48 * n / 8) as u32)
                    .unwrap()
                    .unwrap();
                let g = 8 / n;
                for y in 0..img.height() as usize {
                    for x in 0..img.width() as usize {
                        // the output pixel's source square lies in one quadrant
                        let want = colours[quadrant(x * g, y * g)];
                        let got = img.get_pixel(x as u32, y as u32).0;
                        for c in 0..3 {
                            assert!(
                                (i32::from(got[c]) - i32::from(want[c])).abs() <= 24,
                                "{sampling:?} 1/{g} at ({x},{y}): {got:?} against {want:?}"
                            );
                        }
                    }
                }
            }
        }
    }
}
