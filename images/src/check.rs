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

/// `img` resized to `width`×`height` with SIMD kernels, averaging the pixels each output pixel
/// covers (a box filter, as OpenCV's INTER_AREA, which img2dataset downsizes with): the right
/// filter for shrinking, and the cheapest that does not alias. Images of 16-bit or float
/// channels are first made 8-bit.
pub fn resize(img: &DynamicImage, width: u32, height: u32) -> Result<DynamicImage, String> {
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
    let filter = FirFilter::Box;
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

/// Decodes `bytes` into its first frame, within `max_pixels` (an image whose header claims
/// more is not decoded). A JPEG is decoded by zune-jpeg directly, into RGB whatever its colour
/// model (SIMD IDCT and colour conversion chosen at run time): on the benchmark's photos it is
/// faster than jpeg-decoder's DCT-scaled decode at 1/4 or even 1/8, whose Huffman decoding is
/// the cost either way, and faster than the same decoder through the image crate, which copies
/// the pixels again. Other formats go through the image crate.
pub fn decode(bytes: &[u8], max_pixels: u64) -> Result<DynamicImage, String> {
    if image::guess_format(bytes).ok() == Some(ImageFormat::Jpeg) {
        return decode_jpeg(bytes, max_pixels);
    }
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

/// Decodes `bytes` into its first frame at a size of at least `min_w`×`min_h` (or its own, when
/// smaller), within `max_pixels`. A baseline JPEG is decoded at 1/8, 1/4 or 1/2 of its size
/// where that is enough ([`crate::jpeg`]): most of a full decode's work is the inverse DCT,
/// colour conversion and resizing of pixels a shrunken copy averages away. Anything else is
/// decoded whole ([`decode`]), as is a JPEG the reduced decode finds damaged.
pub fn decode_at_least(
    bytes: &[u8],
    max_pixels: u64,
    min_w: u32,
    min_h: u32,
) -> Result<DynamicImage, String> {
    if (min_w, min_h) != (u32::MAX, u32::MAX)
        && image::guess_format(bytes).ok() == Some(ImageFormat::Jpeg)
        && let Ok(Some(img)) = crate::jpeg::decode(bytes, max_pixels, min_w, min_h)
    {
        return Ok(DynamicImage::ImageRgb8(img));
    }
    // what the reduced decode turns down or fails on goes to the full decoder, which is
    // lenient where the data is cut or damaged (the rest of the image grey), whatever the
    // image's size
    decode(bytes, max_pixels)
}

fn decode_jpeg(bytes: &[u8], max_pixels: u64) -> Result<DynamicImage, String> {
    use zune_jpeg::zune_core::bytestream::ZCursor;
    use zune_jpeg::zune_core::colorspace::ColorSpace;
    use zune_jpeg::zune_core::options::DecoderOptions;
    let side = usize::try_from(max_pixels)
        .unwrap_or(usize::MAX)
        .min(1 << 16);
    let options = DecoderOptions::default()
        .set_max_width(side)
        .set_max_height(side)
        .jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut d = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    d.decode_headers().map_err(|e| e.to_string())?;
    let info = d.info().ok_or("no JPEG header")?;
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    if u64::from(w) * u64::from(h) > max_pixels {
        return Err(format!("{w}x{h} is more than {max_pixels} pixels"));
    }
    // grey, CMYK and YCCK all come out as RGB
    let pixels = d.decode().map_err(|e| e.to_string())?;
    let n = pixels.len();
    image::RgbImage::from_raw(w, h, pixels)
        .map(DynamicImage::ImageRgb8)
        .ok_or_else(|| format!("{w}x{h} JPEG decoded to {n} bytes"))
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

/// Checks one image: frames and perceptual hash, or why it does not decode. The hash's
/// thumbnail is taken from a decode at the smallest scale at least [`HASH_INPUT`] square.
pub fn check(
    sha256: &str,
    bytes: &[u8],
    max_pixels: u64,
    hasher: &Hasher,
) -> corpus::images::ImageCheck {
    let result = decode_at_least(bytes, max_pixels, HASH_INPUT, HASH_INPUT).and_then(|img| {
        let frames = frames(bytes)?;
        let small = resize(&img, HASH_INPUT, HASH_INPUT)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(w: u16, h: u16, color: jpeg_encoder::ColorType, channels: usize) -> Vec<u8> {
        let pixels: Vec<u8> = (0..usize::from(w) * usize::from(h) * channels)
            .map(|i| ((i / channels) % 251) as u8)
            .collect();
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, 90)
            .encode(&pixels, w, h, color)
            .unwrap();
        out
    }

    #[test]
    fn jpegs_of_every_colour_model_decode_to_rgb_at_full_size() {
        for (color, channels) in [
            (jpeg_encoder::ColorType::Rgb, 3),
            (jpeg_encoder::ColorType::Luma, 1),
            (jpeg_encoder::ColorType::Cmyk, 4),
        ] {
            let bytes = jpeg(40, 30, color, channels);
            let img = decode(&bytes, 1 << 20).unwrap();
            assert_eq!((img.width(), img.height()), (40, 30), "{color:?}");
            assert!(matches!(img, DynamicImage::ImageRgb8(_)), "{color:?}");
            if channels == 1 {
                let px = img.as_rgb8().unwrap().get_pixel(17, 3).0;
                assert!(px[0] == px[1] && px[1] == px[2], "grey came out {px:?}");
            }
        }
    }

    #[test]
    fn a_bad_jpeg_is_an_error_and_a_big_one_is_not_decoded() {
        let bytes = jpeg(40, 30, jpeg_encoder::ColorType::Rgb, 3);
        for cut in [2, 20, 200] {
            assert!(decode(&bytes[..cut], 1 << 20).is_err(), "cut at {cut}");
        }
        let err = decode(&bytes, 1_000).unwrap_err();
        assert!(err.contains("40x30 is more than 1000 pixels"), "{err}");
    }
}
