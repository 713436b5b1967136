//! Generated images and the gallery pages that show them, with every case an image-text
//! harvester meets: captions from `<figcaption>`, alt text and a caption line; one image under
//! several URLs; a re-encoded, resized near-duplicate; an icon, a thumbnail, a tracking pixel,
//! a banner-shaped image, an animation; an image served with `X-Robots-Tag: noai`, a corrupt
//! one, one on a robots-disallowed path, one past the size limit, one missing; captions that
//! are English, too short, a file name, a stock phrase, a site slogan on every gallery, one
//! alt text on two images of a page.
//!
//! Every image is drawn from a seed taken from its path (query ignored), so a URL always
//! answers the same bytes; images are made on first request and kept.

use std::io::Cursor;

use image::codecs::gif::GifEncoder;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::webp::WebPEncoder;
use image::imageops::FilterType;
use image::{Delay, DynamicImage, Frame, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};

use crate::text::Rng;

/// Galleries per host when images are on.
pub const GALLERIES: usize = 3;

/// Bytes of the image past the default size limit (10 MiB).
pub const HUGE_BYTES: usize = 12 << 20;

/// A picture of `w`×`h`: a 6×6 grid of colour blocks with a gradient and noise, so that two
/// seeds give perceptual hashes far apart.
pub fn picture(seed: u64, w: u32, h: u32) -> RgbImage {
    let mut rng = Rng::new(seed ^ 0x1234_5678_9abc_def0);
    let blocks: Vec<[u8; 3]> = (0..36)
        .map(|_| {
            let v = rng.next_u64();
            [v as u8, (v >> 8) as u8, (v >> 16) as u8]
        })
        .collect();
    let mut img = RgbImage::new(w.max(1), h.max(1));
    for (x, y, p) in img.enumerate_pixels_mut() {
        let bx = (x * 6 / w.max(1)).min(5) as usize;
        let by = (y * 6 / h.max(1)).min(5) as usize;
        let b = blocks[by * 6 + bx];
        let noise = (rng.next_u64() % 24) as u8;
        let grad = ((x + y) % 32) as u8;
        *p = Rgb([
            b[0].saturating_add(noise).saturating_sub(grad),
            b[1].saturating_add(grad / 2),
            b[2].saturating_sub(noise / 2),
        ]);
    }
    img
}

pub fn jpeg(img: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    let _ = JpegEncoder::new_with_quality(&mut out, quality).encode_image(img);
    out.into_inner()
}

fn encode(img: &RgbImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    let _ = DynamicImage::ImageRgb8(img.clone()).write_to(&mut out, format);
    out.into_inner()
}

fn webp(img: &RgbImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    let _ = WebPEncoder::new_lossless(&mut out).encode(
        img.as_raw(),
        img.width(),
        img.height(),
        image::ExtendedColorType::Rgb8,
    );
    out.into_inner()
}

fn animated_gif(seed: u64) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = GifEncoder::new(&mut out);
        let _ = enc.set_repeat(image::codecs::gif::Repeat::Infinite);
        let frames = (0..3u64).map(|k| {
            let rgb = picture(seed + k, 300, 300);
            let rgba = RgbaImage::from_fn(300, 300, |x, y| {
                let p = rgb.get_pixel(x, y);
                Rgba([p[0], p[1], p[2], 255])
            });
            Frame::from_parts(rgba, 0, 0, Delay::from_numer_denom_ms(200, 1))
        });
        let _ = enc.encode_frames(frames);
    }
    out
}

/// A 1×1 transparent GIF.
pub fn pixel_gif() -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    let _ = DynamicImage::ImageRgba8(RgbaImage::from_pixel(1, 1, Rgba([0, 0, 0, 0])))
        .write_to(&mut out, ImageFormat::Gif);
    out.into_inner()
}

fn seed_of(host: usize, path: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ host as u64;
    for b in path.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Width and height of `/pics/ID.jpg`: widths 400 to 1,279, aspect 0.6 to 1.8, as the
/// photos of news and forum pages are.
pub fn pic_size(seed: u64) -> (u32, u32) {
    let mut rng = Rng::new(seed);
    let w = 400 + rng.below(880) as u32;
    let aspect = 0.6 + rng.below(120) as f64 / 100.0;
    (w, ((f64::from(w) / aspect) as u32).max(200))
}

/// An image response: content type, extra headers, body.
pub type Answer = (&'static str, Vec<(&'static str, String)>, Vec<u8>);

/// Whether [`serve`] may answer `route` (a path without its query).
pub fn is_image_route(route: &str) -> bool {
    ["/pics/", "/photos/", "/shared/", "/static/", "/img/"]
        .iter()
        .any(|p| route.starts_with(p))
        || route == "/t.gif"
        || (route.starts_with("/private/") && route.ends_with(".jpg"))
}

/// What an image path answers: content type, extra headers, body; `None` when the path is
/// no image of the farm.
pub fn serve(host: usize, path: &str) -> Option<Answer> {
    let route = path.split('?').next().unwrap_or(path);
    let seed = seed_of(host, route);
    let jpg = "image/jpeg";
    if let Some(id) = route
        .strip_prefix("/pics/")
        .and_then(|r| r.strip_suffix(".jpg"))
    {
        let id: u64 = id.parse().ok()?;
        let (w, h) = pic_size(seed_of(host, &id.to_string()));
        return Some((jpg, vec![], jpeg(&picture(seed, w, h), 85)));
    }
    if route.starts_with("/img/") && route.ends_with(".jpg") {
        return Some((jpg, vec![], jpeg(&picture(seed, 600, 400), 85)));
    }
    if route == "/t.gif" {
        return Some(("image/gif", vec![], pixel_gif()));
    }
    if route == "/static/icon-share.png" {
        return Some((
            "image/png",
            vec![],
            encode(&picture(seed, 32, 32), ImageFormat::Png),
        ));
    }
    if route == "/shared/same.jpg" {
        return Some((jpg, vec![], jpeg(&picture(seed, 720, 480), 90)));
    }
    if route.starts_with("/private/") && route.ends_with(".jpg") {
        return Some((jpg, vec![], jpeg(&picture(seed, 640, 480), 90)));
    }
    let rest = route.strip_prefix("/photos/")?;
    let (n, name) = rest.split_once('/')?;
    let n: u64 = n.parse().ok()?;
    let base_seed = seed_of(host, &format!("/photos/{n}/a.png"));
    let body = match name {
        "a.png" => {
            return Some((
                "image/png",
                vec![],
                encode(&picture(base_seed, 640, 480), ImageFormat::Png),
            ));
        }
        "b.jpg" => jpeg(&picture(seed, 800, 600), 90),
        "c.webp" => return Some(("image/webp", vec![], webp(&picture(seed, 500, 400)))),
        // a.png scaled to 80% and saved as a low-quality JPEG
        "near.jpg" => {
            let img = image::imageops::resize(
                &picture(base_seed, 640, 480),
                512,
                384,
                FilterType::Triangle,
            );
            jpeg(&img, 60)
        }
        "thumb.jpg" => jpeg(&picture(seed, 120, 90), 85),
        "noai.jpg" => {
            return Some((
                jpg,
                vec![("x-robots-tag", "noai, noimageai".to_string())],
                jpeg(&picture(seed, 640, 480), 85),
            ));
        }
        "broken.jpg" => {
            let mut b = jpeg(&picture(seed, 640, 480), 85);
            b.truncate(600);
            b.extend(std::iter::repeat_n(0x55, 400));
            b
        }
        "huge.png" => {
            let mut b = encode(&picture(seed, 64, 64), ImageFormat::Png);
            b.resize(HUGE_BYTES, 0);
            return Some(("image/png", vec![], b));
        }
        "anim.gif" => return Some(("image/gif", vec![], animated_gif(seed))),
        "wide.jpg" => jpeg(&picture(seed, 1200, 300), 85),
        "en.jpg" | "click.jpg" | "slogan.jpg" | "short.jpg" | "fname.jpg" | "title1.jpg"
        | "title2.jpg" => jpeg(&picture(seed, 600, 450), 85),
        _ => return None,
    };
    Some((jpg, vec![], body))
}

/// The gallery page `n` of host `site`, in the page's `<div class=article>`.
pub fn gallery(site: usize, n: usize, title: &str, paras: &[String]) -> String {
    let p = |i: usize| {
        paras
            .get(i % paras.len().max(1))
            .cloned()
            .unwrap_or_default()
    };
    let fig = |src: &str, caption: &str| {
        format!("<figure><img src=\"{src}\"><figcaption>{caption}</figcaption></figure>")
    };
    let mut s = format!("<div class=\"article\"><h1>{title}</h1><p>{}</p>", p(0));
    s.push_str(&fig(
        &format!("/photos/{n}/a.png"),
        &format!("图集{n}的第一张照片：清晨的江边"),
    ));
    s.push_str(&format!("<p>{}</p>", p(1)));
    s.push_str(&format!(
        "<img src=\"/photos/{n}/b.jpg\" alt=\"站点{site}图集{n}：古镇的石板路和老房子\">"
    ));
    s.push_str(&format!("<p>{}</p>", p(2)));
    s.push_str(&format!(
        "<div class=\"pic\"><img src=\"/photos/{n}/c.webp\" alt=\"DSC0{n}123.JPG\"><p class=\"pic-text\">图为站点{site}图集{n}里的一座石桥</p></div>"
    ));
    s.push_str(&fig(
        &format!("/photos/{n}/near.jpg"),
        &format!("图集{n}同一张照片的缩小版本"),
    ));
    s.push_str(&fig(
        &format!("/shared/same.jpg?from={n}"),
        &format!("站点{site}图集{n}转载的那张合影"),
    ));
    s.push_str("<img src=\"/static/icon-share.png\" alt=\"分享到微信朋友圈\">");
    s.push_str(&format!(
        "<img src=\"/photos/{n}/thumb.jpg\" alt=\"一张小小的缩略图片\">"
    ));
    s.push_str(&format!("<img src=\"/t.gif?page={n}\">"));
    s.push_str(&fig(
        &format!("/photos/{n}/noai.jpg"),
        "这张照片不许用于训练模型",
    ));
    s.push_str(&fig(
        &format!("/photos/{n}/broken.jpg"),
        "一张已经损坏的图片文件",
    ));
    s.push_str(&fig(&format!("/private/{n}.jpg"), "藏在私有目录里的照片"));
    s.push_str(&fig(
        &format!("/photos/{n}/huge.png"),
        "一张特别大的图片文件",
    ));
    s.push_str(&fig(&format!("/photos/{n}/anim.gif"), "会动的表情动画图片"));
    s.push_str(&fig(&format!("/photos/{n}/wide.jpg"), "江边全景的长条照片"));
    s.push_str(&format!(
        "<img src=\"/photos/{n}/en.jpg\" alt=\"Sunset over the river\">"
    ));
    s.push_str(&fig(&format!("/photos/{n}/click.jpg"), "点击查看大图"));
    s.push_str(&fig(
        &format!("/photos/{n}/slogan.jpg"),
        &format!("站点{site}记录美好生活每一天"),
    ));
    s.push_str(&fig(
        &format!("/photos/{n}/missing.jpg"),
        "这张图片已经被删除了",
    ));
    s.push_str(&fig(&format!("/photos/{n}/short.jpg"), "江边"));
    s.push_str(&fig(
        &format!("/photos/{n}/fname.jpg"),
        "IMG_20230501_1234.jpg",
    ));
    // a CMS that writes the page's title into every image's alt
    for k in 1..=2 {
        s.push_str(&format!(
            "<img src=\"/photos/{n}/title{k}.jpg\" alt=\"站点{site}图集{n}的标题写进了每张图\">"
        ));
    }
    s.push_str(&format!("<p>{}</p></div>", p(3)));
    s
}

/// What the filter should decide for each image of a gallery, by file name (`/photos/N/…`
/// unless the path is given whole), with its default settings and fetches allowed to reach
/// loopback: `None` for kept, else the reason.
pub fn expected(n: usize) -> Vec<(String, Option<&'static str>)> {
    let photo = |name: &str| format!("/photos/{n}/{name}");
    vec![
        (photo("a.png"), None),
        (photo("b.jpg"), None),
        (photo("c.webp"), None),
        (photo("near.jpg"), Some("near_duplicate")),
        (
            format!("/shared/same.jpg?from={n}"),
            if n == 0 {
                None
            } else {
                Some("duplicate_image")
            },
        ),
        ("/static/icon-share.png".to_string(), Some("url_pattern")),
        (photo("thumb.jpg"), Some("too_small")),
        (format!("/t.gif?page={n}"), Some("tracking_pixel")),
        (photo("noai.jpg"), Some("fetch_noai")),
        (photo("broken.jpg"), Some("broken")),
        (format!("/private/{n}.jpg"), Some("fetch_robots")),
        (photo("huge.png"), Some("fetch_failed")),
        (photo("anim.gif"), Some("animated")),
        (photo("wide.jpg"), Some("aspect_ratio")),
        (photo("en.jpg"), Some("no_chinese")),
        (photo("click.jpg"), Some("recurring_caption")),
        (photo("slogan.jpg"), None),
        (photo("missing.jpg"), Some("fetch_failed")),
        (photo("short.jpg"), Some("caption_too_short")),
        (photo("fname.jpg"), Some("file_name_caption")),
        (photo("title1.jpg"), Some("repeated_on_page")),
        (photo("title2.jpg"), Some("repeated_on_page")),
    ]
}
