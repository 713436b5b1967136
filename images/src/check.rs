//! Decoding one stored image: whether it decodes, how many frames it has, its perceptual hash.

use std::io::Cursor;

use fast_image_resize::{FilterType as FirFilter, ResizeAlg, ResizeOptions, Resizer};
use image::codecs::gif::GifDecoder;
use image::codecs::png::PngDecoder;
use image::codecs::webp::WebPDecoder;
use image::imageops::FilterType;
use image::{AnimationDecoder, DynamicImage, ImageFormat, ImageReader, Limits};
use image_hasher::{HashAlg, Hasher, HasherConfig};

/// Most frames counted in an animation.
const MAX_FRAMES: usize = 1_000;

/// The perceptual hash every check uses: a 64-bit gradient hash (dHash) of the image first
/// shrunk to [`HASH_INPUT`] pixels square by area averaging, which survives re-encoding and
/// resizing. Changing it changes what stored hashes mean.
pub fn hasher() -> Hasher {
    HasherConfig::new()
        .hash_alg(HashAlg::Gradient)
        .hash_size(8, 8)
        .resize_filter(FilterType::Triangle)
        .to_hasher()
}

/// The side of the square an image is shrunk to before it is hashed.
pub const HASH_INPUT: u32 = 32;

/// `img` resized to `width`×`height` with SIMD kernels: `area` averages the pixels each output
/// pixel covers (as OpenCV's INTER_AREA), otherwise a bilinear filter widened to the scale.
/// Images of 16-bit or float channels are first made 8-bit.
pub fn resize(
    img: &DynamicImage,
    width: u32,
    height: u32,
    area: bool,
) -> Result<DynamicImage, String> {
    let src = match img {
        DynamicImage::ImageLuma8(_)
        | DynamicImage::ImageLumaA8(_)
        | DynamicImage::ImageRgb8(_)
        | DynamicImage::ImageRgba8(_) => std::borrow::Cow::Borrowed(img),
        other if other.color().has_alpha() => {
            std::borrow::Cow::Owned(DynamicImage::ImageRgba8(other.to_rgba8()))
        }
        other => std::borrow::Cow::Owned(DynamicImage::ImageRgb8(other.to_rgb8())),
    };
    let mut dst = DynamicImage::new(width.max(1), height.max(1), src.color());
    let filter = if area {
        FirFilter::Box
    } else {
        FirFilter::Bilinear
    };
    Resizer::new()
        .resize(
            src.as_ref(),
            &mut dst,
            &ResizeOptions::new().resize_alg(ResizeAlg::Convolution(filter)),
        )
        .map_err(|e| e.to_string())?;
    Ok(dst)
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
    // the header read once: its size checked before any pixel is decoded
    let decoder = reader.into_decoder().map_err(|e| e.to_string())?;
    let (w, h) = image::ImageDecoder::dimensions(&decoder);
    if u64::from(w) * u64::from(h) > max_pixels {
        return Err(format!("{w}x{h} is more than {max_pixels} pixels"));
    }
    DynamicImage::from_decoder(decoder).map_err(|e| e.to_string())
}

/// Decodes `bytes` at the smallest size whose sides are at least `min_width` and `min_height`
/// (or the full size, if smaller): a JPEG is scaled while it is decoded, by 1/2, 1/4 or 1/8 in
/// the DCT; other formats are decoded whole. Within `max_pixels`, as [`decode`].
pub fn decode_at_least(
    bytes: &[u8],
    min_width: u32,
    min_height: u32,
    max_pixels: u64,
) -> Result<DynamicImage, String> {
    if image::guess_format(bytes).ok() != Some(ImageFormat::Jpeg) {
        return decode(bytes, max_pixels);
    }
    let mut d = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    d.read_info().map_err(|e| e.to_string())?;
    let info = d.info().ok_or("no JPEG header")?;
    let (w, h) = (u64::from(info.width), u64::from(info.height));
    if w * h > max_pixels {
        return Err(format!("{w}x{h} is more than {max_pixels} pixels"));
    }
    let clamp = |v: u32| u16::try_from(v).unwrap_or(u16::MAX);
    let (sw, sh) = d
        .scale(clamp(min_width), clamp(min_height))
        .map_err(|e| e.to_string())?;
    d.set_max_decoding_buffer_size(
        usize::try_from(max_pixels.saturating_mul(4)).unwrap_or(usize::MAX),
    );
    let pixels = d.decode().map_err(|e| e.to_string())?;
    let info = d.info().ok_or("no JPEG header")?;
    let (sw, sh) = (u32::from(sw), u32::from(sh));
    let bad = || format!("{sw}x{sh} JPEG decoded to {} bytes", pixels.len());
    match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => image::RgbImage::from_raw(sw, sh, pixels.clone())
            .map(DynamicImage::ImageRgb8)
            .ok_or_else(bad),
        jpeg_decoder::PixelFormat::L8 => image::GrayImage::from_raw(sw, sh, pixels.clone())
            .map(DynamicImage::ImageLuma8)
            .ok_or_else(bad),
        // 16-bit grey and CMYK: rare on the web, decoded whole by the general decoder
        _ => decode(bytes, max_pixels),
    }
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
    let result = decode_at_least(bytes, HASH_INPUT, HASH_INPUT, max_pixels).and_then(|img| {
        let frames = frames(bytes)?;
        let small = resize(&img, HASH_INPUT, HASH_INPUT, true)?;
        Ok((frames, hasher.hash_image(&small).as_bytes().to_vec()))
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
