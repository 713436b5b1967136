//! Decoding one stored image: whether it decodes, how many frames it has, its perceptual hash.

use std::io::Cursor;

use image::codecs::gif::GifDecoder;
use image::codecs::png::PngDecoder;
use image::codecs::webp::WebPDecoder;
use image::{AnimationDecoder, DynamicImage, ImageFormat, ImageReader, Limits};
use image_hasher::{HashAlg, Hasher, HasherConfig};

/// Most frames counted in an animation.
const MAX_FRAMES: usize = 1_000;

/// The perceptual hash every check uses: a 64-bit gradient hash (dHash), which survives
/// re-encoding and resizing. Changing it changes what stored hashes mean.
pub fn hasher() -> Hasher {
    HasherConfig::new()
        .hash_alg(HashAlg::Gradient)
        .hash_size(8, 8)
        .to_hasher()
}

/// Decoding limits: an image whose header claims more pixels than `max_pixels` is not decoded
/// (a decompression bomb costs nothing).
pub fn limits(max_pixels: u64) -> Limits {
    let mut l = Limits::default();
    let side = (max_pixels as f64).sqrt().ceil().min(u32::MAX as f64) as u32;
    l.max_image_width = Some(side.saturating_mul(4));
    l.max_image_height = Some(side.saturating_mul(4));
    l.max_alloc = Some(max_pixels.saturating_mul(4).saturating_add(64 << 20));
    l
}

/// Decodes `bytes` into its first frame, within `max_pixels`.
pub fn decode(bytes: &[u8], max_pixels: u64) -> Result<DynamicImage, String> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    if reader.format().is_none() {
        return Err("no decoder for this format".to_string());
    }
    reader.limits(limits(max_pixels));
    let (w, h) = reader.into_dimensions().map_err(|e| e.to_string())?;
    if u64::from(w) * u64::from(h) > max_pixels {
        return Err(format!("{w}x{h} is more than {max_pixels} pixels"));
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    reader.limits(limits(max_pixels));
    reader.decode().map_err(|e| e.to_string())
}

/// Frames of an animated GIF, PNG (APNG) or WebP, up to 1,000; 1 for anything else.
pub fn frames(bytes: &[u8]) -> Result<u32, String> {
    let format = image::guess_format(bytes).map_err(|e| e.to_string())?;
    let count = |frames: image::Frames<'_>| -> Result<u32, String> {
        let mut n = 0u32;
        for f in frames.take(MAX_FRAMES) {
            f.map_err(|e| e.to_string())?;
            n += 1;
        }
        Ok(n.max(1))
    };
    match format {
        ImageFormat::Gif => {
            let d = GifDecoder::new(Cursor::new(bytes)).map_err(|e| e.to_string())?;
            count(d.into_frames())
        }
        ImageFormat::Png => {
            let d = PngDecoder::new(Cursor::new(bytes)).map_err(|e| e.to_string())?;
            if d.is_apng().map_err(|e| e.to_string())? {
                count(d.apng().map_err(|e| e.to_string())?.into_frames())
            } else {
                Ok(1)
            }
        }
        ImageFormat::WebP => {
            let d = WebPDecoder::new(Cursor::new(bytes)).map_err(|e| e.to_string())?;
            if d.has_animation() {
                count(d.into_frames())
            } else {
                Ok(1)
            }
        }
        _ => Ok(1),
    }
}

/// Checks one image: frames and perceptual hash, or why it does not decode.
pub fn check(
    sha256: &str,
    bytes: &[u8],
    max_pixels: u64,
    hasher: &Hasher,
) -> corpus::images::ImageCheck {
    let result = decode(bytes, max_pixels).and_then(|img| {
        let frames = frames(bytes)?;
        Ok((frames, hasher.hash_image(&img).as_bytes().to_vec()))
    });
    match result {
        Ok((frames, phash)) => corpus::images::ImageCheck {
            sha256: sha256.to_string(),
            frames: Some(frames),
            phash: Some(phash),
            error: None,
        },
        Err(e) => corpus::images::ImageCheck {
            sha256: sha256.to_string(),
            frames: None,
            phash: None,
            error: Some(e),
        },
    }
}

/// Hamming distance of two hashes of the same length.
pub fn distance(a: &[u8], b: &[u8]) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}
