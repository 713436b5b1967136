//! The filter: every image-text pair judged, the first rule that removes it recorded with the
//! value it measured.
//!
//! In order: the fetch (`fetch_failed`, `fetch_noai`, `fetch_robots`, `fetch_not_image`,
//! `not_fetched`), ads, logos, icons and trackers by URL (`url_pattern`), images that do not
//! decode (`broken`) or move (`animated`), tracking pixels (`tracking_pixel`), small images
//! (`too_small`), extreme shapes (`aspect_ratio`); then the caption: none (`no_caption`), a
//! file name (`file_name_caption`), no Chinese (`no_chinese`), too short or too long
//! (`caption_too_short`, `caption_too_long`), a stock phrase or a line that recurs on many pages
//! (`recurring_caption`); last, duplicates: the same bytes as a kept pair's image
//! (`duplicate_image`) or a perceptual hash within `near_distance` bits of one
//! (`near_duplicate`). Pairs are judged in id order (page order), so the first pair of an image
//! is the one kept.

use std::collections::{BTreeMap, HashMap};

use corpus::images::{ImageCheck, ImagePair, ImageVerdict};
use corpus::{Progress, Store};
use rayon::prelude::*;
use regex::Regex;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use std::path::Path;

use corpus::images::KeptPair;

use crate::Error;
use crate::check;
use crate::export::{ExportConfig, ExportReport, Sample, Writer};

/// The filter's thresholds; defaults in [`FilterConfig::default`], each with its source in
/// docs/images.md.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilterConfig {
    /// Shorter side in pixels below which an image is removed (Wukong: 200).
    pub min_side: u32,
    /// Longer side over shorter side above which an image is removed (Wukong: 3).
    pub max_aspect: f64,
    /// Images of at most this many pixels are tracking pixels.
    pub max_tracker_pixels: u64,
    /// Images whose header claims more pixels are not decoded (`broken`).
    pub max_pixels: u64,
    /// Keep animated GIF, APNG and WebP.
    pub allow_animated: bool,
    /// Fewest caption characters, whitespace not counted (LAION-400M: 5).
    pub min_caption_chars: usize,
    /// Most caption characters.
    pub max_caption_chars: usize,
    /// Fewest Han characters in a caption (Wukong keeps captions with Chinese).
    pub min_han_chars: usize,
    /// A caption on more pages than this is a site's stock line, not a description.
    pub max_caption_pages: u32,
    /// Captions removed wherever they appear (compared whole, whitespace ignored).
    pub stock_captions: Vec<String>,
    /// Regexes over the image URL's path and query naming ads, logos, icons and trackers.
    pub url_patterns: Vec<String>,
    /// Largest Hamming distance between 64-bit perceptual hashes of near-duplicates (0 to 7).
    pub near_distance: u32,
    /// Judge the captions alone: no fetch, image or duplicate rules (what a page's pairs
    /// would keep before any image is downloaded).
    pub captions_only: bool,
}

impl Default for FilterConfig {
    fn default() -> Self {
        FilterConfig {
            min_side: 200,
            max_aspect: 3.0,
            max_tracker_pixels: 4,
            max_pixels: 64_000_000,
            allow_animated: false,
            min_caption_chars: 5,
            max_caption_chars: 128,
            min_han_chars: 1,
            max_caption_pages: 10,
            stock_captions: [
                "点击查看大图",
                "点击查看原图",
                "点击图片查看大图",
                "查看源网页",
                "查看原图",
                "展开全文",
                "点击加载更多",
                "图片",
                "配图",
                "示意图",
                "网络配图",
                "图片来源网络",
                "图片来源于网络",
                "资料图",
                "视频截图",
                "网络图片",
                "图片来自网络",
                "扫码关注",
                "扫一扫关注",
                "长按识别二维码",
            ]
            .map(String::from)
            .to_vec(),
            url_patterns: vec![
                r"(?i)(?:^|[/_.\-])(?:logo|icons?|favicon|sprites?|banners?|ads?|advert\w*|adv|tracker|track|pixel|spacer|blank|transparent|btn|button|avatars?|emoji|emoticons?|qrcode|qr|erweima|loading|placeholder)(?:[/_.\-0-9]|$)"
                    .to_string(),
            ],
            near_distance: 6,
            captions_only: false,
        }
    }
}

impl FilterConfig {
    /// Refuses settings that cannot work, naming the key.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |key: &str, why: &str| Err(Error::Config(format!("images.filter.{key}: {why}")));
        if self.max_aspect.is_nan() || self.max_aspect < 1.0 {
            return bad("max_aspect", "must be at least 1");
        }
        if self.max_caption_chars < self.min_caption_chars {
            return bad("max_caption_chars", "must be at least min_caption_chars");
        }
        if self.near_distance > 7 {
            return bad(
                "near_distance",
                "must be 0 to 7 (the index finds hashes that share one of 8 bytes)",
            );
        }
        if self.max_caption_pages == 0 {
            return bad("max_caption_pages", "must be at least 1");
        }
        if self.max_pixels == 0 {
            return bad("max_pixels", "must be at least 1");
        }
        self.patterns().map(|_| ())
    }

    fn patterns(&self) -> Result<Vec<Regex>, Error> {
        self.url_patterns
            .iter()
            .map(|p| {
                Regex::new(p)
                    .map_err(|e| Error::Config(format!("images.filter.url_patterns: {p:?}: {e}")))
            })
            .collect()
    }
}

/// What the filter did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FilterReport {
    pub pairs: u64,
    pub kept: u64,
    /// Images decoded in this run (those checked before are not decoded again).
    pub checked: u64,
    /// Removed pairs by reason.
    pub removed: BTreeMap<String, u64>,
    /// Kept pairs by caption source.
    pub caption_sources: BTreeMap<String, u64>,
    pub seconds: f64,
}

impl FilterReport {
    /// One line for logs and the CLI.
    pub fn line(&self) -> String {
        let removed: Vec<String> = self
            .removed
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        format!(
            "{} pairs: {} kept, removed: {} ({} images decoded, {:.1} s)",
            self.pairs,
            self.kept,
            if removed.is_empty() {
                "none".to_string()
            } else {
                removed.join(", ")
            },
            self.checked,
            self.seconds
        )
    }
}

/// Pairs read from the store at a time.
const PAGE: usize = 1_000;

/// Judges every pair in the store, replacing earlier verdicts.
pub fn filter(
    store: &mut Store,
    config: &FilterConfig,
    progress: &dyn Progress,
) -> Result<FilterReport, Error> {
    judge_run(store, config, None, progress)
}

/// [`filter`] and [`crate::export`] in one pass: each image not checked before is decoded once,
/// at the scale the export needs, and its hash and its sample both come from that decode; kept
/// pairs are written to `output` as they are judged, in the order `export` writes them.
pub fn filter_and_export(
    store: &mut Store,
    config: &FilterConfig,
    export: &ExportConfig,
    output: &Path,
    progress: &dyn Progress,
) -> Result<(FilterReport, ExportReport), Error> {
    if config.captions_only {
        return Err(Error::Config(
            "images.filter.captions_only: judges no image, so it writes none".into(),
        ));
    }
    let mut writer = Writer::create(output, export)?;
    let report = judge_run(store, config, Some((export, &mut writer)), progress)?;
    Ok((report, writer.finish()?))
}

/// One filter run, recorded in `runs` with its outcome.
fn judge_run(
    store: &mut Store,
    config: &FilterConfig,
    export: Option<(&ExportConfig, &mut Writer)>,
    progress: &dyn Progress,
) -> Result<FilterReport, Error> {
    config.validate()?;
    store.lock_stage("images-filter")?;
    let run = store.begin_run("images-filter", config)?;
    let result = run_filter(store, config, run, export, progress);
    let status = corpus::RunStatus::of(&result);
    let report = result.as_ref().cloned().unwrap_or_default();
    store.finish_run(run, status, &report)?;
    result
}

/// What one decode gives the fused pass: the image's check, and its sample when the export
/// writes a rendition rather than the bytes.
fn check_and_render(
    p: &ImagePair,
    body: &[u8],
    config: &FilterConfig,
    export: &ExportConfig,
    hasher: &image_hasher::Hasher,
) -> (ImageCheck, Option<Sample>) {
    let sha = p.sha256.clone().unwrap_or_default();
    let (w, h) = (p.width.unwrap_or(0), p.height.unwrap_or(0));
    let format = p.format.as_deref().unwrap_or("");
    if crate::export::keeps_bytes(format, w, h, export) {
        return (check::check(&sha, body, config.max_pixels, hasher), None);
    }
    // decoded at the export's scale: the sample is what `export` writes, and the hash comes
    // from the same pixels
    let (tw, th) = crate::export::decode_size(w, h, export);
    let result = check::decode_at_least(body, config.max_pixels, tw, th).and_then(|img| {
        let frames = check::frames(body)?;
        let small = check::resize(&img, check::HASH_INPUT, check::HASH_INPUT)?;
        let phash = hasher.hash_image(&small).as_bytes().to_vec();
        Ok((
            frames,
            phash,
            crate::export::render(&img, w, h, export).ok(),
        ))
    });
    match result {
        Ok((frames, phash, sample)) => (
            ImageCheck {
                sha256: sha,
                frames: Some(frames),
                phash: Some(phash),
                error: None,
            },
            sample,
        ),
        Err(e) => (
            ImageCheck {
                sha256: sha,
                frames: None,
                phash: None,
                error: Some(e),
            },
            None,
        ),
    }
}

fn kept_pair(p: &ImagePair, body: Vec<u8>) -> KeptPair {
    KeptPair {
        id: p.id,
        caption: p.caption.clone().unwrap_or_default(),
        caption_source: p.caption_source.clone(),
        context: p.context.clone(),
        image_url: p.image_url.clone(),
        page_url: p.page_url.clone(),
        page_title: p.page_title.clone(),
        sha256: p.sha256.clone().unwrap_or_default(),
        format: p.format.clone().unwrap_or_default(),
        width: p.width,
        height: p.height,
        body,
    }
}

fn run_filter(
    store: &mut Store,
    config: &FilterConfig,
    run: corpus::RunId,
    mut export: Option<(&ExportConfig, &mut Writer)>,
    progress: &dyn Progress,
) -> Result<FilterReport, Error> {
    let started = std::time::Instant::now();
    let mut report = FilterReport::default();
    let patterns = config.patterns()?;

    // decode every image not checked yet
    progress.start("decoding images", None);
    let hasher = check::hasher();
    let mut after = String::new();
    // (the fused pass decodes each image when its pairs are judged)
    if !config.captions_only && export.is_none() {
        loop {
            let batch = store.unchecked_images(&after, 64)?;
            let Some(last) = batch.last() else { break };
            after = last.0.clone();
            let checks: Vec<ImageCheck> = batch
                .par_iter()
                .map(|(sha, body)| check::check(sha, body, config.max_pixels, &hasher))
                .collect();
            store.record_image_checks(&checks)?;
            report.checked += checks.len() as u64;
            progress.update(report.checked, report.checked);
            if progress.cancelled() {
                // the checks made are kept; no pair is judged on half of them
                return Err(Error::Interrupted);
            }
        }
    }
    progress.finish();

    // how many pages each caption is on
    progress.start("counting captions", None);
    let mut pages: FxHashMap<u64, (u32, Option<i64>)> = FxHashMap::default();
    let mut on_page: FxHashMap<(i64, u64), u32> = FxHashMap::default();
    let mut after = 0i64;
    loop {
        let batch = store.image_pairs_page(after, PAGE)?;
        let Some(last) = batch.last() else { break };
        after = last.id;
        for p in &batch {
            if let Some(c) = &p.caption {
                if let Some(doc) = p.doc {
                    *on_page.entry((doc, page_key(c))).or_default() += 1;
                }
                // pages, not pairs: listed pairs (no page) do not count
                let Some(doc) = p.doc else { continue };
                let e = pages.entry(caption_key(c)).or_insert((0, None));
                if e.1 != Some(doc) {
                    e.0 += 1;
                    e.1 = Some(doc);
                }
            }
        }
    }
    progress.finish();

    // judge (in smaller pages when the images' bytes are held for the export)
    let page = if export.is_some() { 256 } else { PAGE };
    progress.start("judging pairs", None);
    store.clear_image_verdicts()?;
    let stock: Vec<String> = config.stock_captions.iter().map(|s| squeeze(s)).collect();
    let mut dedup = Dedup::default();
    let mut checks: HashMap<String, ImageCheck> = HashMap::new();
    let mut after = 0i64;
    loop {
        let batch = store.image_pairs_page(after, page)?;
        let Some(last) = batch.last() else { break };
        after = last.id;
        // fused: decode the images of this page of pairs not checked yet, once each
        let mut samples: HashMap<String, Sample> = HashMap::new();
        let mut bodies: HashMap<String, Vec<u8>> = HashMap::new();
        if let Some((export, _)) = &export {
            let mut todo: Vec<&ImagePair> = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for p in &batch {
                if let Some(sha) = &p.sha256
                    && p.outcome.as_deref() == Some("ok")
                    && !checks.contains_key(sha)
                    && seen.insert(sha.clone())
                {
                    match store.image_check(sha)? {
                        Some(c) => {
                            checks.insert(sha.clone(), c);
                        }
                        None => todo.push(p),
                    }
                }
            }
            let shas: Vec<String> = todo.iter().filter_map(|p| p.sha256.clone()).collect();
            bodies = store.image_bodies(&shas)?.into_iter().collect();
            let done: Vec<(ImageCheck, Option<Sample>)> = todo
                .par_iter()
                .filter_map(|p| {
                    let body = bodies.get(p.sha256.as_deref()?)?;
                    Some(check_and_render(p, body, config, export, &hasher))
                })
                .collect();
            report.checked += done.len() as u64;
            let new: Vec<ImageCheck> = done.iter().map(|(c, _)| c.clone()).collect();
            store.record_image_checks(&new)?;
            for (c, sample) in done {
                if let Some(sample) = sample {
                    samples.insert(c.sha256.clone(), sample);
                }
                checks.insert(c.sha256.clone(), c);
            }
        }
        let mut verdicts = Vec::with_capacity(batch.len());
        let mut kept: Vec<&ImagePair> = Vec::new();
        for p in &batch {
            let check = match &p.sha256 {
                Some(sha) => match checks.get(sha) {
                    Some(c) => Some(c.clone()),
                    None => {
                        let c = store.image_check(sha)?;
                        if let Some(c) = &c {
                            checks.insert(sha.clone(), c.clone());
                        }
                        c
                    }
                },
                None => None,
            };
            let key = p.caption.as_deref().map(caption_key);
            let recurring = key.map_or(0, |k| pages.get(&k).map_or(0, |e| e.0));
            let same_page = match (p.doc, p.caption.as_deref()) {
                (Some(doc), Some(c)) => on_page.get(&(doc, page_key(c))).copied().unwrap_or(1),
                _ => 1,
            };
            let v = judge(
                p,
                check.as_ref(),
                (recurring, same_page),
                &stock,
                &patterns,
                config,
                &mut dedup,
            );
            report.pairs += 1;
            match &v.reason {
                None => {
                    kept.push(p);
                    report.kept += 1;
                    *report
                        .caption_sources
                        .entry(p.caption_source.clone().unwrap_or_default())
                        .or_default() += 1;
                }
                Some(r) => *report.removed.entry(r.clone()).or_default() += 1,
            }
            verdicts.push(v);
        }
        store.record_image_verdicts(run, &verdicts)?;
        if let Some((export, writer)) = export.as_mut() {
            // a kept pair whose image was checked by an earlier run has no sample yet
            let missing: Vec<String> = kept
                .iter()
                .filter_map(|p| p.sha256.clone())
                .filter(|sha| !bodies.contains_key(sha))
                .collect();
            bodies.extend(store.image_bodies(&missing)?);
            let pairs: Vec<KeptPair> = kept
                .iter()
                .map(|p| {
                    // the bytes are needed only where no sample was made from them
                    let sha = p.sha256.as_deref().unwrap_or_default();
                    let body = if samples.contains_key(sha) {
                        Vec::new()
                    } else {
                        bodies.get(sha).cloned().unwrap_or_default()
                    };
                    kept_pair(p, body)
                })
                .collect();
            // made by this page's decode, else prepared now (decoded again, or its own bytes)
            let prepared: Vec<Option<Result<Sample, Error>>> = pairs
                .par_iter()
                .map(|k| {
                    (!samples.contains_key(&k.sha256)).then(|| crate::export::prepare(k, export))
                })
                .collect();
            for (k, prepared) in pairs.iter().zip(prepared) {
                match prepared {
                    Some(s) => writer.push(k, &s?)?,
                    None => {
                        if let Some(made) = samples.get(&k.sha256) {
                            writer.push(k, made)?;
                        }
                    }
                }
            }
        }
        if checks.len() > 100_000 {
            checks.clear();
        }
        progress.update(report.pairs, report.pairs);
    }
    progress.finish();
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Kept images by content hash, and their perceptual hashes indexed by each of their 8 bytes:
/// two hashes within 7 bits share at least one byte, so the candidates of a new hash are the
/// kept hashes with one of its bytes in the same place.
#[derive(Default)]
struct Dedup {
    exact: FxHashMap<String, i64>,
    hashes: Vec<([u8; 8], i64)>,
    index: [FxHashMap<u8, Vec<u32>>; 8],
}

impl Dedup {
    fn near(&self, h: &[u8; 8], max: u32) -> Option<(i64, u32)> {
        let mut best: Option<(i64, u32)> = None;
        for (i, byte) in h.iter().enumerate() {
            for &k in self.index[i].get(byte).into_iter().flatten() {
                let (other, pair) = &self.hashes[k as usize];
                let d = check::distance(h, other);
                if d <= max && best.is_none_or(|(_, b)| d < b) {
                    best = Some((*pair, d));
                }
            }
        }
        best
    }

    fn add(&mut self, sha: &str, h: Option<[u8; 8]>, pair: i64) {
        self.exact.insert(sha.to_string(), pair);
        if let Some(h) = h {
            let k = self.hashes.len() as u32;
            self.hashes.push((h, pair));
            for (i, byte) in h.iter().enumerate() {
                self.index[i].entry(*byte).or_default().push(k);
            }
        }
    }
}

fn verdict(p: &ImagePair, reason: &str, value: Option<f64>) -> ImageVerdict {
    ImageVerdict {
        pair: p.id,
        keep: false,
        reason: Some(reason.to_string()),
        value,
        duplicate_of: None,
    }
}

fn judge(
    p: &ImagePair,
    check: Option<&ImageCheck>,
    (recurring, same_page): (u32, u32),
    stock: &[String],
    patterns: &[Regex],
    config: &FilterConfig,
    dedup: &mut Dedup,
) -> ImageVerdict {
    if let Some(v) = (!config.captions_only)
        .then(|| judge_image(p, check, patterns, config))
        .flatten()
    {
        return v;
    }
    let Some(caption) = p.caption.as_deref().filter(|c| !c.trim().is_empty()) else {
        return verdict(p, "no_caption", None);
    };
    if extract::is_file_name(caption) {
        return verdict(p, "file_name_caption", None);
    }
    let han = caption.chars().filter(|&c| is_han(c)).count();
    if han < config.min_han_chars {
        return verdict(p, "no_chinese", Some(han as f64));
    }
    let chars = caption.chars().filter(|c| !c.is_whitespace()).count();
    if chars < config.min_caption_chars {
        return verdict(p, "caption_too_short", Some(chars as f64));
    }
    if chars > config.max_caption_chars {
        return verdict(p, "caption_too_long", Some(chars as f64));
    }
    if stock.iter().any(|s| *s == squeeze(caption)) {
        return verdict(p, "recurring_caption", Some(f64::from(recurring)));
    }
    if recurring > config.max_caption_pages {
        return verdict(p, "recurring_caption", Some(f64::from(recurring)));
    }
    if same_page > 1 {
        // a CMS that writes the page's title into every image's alt describes none of them
        return verdict(p, "repeated_on_page", Some(f64::from(same_page)));
    }
    if is_credit(caption) {
        return verdict(p, "credit_only", None);
    }
    let keep = ImageVerdict {
        pair: p.id,
        keep: true,
        reason: None,
        value: None,
        duplicate_of: None,
    };
    let (Some(sha), Some(check), false) = (p.sha256.as_deref(), check, config.captions_only) else {
        return keep;
    };
    if let Some(&first) = dedup.exact.get(sha) {
        let mut v = verdict(p, "duplicate_image", Some(0.0));
        v.duplicate_of = Some(first);
        return v;
    }
    let phash: Option<[u8; 8]> = check.phash.as_deref().and_then(|b| b.try_into().ok());
    if let Some(h) = &phash
        && let Some((first, d)) = dedup.near(h, config.near_distance)
    {
        let mut v = verdict(p, "near_duplicate", Some(f64::from(d)));
        v.duplicate_of = Some(first);
        return v;
    }
    dedup.add(sha, phash, p.id);
    keep
}

/// The fetch and image rules: the verdict when one removes the pair.
fn judge_image(
    p: &ImagePair,
    check: Option<&ImageCheck>,
    patterns: &[Regex],
    config: &FilterConfig,
) -> Option<ImageVerdict> {
    match p.outcome.as_deref() {
        None => return Some(verdict(p, "not_fetched", None)),
        Some("ok") => {}
        Some(other) => {
            return Some(verdict(
                p,
                &format!("fetch_{other}"),
                p.status.map(f64::from),
            ));
        }
    }
    let target = url::Url::parse(&p.image_url)
        .map(|u| format!("{}?{}", u.path(), u.query().unwrap_or("")))
        .unwrap_or_else(|_| p.image_url.clone());
    if patterns.iter().any(|r| r.is_match(&target)) {
        return Some(verdict(p, "url_pattern", None));
    }
    if p.sha256.is_none() {
        return Some(verdict(p, "not_fetched", None));
    }
    let Some(check) = check else {
        return Some(verdict(p, "not_checked", None));
    };
    if check.error.is_some() {
        return Some(verdict(p, "broken", p.bytes.map(|b| b as f64)));
    }
    let frames = check.frames.unwrap_or(1);
    if frames > 1 && !config.allow_animated {
        return Some(verdict(p, "animated", Some(f64::from(frames))));
    }
    let (w, h) = (
        u64::from(p.width.unwrap_or(0)),
        u64::from(p.height.unwrap_or(0)),
    );
    if w * h <= config.max_tracker_pixels {
        return Some(verdict(p, "tracking_pixel", Some((w * h) as f64)));
    }
    let short = w.min(h);
    if short < u64::from(config.min_side) {
        return Some(verdict(p, "too_small", Some(short as f64)));
    }
    let aspect = w.max(h) as f64 / short as f64;
    if aspect > config.max_aspect {
        return Some(verdict(
            p,
            "aspect_ratio",
            Some((aspect * 100.0).round() / 100.0),
        ));
    }
    None
}

/// Whether a caption only credits the image's source (`图片来源：新华社`, `图源：网络`,
/// `图/pixabay`, `▲本报记者 张三 摄`): an attribution, not a description.
fn is_credit(caption: &str) -> bool {
    let t = caption.trim().trim_start_matches(['▲', '△', ' ']);
    let prefixed = ["图片来源", "图片来自", "图源", "来源", "图片提供", "供图"]
        .iter()
        .any(|p| {
            t.strip_prefix(p)
                .is_some_and(|rest| rest.starts_with(['：', ':', ' ', '/']) || rest.is_empty())
        })
        || t.starts_with("图/");
    let bare = t.trim_end_matches(['。', '）', ')', ' ']);
    let byline = (bare.ends_with('摄') || bare.ends_with("摄影") || bare.ends_with("供图"))
        && (bare.contains("记者") || bare.chars().count() <= 12);
    prefixed || byline
}

/// A caption without whitespace, for comparing.
fn squeeze(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// The key of a caption among its page's: numbered copies (`标题_1`, `标题_2`, `标题（3）`)
/// are one caption.
fn page_key(s: &str) -> u64 {
    let t = squeeze(s);
    let t = t.trim_end_matches(|c: char| {
        c.is_ascii_digit() || matches!(c, '_' | '-' | '(' | ')' | '（' | '）' | '.')
    });
    xxhash_rust::xxh3::xxh3_64(t.as_bytes())
}

fn caption_key(s: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(squeeze(s).as_bytes())
}

/// CJK unified ideographs and their extensions.
pub fn is_han(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2EBEF | 0x30000..=0x323AF | 0xF900..=0xFAFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(caption: &str) -> ImagePair {
        ImagePair {
            id: 1,
            image_url: "http://example.cn/photos/1.jpg".into(),
            caption: Some(caption.into()),
            outcome: Some("ok".into()),
            sha256: Some("aa".into()),
            width: Some(800),
            height: Some(600),
            ..ImagePair::default()
        }
    }

    fn judged(p: &ImagePair) -> (Option<String>, Option<f64>) {
        let config = FilterConfig::default();
        let check = ImageCheck {
            sha256: "aa".into(),
            frames: Some(1),
            phash: Some(vec![0; 8]),
            error: None,
        };
        let v = judge(
            p,
            Some(&check),
            (1, 1),
            &[],
            &config.patterns().unwrap(),
            &config,
            &mut Dedup::default(),
        );
        (v.reason, v.value)
    }

    #[test]
    fn caption_rules_measure_what_they_remove() {
        assert_eq!(judged(&pair("古镇的石板路和老房子")), (None, None));
        assert_eq!(
            judged(&pair("图片来源：未来科学大奖官网")),
            (Some("credit_only".into()), None)
        );
        assert_eq!(judged(&pair("来源于生活的一张老照片")), (None, None));
        for credit in [
            "图/pixabay",
            "▲广州日报全媒体图片记者黎旭阳、李妍摄",
            "新华社记者 张三 摄",
        ] {
            assert_eq!(
                judged(&pair(credit)).0.as_deref(),
                Some("credit_only"),
                "{credit}"
            );
        }
        assert_eq!(
            judged(&pair("图为山西品牌丝路行（南美站）启动仪式。（刘通摄）")),
            (None, None)
        );
        let long = "古".repeat(129);
        assert_eq!(
            judged(&pair(&long)),
            (Some("caption_too_long".into()), Some(129.0))
        );
        assert_eq!(
            judged(&pair("ok photo")),
            (Some("no_chinese".into()), Some(0.0))
        );
        let mut none = pair("");
        none.caption = None;
        assert_eq!(judged(&none).0.as_deref(), Some("no_caption"));
        let mut unfetched = pair("古镇的石板路和老房子");
        unfetched.outcome = None;
        assert_eq!(judged(&unfetched).0.as_deref(), Some("not_fetched"));
        let mut gone = pair("古镇的石板路和老房子");
        gone.outcome = Some("failed".into());
        gone.status = Some(404);
        assert_eq!(judged(&gone), (Some("fetch_failed".into()), Some(404.0)));
    }

    #[test]
    fn url_patterns_catch_ads_logos_icons_and_trackers_but_not_photos() {
        let config = FilterConfig::default();
        let patterns = config.patterns().unwrap();
        let hit = |path: &str| patterns.iter().any(|r| r.is_match(path));
        for p in [
            "/static/logo.png?",
            "/img/icon-share.png?",
            "/ads/2023/a.jpg?",
            "/images/banner_top.jpg?",
            "/s/qrcode.png?",
            "/t/pixel.gif?",
        ] {
            assert!(hit(p), "{p}");
        }
        for p in [
            "/photos/2023/0501/a.jpg?",
            "/upload/adelaide.jpg?",
            "/news/header.jpg?",
            "/img/read.png?",
        ] {
            assert!(!hit(p), "{p}");
        }
    }

    #[test]
    fn the_byte_index_finds_every_hash_within_seven_bits() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut dedup = Dedup::default();
        let mut kept: Vec<[u8; 8]> = Vec::new();
        for i in 0..400 {
            let base = if i % 2 == 0 || kept.is_empty() {
                next().to_le_bytes()
            } else {
                // a near copy of an earlier hash: up to 7 bits flipped
                let mut h = kept[(next() as usize) % kept.len()];
                for _ in 0..(next() % 8) {
                    let bit = next() % 64;
                    h[(bit / 8) as usize] ^= 1 << (bit % 8);
                }
                h
            };
            let brute = kept
                .iter()
                .map(|k| check::distance(k, &base))
                .filter(|&d| d <= 7)
                .min();
            let found = dedup.near(&base, 7).map(|(_, d)| d);
            assert_eq!(found, brute, "hash {i}");
            if found.is_none() {
                dedup.add(&format!("{i}"), Some(base), i);
                kept.push(base);
            }
        }
    }
}
