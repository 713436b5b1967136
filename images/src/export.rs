//! Kept pairs as WebDataset shards: `000000.tar` holding `KEY.jpg` (or the image's own
//! format), `KEY.txt` (the caption) and `KEY.json` (its source, context, page, sizes, hash),
//! with `000000.jsonl`, one line per sample, beside it as img2dataset writes its parquet index,
//! and `stats.json` at the end. Each file is written under a `.partial` name and renamed when
//! complete, so a reader never sees half a shard.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use corpus::images::KeptPair;
use corpus::{Progress, Store};
use image::DynamicImage;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{Error, check};

/// How the shards are written; defaults in [`ExportConfig::default`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExportConfig {
    /// Samples per shard (img2dataset's default, 10,000).
    pub shard_size: usize,
    /// Scale images down so that the longer side is at most this, keeping the aspect ratio
    /// (img2dataset's `keep_ratio_largest` with `resize_only_if_bigger`); `None` keeps sizes.
    pub max_side: Option<u32>,
    /// `jpg`: every image as JPEG (a JPEG not resized keeps its bytes); `original`: the
    /// image's own bytes and format, resized ones as JPEG.
    pub format: String,
    /// JPEG quality (img2dataset's default, 95).
    pub quality: u8,
    /// Images claiming more pixels are not decoded.
    pub max_pixels: u64,
}

impl Default for ExportConfig {
    fn default() -> Self {
        ExportConfig {
            shard_size: 10_000,
            max_side: None,
            format: "jpg".to_string(),
            quality: 95,
            max_pixels: 64_000_000,
        }
    }
}

impl ExportConfig {
    /// Refuses settings that cannot work, naming the key.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |key: &str, why: &str| Err(Error::Config(format!("images.export.{key}: {why}")));
        if self.shard_size == 0 {
            return bad("shard_size", "must be at least 1");
        }
        if self.max_side == Some(0) {
            return bad("max_side", "must be at least 1 when set");
        }
        if !matches!(self.format.as_str(), "jpg" | "original") {
            return bad("format", "must be jpg or original");
        }
        if !(1..=100).contains(&self.quality) {
            return bad("quality", "must be 1 to 100");
        }
        Ok(())
    }
}

/// What the export wrote.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExportReport {
    pub samples: u64,
    pub shards: u64,
    pub resized: u64,
    /// Bytes of the tar files.
    pub bytes: u64,
    pub seconds: f64,
    pub files: Vec<PathBuf>,
}

impl ExportReport {
    /// One line for logs and the CLI.
    pub fn line(&self) -> String {
        format!(
            "{} pairs in {} shards ({} resized, {} bytes) in {:.1} s",
            self.samples, self.shards, self.resized, self.bytes, self.seconds
        )
    }
}

/// One sample ready for the tar.
pub(crate) struct Sample {
    image: Vec<u8>,
    extension: &'static str,
    width: u32,
    height: u32,
    resized: bool,
}

/// Writes every kept pair of the last filter run into `output` (created; it must be empty).
pub fn export(
    store: &Store,
    output: &Path,
    config: &ExportConfig,
    progress: &dyn Progress,
) -> Result<ExportReport, Error> {
    config.validate()?;
    let last = store.last_run("images-filter")?;
    let Some(last) = last.filter(|r| r.is_done()) else {
        return Err(Error::NotJudged(format!(
            "{}: no complete `images filter` run; run it before exporting",
            store.path().display()
        )));
    };
    if last.config.get("captions_only") == Some(&serde_json::Value::Bool(true)) {
        return Err(Error::NotJudged(format!(
            "{}: the last `images filter` judged captions only; run it without \
             --captions-only before exporting",
            store.path().display()
        )));
    }
    let unjudged = store.unjudged_pairs()?;
    if unjudged > 0 {
        return Err(Error::NotJudged(format!(
            "{}: {unjudged} image-text pairs have no verdict (pages extracted again after the \
             last `images filter`); run it again before exporting",
            store.path().display()
        )));
    }
    let mut writer = Writer::create(output, config)?;
    let mut after = 0i64;
    progress.start("exporting pairs", None);
    loop {
        let pairs = store.kept_pairs_page(after, 256)?;
        let Some(last) = pairs.last() else { break };
        after = last.id;
        let samples: Vec<Result<Sample, Error>> =
            pairs.par_iter().map(|p| prepare(p, config)).collect();
        for (p, s) in pairs.iter().zip(samples) {
            writer.push(p, &s?)?;
        }
        progress.update(writer.report.samples, writer.report.samples);
    }
    progress.finish();
    writer.finish()
}

/// Shards being written: a new one every `shard_size` samples, `stats.json` at the end.
pub(crate) struct Writer {
    output: PathBuf,
    config: ExportConfig,
    width: usize,
    shard: Option<Shard>,
    in_shard: usize,
    started: std::time::Instant,
    pub(crate) report: ExportReport,
}

impl Writer {
    /// Creates `output`, refusing one that holds files.
    pub(crate) fn create(output: &Path, config: &ExportConfig) -> Result<Writer, Error> {
        config.validate()?;
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |err| Error::Io { path, err }
        };
        if output.exists() {
            let mut entries = std::fs::read_dir(output).map_err(io(output))?;
            if entries.next().is_some() {
                return Err(Error::OutputExists(output.to_path_buf()));
            }
        }
        std::fs::create_dir_all(output).map_err(io(output))?;
        Ok(Writer {
            output: output.to_path_buf(),
            config: config.clone(),
            width: digits(config.shard_size - 1),
            shard: None,
            in_shard: 0,
            started: std::time::Instant::now(),
            report: ExportReport::default(),
        })
    }

    pub(crate) fn push(&mut self, p: &KeptPair, s: &Sample) -> Result<(), Error> {
        if self.shard.is_none() {
            self.shard = Some(Shard::create(&self.output, self.report.shards)?);
            self.in_shard = 0;
        }
        let key = format!(
            "{:06}{:0width$}",
            self.report.shards,
            self.in_shard,
            width = self.width
        );
        if let Some(sh) = self.shard.as_mut() {
            sh.add(&key, p, s)?;
        }
        self.in_shard += 1;
        self.report.samples += 1;
        self.report.resized += u64::from(s.resized);
        if self.in_shard == self.config.shard_size
            && let Some(sh) = self.shard.take()
        {
            self.report.bytes += sh.finish(&mut self.report.files)?;
            self.report.shards += 1;
        }
        Ok(())
    }

    pub(crate) fn finish(mut self) -> Result<ExportReport, Error> {
        if let Some(sh) = self.shard.take() {
            self.report.bytes += sh.finish(&mut self.report.files)?;
            self.report.shards += 1;
        }
        self.report.seconds = self.started.elapsed().as_secs_f64();
        let text = serde_json::to_string_pretty(&serde_json::json!({
            "samples": self.report.samples,
            "shards": self.report.shards,
            "resized": self.report.resized,
            "config": self.config,
        }))
        .unwrap_or_default();
        write_atomic(&self.output.join("stats.json"), text.as_bytes())?;
        Ok(self.report)
    }
}

fn digits(mut n: usize) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

/// The size an image of `w`×`h` is written at, when the export resizes it.
pub(crate) fn target(w: u32, h: u32, config: &ExportConfig) -> Option<(u32, u32)> {
    config.max_side.filter(|&m| w.max(h) > m).map(|m| {
        let scale = f64::from(m) / f64::from(w.max(h));
        (
            ((f64::from(w) * scale).round() as u32).max(1),
            ((f64::from(h) * scale).round() as u32).max(1),
        )
    })
}

/// Whether the export writes an image's own bytes (a JPEG, or any format with `original`,
/// that is not resized).
pub(crate) fn keeps_bytes(format: &str, w: u32, h: u32, config: &ExportConfig) -> bool {
    target(w, h, config).is_none() && (config.format == "original" || format == "jpeg")
}

pub(crate) fn prepare(p: &KeptPair, config: &ExportConfig) -> Result<Sample, Error> {
    let (w, h) = (p.width.unwrap_or(0), p.height.unwrap_or(0));
    if keeps_bytes(&p.format, w, h, config) {
        return Ok(Sample {
            image: p.body.clone(),
            extension: extension(&p.format),
            width: w,
            height: h,
            resized: false,
        });
    }
    let (tw, th) = decode_size(w, h, config);
    let img = check::decode_at_least(&p.body, config.max_pixels, tw, th)
        .map_err(|why| encode_error(p.id, &p.image_url, why))?;
    render(&img, w, h, config).map_err(|why| encode_error(p.id, &p.image_url, why))
}

/// The least size an image of `w`×`h` (from its header; 0 when unknown) must be decoded at
/// for the export: its target when it is shrunk (a JPEG is then decoded at the smallest DCT
/// scale that covers it), and at least the hash's input square, so that the one-pass filter
/// takes its hash and its sample from one decode and `export` writes the same samples; else
/// its whole size.
pub(crate) fn decode_size(w: u32, h: u32, config: &ExportConfig) -> (u32, u32) {
    match target(w, h, config) {
        Some((tw, th)) if w > 0 && h > 0 => (tw.max(check::HASH_INPUT), th.max(check::HASH_INPUT)),
        _ => (u32::MAX, u32::MAX),
    }
}

fn encode_error(pair: i64, url: &str, why: String) -> Error {
    Error::Encode {
        pair,
        url: url.to_string(),
        why,
    }
}

/// A decoded image (at any scale) as the export writes it: resized to the target of its
/// original `w`×`h` when the export resizes, and JPEG-encoded.
pub(crate) fn render(
    img: &DynamicImage,
    w: u32,
    h: u32,
    config: &ExportConfig,
) -> Result<Sample, String> {
    let resized = target(w, h, config);
    let img = match resized {
        Some((nw, nh)) => std::borrow::Cow::Owned(check::resize(img, nw, nh)?),
        None => std::borrow::Cow::Borrowed(img),
    };
    let rgb = img.to_rgb8();
    let (w16, h16) = (
        u16::try_from(rgb.width())
            .map_err(|_| format!("{} pixels wide: too wide for JPEG", rgb.width()))?,
        u16::try_from(rgb.height())
            .map_err(|_| format!("{} pixels high: too high for JPEG", rgb.height()))?,
    );
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, config.quality);
    // 4:2:0 chroma at every quality, as libjpeg's defaults and OpenCV's imencode (which
    // img2dataset writes with) have it; jpeg-encoder would switch to 4:4:4 from quality 90,
    // for files 1.7 times as large that take longer to write and to read
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
    encoder
        .encode(rgb.as_raw(), w16, h16, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| e.to_string())?;
    Ok(Sample {
        image: out,
        extension: "jpg",
        width: rgb.width(),
        height: rgb.height(),
        resized: resized.is_some(),
    })
}

fn extension(format: &str) -> &'static str {
    match format {
        "jpeg" => "jpg",
        "png" => "png",
        "gif" => "gif",
        "webp" => "webp",
        "bmp" => "bmp",
        _ => "img",
    }
}

struct Shard {
    tar: tar::Builder<BufWriter<File>>,
    index: Vec<u8>,
    path: PathBuf,
    index_path: PathBuf,
}

fn partial(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".partial");
    PathBuf::from(p)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = partial(path);
    let io = |err| Error::Io {
        path: path.to_path_buf(),
        err,
    };
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

impl Shard {
    fn create(dir: &Path, n: u64) -> Result<Shard, Error> {
        let path = dir.join(format!("{n:06}.tar"));
        let file = File::create(partial(&path)).map_err(|err| Error::Io {
            path: path.clone(),
            err,
        })?;
        Ok(Shard {
            tar: tar::Builder::new(BufWriter::new(file)),
            index: Vec::new(),
            index_path: dir.join(format!("{n:06}.jsonl")),
            path,
        })
    }

    fn add(&mut self, key: &str, p: &KeptPair, s: &Sample) -> Result<(), Error> {
        let meta = serde_json::json!({
            "key": key,
            "caption": p.caption,
            "caption_source": p.caption_source,
            "context": p.context,
            "url": p.image_url,
            "page_url": p.page_url,
            "page_title": p.page_title,
            "sha256": p.sha256,
            "original_width": p.width,
            "original_height": p.height,
            "width": s.width,
            "height": s.height,
            "status": "success",
        });
        let json = serde_json::to_vec(&meta).unwrap_or_default();
        let io = |err| Error::Io {
            path: self.path.clone(),
            err,
        };
        for (name, data) in [
            (format!("{key}.{}", s.extension), s.image.as_slice()),
            (format!("{key}.txt"), p.caption.as_bytes()),
            (format!("{key}.json"), json.as_slice()),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_cksum();
            self.tar.append_data(&mut header, &name, data).map_err(io)?;
        }
        self.index.extend_from_slice(&json);
        self.index.push(b'\n');
        Ok(())
    }

    fn finish(self, files: &mut Vec<PathBuf>) -> Result<u64, Error> {
        let io = |err| Error::Io {
            path: self.path.clone(),
            err,
        };
        let mut w = self.tar.into_inner().map_err(io)?;
        w.flush().map_err(io)?;
        let file = w.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        let bytes = file.metadata().map_err(io)?.len();
        std::fs::rename(partial(&self.path), &self.path).map_err(io)?;
        write_atomic(&self.index_path, &self.index)?;
        files.push(self.path);
        files.push(self.index_path);
        Ok(bytes)
    }
}
