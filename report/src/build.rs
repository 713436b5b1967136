//! The report's numbers and examples, read from the store and the run's files.

use std::collections::BTreeMap;
use std::path::Path;

use corpus::report::{DocRow, PageRow, PairRow};
use corpus::{Count, Store};
use rustc_hash::FxHashMap;
use serde::Serialize;
use serde_json::Value;

use crate::{Error, Inputs};

/// Characters of a document's text shown in an example; the rest is counted, not shown.
pub const EXAMPLE_CHARS: usize = 1_500;
/// Examples of removed documents shown per clean rule, and of barely kept ones.
const EXAMPLES_PER_RULE: usize = 3;
/// Duplicate clusters shown side by side.
const CLUSTERS_SHOWN: usize = 5;
/// Text read per source for n-grams, words and characters per token.
const SAMPLE_CHARS_PER_SOURCE: usize = 300_000;
/// Documents scored for novelty (evenly spread over the kept ones).
const NOVELTY_DOCS: usize = 5_000;
/// Kept pairs drawn in the image grid, and the thumbnails' longer side.
const GRID_PAIRS: usize = 24;
const THUMB_SIDE: u32 = 128;

/// Everything the page shows, and what `--json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub store: String,
    pub funnel: Funnel,
    pub crawl: Option<Crawl>,
    pub clean: Option<Clean>,
    pub dedup: Option<Dedup>,
    pub lengths: Lengths,
    pub about: About,
    pub tokenizer: Option<TokenizerView>,
    pub images: Option<Images>,
    pub training: Option<Training>,
    /// Each part that could not be drawn, and why, in plain words.
    pub missing: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub name: String,
    /// `None`: the stage has not run.
    pub count: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Funnel {
    /// pages fetched, documents, kept by clean, kept by dedup, tokens.
    pub steps: Vec<Step>,
    pub sources: Vec<SourceFunnel>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceFunnel {
    pub source: String,
    pub documents: u64,
    pub clean_kept: u64,
    pub dedup_kept: u64,
    pub chars: u64,
    pub kept_chars: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostRow {
    pub host: String,
    pub pages: u64,
    pub ok: u64,
    pub errors: u64,
    pub robots_refused: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Crawl {
    pub pages: u64,
    pub hosts: Vec<HostRow>,
    /// By status class (`2xx`...) or `error:CLASS`.
    pub statuses: Vec<Count>,
    pub error_classes: Vec<Count>,
    /// `charset (how it was decided)`.
    pub charsets: Vec<Count>,
    pub robots_refused: u64,
    /// Pages fetched per minute (`YYYY-MM-DDTHH:MM`).
    pub timeline: Vec<Count>,
}

/// One document shown as an example.
#[derive(Debug, Clone, Serialize)]
pub struct Example {
    pub seq: i64,
    pub source: String,
    pub title: Option<String>,
    pub url: Option<String>,
    pub chars: u64,
    /// What the example is shown for (the rule's value, the similarity...).
    pub note: String,
    /// Every value the cleaner measured on it (rule name and value), when it judged it.
    pub values: Vec<(String, f64)>,
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Bin {
    pub lo: f64,
    pub hi: f64,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleView {
    pub rule: String,
    /// The threshold the clean run used, and whether a value below it (`min`) or above it
    /// (`max`) removes a document.
    pub threshold: Option<f64>,
    pub bound: Option<String>,
    pub removed: u64,
    /// Every judged document's value.
    pub histogram: Vec<Bin>,
    pub rejected: Vec<Example>,
    pub barely_kept: Vec<Example>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Clean {
    pub judged: u64,
    pub kept: u64,
    pub removed: Vec<Count>,
    pub rules: Vec<RuleView>,
    pub pii: Vec<Count>,
    /// Documents whose text the cleaner changed (lines dropped, PII masked).
    pub changed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiffPart {
    /// `same`, `kept` (only in the kept member) or `removed` (only in the duplicate).
    pub op: String,
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClusterView {
    pub cluster: i64,
    pub size: u64,
    pub kept: Example,
    pub duplicate: Example,
    pub diff: Vec<DiffPart>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Dedup {
    pub judged: u64,
    pub kept: u64,
    pub kinds: Vec<Count>,
    /// Clusters by size: `name` is the size.
    pub cluster_sizes: Vec<Count>,
    pub largest: Vec<ClusterView>,
    pub contaminated: Vec<Example>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Lengths {
    /// Characters per document, bins on a log scale: all documents and those kept.
    pub all: Vec<Bin>,
    pub kept: Vec<Bin>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceTop {
    pub source: String,
    /// Characters of kept text, and their share of the whole.
    pub chars: u64,
    pub share: f64,
    pub bigrams: Vec<Count>,
    pub words: Vec<Count>,
}

#[derive(Debug, Clone, Serialize)]
pub struct About {
    pub sources: Vec<SourceTop>,
    /// Kept documents whose character 3-grams are rarest in the corpus.
    pub novel: Vec<Example>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceTokens {
    pub source: String,
    pub chars: u64,
    pub tokens: u64,
    pub chars_per_token: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TokenizerView {
    pub path: String,
    pub vocab_size: u64,
    /// Share of the vocabulary whose token is text with at least one Han character.
    pub han_share: f64,
    pub longest_han: Vec<String>,
    pub per_source: Vec<SourceTokens>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Thumb {
    pub pair: i64,
    pub caption: String,
    pub caption_source: Option<String>,
    pub image_url: String,
    pub page_url: Option<String>,
    /// `reason (value)` of a removed pair; empty for a kept one.
    pub verdict: String,
    /// A small JPEG as a data URI; `None` where the image was not stored or does not decode.
    pub data_uri: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Images {
    pub pairs: u64,
    pub judged: u64,
    pub kept: u64,
    pub removed: Vec<Count>,
    pub caption_sources: Vec<Count>,
    pub grid: Vec<Thumb>,
    /// One example per reason.
    pub rejected: Vec<Thumb>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MetricRow {
    pub step: u64,
    pub loss: Option<f64>,
    pub val_loss: Option<f64>,
    pub lr: Option<f64>,
    pub tokens_per_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Training {
    pub run: String,
    pub steps: Vec<MetricRow>,
    /// Generated text saved with the run, if any (`samples.jsonl`).
    pub samples: Vec<String>,
}

fn counts(map: FxHashMap<String, u64>) -> Vec<Count> {
    let mut v: Vec<Count> = map
        .into_iter()
        .map(|(name, count)| Count { name, count })
        .collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    v
}

fn source_of(d: &DocRow) -> String {
    d.source.clone().unwrap_or_else(|| "(none)".to_string())
}

fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| {
                format!(
                    "{h}{}",
                    u.port().map(|p| format!(":{p}")).unwrap_or_default()
                )
            })
        })
        .unwrap_or_else(|| "(no host)".to_string())
}

/// Whether `d` is kept: judged by every stage that ran, removed by none.
fn kept(d: &DocRow, clean_ran: bool, dedup_ran: bool) -> bool {
    (!clean_ran || d.clean_keep == Some(true)) && (!dedup_ran || d.dedup_keep == Some(true))
}

pub(crate) fn build(store: &Store, inputs: &Inputs) -> Result<Report, Error> {
    let mut missing = BTreeMap::new();
    let pages = store.report_pages()?;
    let docs = store.report_documents()?;
    let clean_ran = docs.iter().any(|d| d.clean_keep.is_some());
    let dedup_ran = docs.iter().any(|d| d.dedup_keep.is_some());
    let tokens = match &inputs.shards {
        Some(dir) => Some(shard_tokens(dir)?),
        None => {
            missing.insert(
                "tokens".to_string(),
                "no shard folder given (--shards): tokens are not counted".to_string(),
            );
            None
        }
    };
    let funnel = funnel(&pages, &docs, clean_ran, dedup_ran, tokens);
    let crawl = if pages.is_empty() {
        missing.insert(
            "crawl".to_string(),
            "no pages in the store: nothing was crawled".to_string(),
        );
        None
    } else {
        Some(crawl(&pages))
    };
    let clean = if clean_ran {
        Some(clean(store, &docs)?)
    } else {
        missing.insert(
            "clean".to_string(),
            "the cleaner has not judged any document (run `zhcorpus clean`)".to_string(),
        );
        None
    };
    let dedup = if dedup_ran {
        Some(dedup(store, &docs)?)
    } else {
        missing.insert(
            "dedup".to_string(),
            "dedup has not judged any document (run `zhcorpus dedup`)".to_string(),
        );
        None
    };
    let kept_docs: Vec<&DocRow> = docs
        .iter()
        .filter(|d| kept(d, clean_ran, dedup_ran))
        .collect();
    let lengths = Lengths {
        all: log_histogram(docs.iter().map(|d| d.chars)),
        kept: log_histogram(kept_docs.iter().map(|d| d.chars)),
    };
    let samples = source_samples(store, &kept_docs)?;
    let about = about(store, &kept_docs, &samples)?;
    if docs.is_empty() {
        missing.insert(
            "documents".to_string(),
            "the store holds no documents".to_string(),
        );
    }
    let tokenizer = match &inputs.tokenizer {
        Some(path) => Some(tokenizer_view(path, &samples)?),
        None => {
            missing.insert(
                "tokenizer".to_string(),
                "no tokenizer given (--tokenizer)".to_string(),
            );
            None
        }
    };
    let pairs = store.report_pairs()?;
    let images = if pairs.is_empty() {
        missing.insert(
            "images".to_string(),
            "no image-text pairs in the store (crawl with --images)".to_string(),
        );
        None
    } else {
        Some(images(store, &pairs)?)
    };
    let training = match &inputs.run {
        Some(dir) => Some(training(dir)?),
        None => {
            missing.insert(
                "training".to_string(),
                "no run folder given (--run)".to_string(),
            );
            None
        }
    };
    Ok(Report {
        store: store.path().display().to_string(),
        funnel,
        crawl,
        clean,
        dedup,
        lengths,
        about,
        tokenizer,
        images,
        training,
        missing,
    })
}

fn shard_tokens(dir: &Path) -> Result<u64, Error> {
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path).map_err(|err| Error::Io {
        path: path.clone(),
        err,
    })?;
    let manifest: Value = serde_json::from_str(&text).map_err(|e| Error::Invalid {
        path: path.clone(),
        why: e.to_string(),
    })?;
    let tokens = manifest
        .get("tokens")
        .and_then(Value::as_object)
        .ok_or(Error::Invalid {
            path,
            why: "no \"tokens\" object".to_string(),
        })?;
    Ok(tokens.values().filter_map(Value::as_u64).sum())
}

fn funnel(
    pages: &[PageRow],
    docs: &[DocRow],
    clean_ran: bool,
    dedup_ran: bool,
    tokens: Option<u64>,
) -> Funnel {
    let ok = pages
        .iter()
        .filter(|p| p.status.is_some_and(|s| (200..300).contains(&s)))
        .count() as u64;
    let clean_kept = docs.iter().filter(|d| d.clean_keep == Some(true)).count() as u64;
    let dedup_kept = docs
        .iter()
        .filter(|d| d.clean_keep != Some(false) && d.dedup_keep == Some(true))
        .count() as u64;
    let mut sources: BTreeMap<String, SourceFunnel> = BTreeMap::new();
    for d in docs {
        let name = source_of(d);
        let s = sources.entry(name.clone()).or_insert(SourceFunnel {
            source: name,
            documents: 0,
            clean_kept: 0,
            dedup_kept: 0,
            chars: 0,
            kept_chars: 0,
        });
        s.documents += 1;
        s.chars += d.chars;
        if d.clean_keep == Some(true) {
            s.clean_kept += 1;
        }
        if d.clean_keep != Some(false) && d.dedup_keep == Some(true) {
            s.dedup_kept += 1;
        }
        if kept(d, clean_ran, dedup_ran) {
            s.kept_chars += d.chars;
        }
    }
    let mut sources: Vec<SourceFunnel> = sources.into_values().collect();
    sources.sort_by(|a, b| b.documents.cmp(&a.documents).then(a.source.cmp(&b.source)));
    Funnel {
        steps: vec![
            Step {
                name: "pages fetched (2xx)".to_string(),
                count: (!pages.is_empty()).then_some(ok),
            },
            Step {
                name: "documents".to_string(),
                count: Some(docs.len() as u64),
            },
            Step {
                name: "kept by clean".to_string(),
                count: clean_ran.then_some(clean_kept),
            },
            Step {
                name: "kept by dedup".to_string(),
                count: dedup_ran.then_some(dedup_kept),
            },
            Step {
                name: "tokens".to_string(),
                count: tokens,
            },
        ],
        sources,
    }
}

fn crawl(pages: &[PageRow]) -> Crawl {
    let mut hosts: BTreeMap<String, HostRow> = BTreeMap::new();
    let (mut statuses, mut errors, mut charsets, mut timeline) = (
        FxHashMap::default(),
        FxHashMap::default(),
        FxHashMap::default(),
        FxHashMap::default(),
    );
    let mut robots_refused = 0;
    for p in pages {
        let host = host_of(&p.url);
        let h = hosts.entry(host.clone()).or_insert(HostRow {
            host,
            pages: 0,
            ok: 0,
            errors: 0,
            robots_refused: 0,
        });
        h.pages += 1;
        let refused = p.error_class.as_deref() == Some("robots_disallowed");
        match p.status {
            Some(s) => {
                *statuses.entry(format!("{}xx", s / 100)).or_insert(0) += 1;
                if (200..300).contains(&s) {
                    h.ok += 1;
                } else {
                    h.errors += 1;
                }
            }
            None => {
                let class = p
                    .error_class
                    .clone()
                    .unwrap_or_else(|| "unknown".to_string());
                *statuses.entry(format!("error:{class}")).or_insert(0) += 1;
                if refused {
                    h.robots_refused += 1;
                    robots_refused += 1;
                } else {
                    h.errors += 1;
                    *errors.entry(class).or_insert(0) += 1;
                }
            }
        }
        if let Some(c) = &p.charset {
            let how = p.charset_source.as_deref().unwrap_or("unknown");
            *charsets.entry(format!("{c} ({how})")).or_insert(0) += 1;
        }
        let minute: String = p.fetched_at.chars().take(16).collect();
        *timeline.entry(minute).or_insert(0) += 1;
    }
    let mut hosts: Vec<HostRow> = hosts.into_values().collect();
    hosts.sort_by(|a, b| b.pages.cmp(&a.pages).then(a.host.cmp(&b.host)));
    let mut timeline = counts(timeline);
    timeline.sort_by(|a, b| a.name.cmp(&b.name));
    Crawl {
        pages: pages.len() as u64,
        hosts,
        statuses: counts(statuses),
        error_classes: counts(errors),
        charsets: counts(charsets),
        robots_refused,
        timeline,
    }
}

/// An example of document `d`, its text read from the store and cut to [`EXAMPLE_CHARS`].
fn example(store: &Store, d: &DocRow, note: String) -> Result<Example, Error> {
    let text = store
        .report_texts(&[d.seq])?
        .into_iter()
        .next()
        .map(|t| t.text)
        .unwrap_or_default();
    Ok(Example {
        seq: d.seq,
        source: source_of(d),
        title: d.title.clone(),
        url: d.url.clone(),
        chars: d.chars,
        note,
        values: d
            .clean_details
            .as_deref()
            .and_then(|t| serde_json::from_str::<Value>(t).ok())
            .and_then(|v| {
                v.get("rules").and_then(Value::as_object).map(|rules| {
                    rules
                        .iter()
                        .filter_map(|(k, v)| v.as_f64().map(|v| (k.clone(), v)))
                        .collect()
                })
            })
            .unwrap_or_default(),
        text: cut(&text),
    })
}

fn cut(text: &str) -> String {
    match text.char_indices().nth(EXAMPLE_CHARS) {
        Some((i, _)) => format!(
            "{}… ({} more characters)",
            &text[..i],
            text[i..].chars().count()
        ),
        None => text.to_string(),
    }
}

/// The threshold of `rule` in the clean run's settings, and its bound: `min_X` and `max_X`
/// (or the rule's own name, for `min_chars` and `max_chars`).
fn threshold(config: &Value, rule: &str) -> Option<(f64, String)> {
    let rules = config.get("rules")?;
    for (key, bound) in [
        (
            rule.to_string(),
            if rule.starts_with("max") {
                "max"
            } else {
                "min"
            },
        ),
        (format!("min_{rule}"), "min"),
        (format!("max_{rule}"), "max"),
    ] {
        if let Some(v) = rules.get(&key).and_then(Value::as_f64) {
            return Some((v, bound.to_string()));
        }
    }
    None
}

/// A measured value as the page writes it: whole numbers and large ones without decimals,
/// two decimals from 1, three below.
pub(crate) fn short(v: f64) -> String {
    if v.abs() >= 1000.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn clean(store: &Store, docs: &[DocRow]) -> Result<Clean, Error> {
    let config = store
        .last_run("clean")?
        .map(|r| r.config)
        .unwrap_or(Value::Null);
    let judged: Vec<&DocRow> = docs.iter().filter(|d| d.clean_keep.is_some()).collect();
    let kept = judged.iter().filter(|d| d.clean_keep == Some(true)).count() as u64;
    let mut removed = FxHashMap::default();
    for d in judged.iter().filter(|d| d.clean_keep == Some(false)) {
        let rule = d.clean_rule.clone().unwrap_or_else(|| "(none)".to_string());
        *removed.entry(rule).or_insert(0u64) += 1;
    }
    // every rule's value over every judged document
    let mut values: BTreeMap<String, Vec<(f64, &DocRow)>> = BTreeMap::new();
    let mut pii = FxHashMap::default();
    let mut changed = 0;
    for d in &judged {
        if d.clean_chars.is_some() {
            changed += 1;
        }
        let Some(details) = d
            .clean_details
            .as_deref()
            .and_then(|t| serde_json::from_str::<Value>(t).ok())
        else {
            continue;
        };
        if let Some(rules) = details.get("rules").and_then(Value::as_object) {
            for (rule, v) in rules {
                if let Some(v) = v.as_f64() {
                    values.entry(rule.clone()).or_default().push((v, d));
                }
            }
        }
        if let Some(masks) = details.get("pii").and_then(Value::as_object) {
            for (kind, n) in masks {
                if let Some(n) = n.as_u64().filter(|&n| n > 0) {
                    *pii.entry(kind.clone()).or_insert(0) += n;
                }
            }
        }
    }
    // rules that removed documents but measure no value (quality model, bad words...)
    for rule in removed.keys() {
        values.entry(rule.clone()).or_default();
    }
    let mut rules = Vec::new();
    for (rule, vals) in values {
        let t = threshold(&config, &rule);
        let removed_here = removed.get(&rule).copied().unwrap_or(0);
        let mut rejected = Vec::new();
        for d in judged
            .iter()
            .filter(|d| d.clean_keep == Some(false) && d.clean_rule.as_deref() == Some(&*rule))
            .take(EXAMPLES_PER_RULE)
        {
            let v = d.clean_value.map(short).unwrap_or_default();
            rejected.push(example(store, d, format!("removed by {rule}: {v}"))?);
        }
        let mut barely_kept = Vec::new();
        if let Some((limit, _)) = &t {
            let mut near: Vec<&(f64, &DocRow)> = vals
                .iter()
                .filter(|(_, d)| d.clean_keep == Some(true))
                .collect();
            near.sort_by(|a, b| (a.0 - limit).abs().total_cmp(&(b.0 - limit).abs()));
            for (v, d) in near.into_iter().take(EXAMPLES_PER_RULE) {
                barely_kept.push(example(
                    store,
                    d,
                    format!(
                        "kept with {rule} {} (threshold {})",
                        short(*v),
                        short(*limit)
                    ),
                )?);
            }
        }
        rules.push(RuleView {
            histogram: histogram(vals.iter().map(|(v, _)| *v), t.as_ref().map(|t| t.0)),
            threshold: t.as_ref().map(|t| t.0),
            bound: t.map(|t| t.1),
            rule,
            removed: removed_here,
            rejected,
            barely_kept,
        });
    }
    rules.sort_by(|a, b| b.removed.cmp(&a.removed).then(a.rule.cmp(&b.rule)));
    Ok(Clean {
        judged: judged.len() as u64,
        kept,
        removed: counts(removed),
        rules,
        pii: counts(pii),
        changed,
    })
}

/// 20 equal bins over the values' range, widened to take in `mark`.
fn histogram(values: impl Iterator<Item = f64> + Clone, mark: Option<f64>) -> Vec<Bin> {
    let finite = values.filter(|v| v.is_finite());
    let (mut lo, mut hi) = finite
        .clone()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return Vec::new();
    }
    if let Some(m) = mark.filter(|m| m.is_finite()) {
        // a threshold far outside the data (max_chars 500000) would squash the bins
        if m >= lo - (hi - lo) && m <= hi + (hi - lo) {
            lo = lo.min(m);
            hi = hi.max(m);
        }
    }
    const BINS: usize = 20;
    let width = if hi > lo {
        (hi - lo) / BINS as f64
    } else {
        1.0
    };
    let mut bins: Vec<Bin> = (0..BINS)
        .map(|i| Bin {
            lo: lo + width * i as f64,
            hi: lo + width * (i + 1) as f64,
            count: 0,
        })
        .collect();
    for v in finite {
        let i = (((v - lo) / width) as usize).min(BINS - 1);
        bins[i].count += 1;
    }
    bins
}

/// Bins of document lengths in characters: 1, 2-3, 4-7... (powers of two).
fn log_histogram(lengths: impl Iterator<Item = u64>) -> Vec<Bin> {
    let mut counts: Vec<u64> = Vec::new();
    for n in lengths {
        let i = (64 - n.max(1).leading_zeros() - 1) as usize;
        if counts.len() <= i {
            counts.resize(i + 1, 0);
        }
        counts[i] += 1;
    }
    counts
        .into_iter()
        .enumerate()
        .map(|(i, count)| Bin {
            lo: (1u64 << i) as f64,
            hi: ((1u64 << (i + 1)) - 1) as f64,
            count,
        })
        .collect()
}

fn dedup(store: &Store, docs: &[DocRow]) -> Result<Dedup, Error> {
    let judged: Vec<&DocRow> = docs.iter().filter(|d| d.dedup_keep.is_some()).collect();
    let kept = judged.iter().filter(|d| d.dedup_keep == Some(true)).count() as u64;
    let mut kinds = FxHashMap::default();
    let mut clusters: BTreeMap<i64, Vec<&DocRow>> = BTreeMap::new();
    for d in &judged {
        *kinds
            .entry(
                d.dedup_kind
                    .clone()
                    .unwrap_or_else(|| "unknown".to_string()),
            )
            .or_insert(0u64) += 1;
        if let Some(c) = d.cluster {
            clusters.entry(c).or_default().push(d);
        }
    }
    let mut sizes = FxHashMap::default();
    for members in clusters.values() {
        *sizes.entry(members.len().to_string()).or_insert(0u64) += 1;
    }
    let mut cluster_sizes = counts(sizes);
    cluster_sizes.sort_by_key(|c| c.name.parse::<u64>().unwrap_or(0));
    let mut by_size: Vec<(&i64, &Vec<&DocRow>)> = clusters.iter().collect();
    by_size.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
    let mut largest = Vec::new();
    for (&cluster, members) in by_size.into_iter().take(CLUSTERS_SHOWN) {
        let keeper = members.iter().find(|d| d.dedup_keep == Some(true));
        let dup = members.iter().find(|d| d.dedup_keep == Some(false));
        let (Some(keeper), Some(dup)) = (keeper, dup) else {
            continue;
        };
        let kept_ex = example(store, keeper, "kept".to_string())?;
        let sim = dup
            .similarity
            .map(|s| format!(", similarity {s:.3}"))
            .unwrap_or_default();
        let kind = dup.dedup_kind.clone().unwrap_or_default();
        let dup_ex = example(store, dup, format!("removed as {kind} duplicate{sim}"))?;
        let diff = similar::TextDiff::from_chars(kept_ex.text.as_str(), dup_ex.text.as_str())
            .iter_all_changes()
            .fold(Vec::<DiffPart>::new(), |mut parts, c| {
                let op = match c.tag() {
                    similar::ChangeTag::Equal => "same",
                    similar::ChangeTag::Delete => "kept",
                    similar::ChangeTag::Insert => "removed",
                };
                match parts.last_mut() {
                    Some(last) if last.op == op => last.text.push_str(c.value()),
                    _ => parts.push(DiffPart {
                        op: op.to_string(),
                        text: c.value().to_string(),
                    }),
                }
                parts
            });
        largest.push(ClusterView {
            cluster,
            size: members.len() as u64,
            kept: kept_ex,
            duplicate: dup_ex,
            diff,
        });
    }
    let mut contaminated = Vec::new();
    for d in judged
        .iter()
        .filter(|d| d.dedup_kind.as_deref() == Some("contaminated"))
        .take(EXAMPLES_PER_RULE)
    {
        let span = d.span.clone().unwrap_or_default();
        contaminated.push(example(
            store,
            d,
            format!("shares with the evaluation set: {span}"),
        )?);
    }
    Ok(Dedup {
        judged: judged.len() as u64,
        kept,
        kinds: counts(kinds),
        cluster_sizes,
        largest,
        contaminated,
    })
}

/// Up to [`SAMPLE_CHARS_PER_SOURCE`] characters of kept text per source, documents taken in
/// store order, spread evenly when there are more.
fn source_samples(
    store: &Store,
    kept: &[&DocRow],
) -> Result<BTreeMap<String, (u64, String)>, Error> {
    let mut by_source: BTreeMap<String, Vec<&DocRow>> = BTreeMap::new();
    for d in kept {
        by_source.entry(source_of(d)).or_default().push(d);
    }
    let mut out = BTreeMap::new();
    for (source, docs) in by_source {
        let total: u64 = docs.iter().map(|d| d.chars).sum();
        let step = (total as usize / SAMPLE_CHARS_PER_SOURCE).max(1);
        let mut text = String::new();
        let mut taken = 0usize;
        for d in docs.iter().step_by(step) {
            if taken >= SAMPLE_CHARS_PER_SOURCE {
                break;
            }
            if let Some(t) = store.report_texts(&[d.seq])?.into_iter().next() {
                let body = t.cleaned.unwrap_or(t.text);
                taken += body.chars().count();
                text.push_str(&body);
                text.push('\n');
            }
        }
        out.insert(source, (total, text));
    }
    Ok(out)
}

fn is_han(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}' | '\u{20000}'..='\u{2A6DF}' | '\u{F900}'..='\u{FAFF}')
}

fn top(map: FxHashMap<String, u64>, n: usize) -> Vec<Count> {
    let mut v = counts(map);
    v.truncate(n);
    v
}

fn about(
    store: &Store,
    kept: &[&DocRow],
    samples: &BTreeMap<String, (u64, String)>,
) -> Result<About, Error> {
    let total: u64 = samples.values().map(|(n, _)| n).sum();
    let jieba = jieba_rs::Jieba::new();
    let mut sources = Vec::new();
    for (source, (chars, text)) in samples {
        let mut bigrams = FxHashMap::default();
        let chars_v: Vec<char> = text.chars().collect();
        for w in chars_v.windows(2) {
            if is_han(w[0]) && is_han(w[1]) {
                *bigrams.entry(w.iter().collect::<String>()).or_insert(0) += 1;
            }
        }
        let mut words = FxHashMap::default();
        for t in jieba.cut(text, false) {
            let w = t.word;
            if w.chars().count() >= 2 && w.chars().all(is_han) {
                *words.entry(w.to_string()).or_insert(0) += 1;
            }
        }
        sources.push(SourceTop {
            source: source.clone(),
            chars: *chars,
            share: if total > 0 {
                *chars as f64 / total as f64
            } else {
                0.0
            },
            bigrams: top(bigrams, 15),
            words: top(words, 15),
        });
    }
    sources.sort_by(|a, b| b.chars.cmp(&a.chars).then(a.source.cmp(&b.source)));
    Ok(About {
        sources,
        novel: novel(store, kept)?,
    })
}

/// The kept documents whose Han 3-grams are rarest in the corpus: each scored by the mean
/// of -log(frequency) of its 3-grams, over at most [`NOVELTY_DOCS`] documents.
fn novel(store: &Store, kept: &[&DocRow]) -> Result<Vec<Example>, Error> {
    let step = (kept.len() / NOVELTY_DOCS).max(1);
    let chosen: Vec<&DocRow> = kept.iter().step_by(step).copied().collect();
    let seqs: Vec<i64> = chosen.iter().map(|d| d.seq).collect();
    let texts = store.report_texts(&seqs)?;
    let grams = |t: &str| -> Vec<[char; 3]> {
        let c: Vec<char> = t.chars().filter(|&c| is_han(c)).collect();
        c.windows(3).map(|w| [w[0], w[1], w[2]]).collect()
    };
    let mut freq: FxHashMap<[char; 3], u64> = FxHashMap::default();
    let mut all = 0u64;
    for t in &texts {
        for g in grams(&t.text) {
            *freq.entry(g).or_insert(0) += 1;
            all += 1;
        }
    }
    let mut scored: Vec<(f64, usize)> = texts
        .iter()
        .enumerate()
        .filter_map(|(i, t)| {
            let g = grams(&t.text);
            (g.len() >= 20).then(|| {
                let s: f64 = g
                    .iter()
                    .map(|g| -((freq[g] as f64) / all as f64).ln())
                    .sum::<f64>()
                    / g.len() as f64;
                (s, i)
            })
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut out = Vec::new();
    for (score, i) in scored.into_iter().take(EXAMPLES_PER_RULE) {
        out.push(example(
            store,
            chosen[i],
            format!("mean rarity of its 3-grams {score:.2} (-ln of their share)"),
        )?);
    }
    Ok(out)
}

fn tokenizer_view(
    path: &Path,
    samples: &BTreeMap<String, (u64, String)>,
) -> Result<TokenizerView, Error> {
    let tok = tokenizer::hf::load(path).map_err(|e| Error::Invalid {
        path: path.to_path_buf(),
        why: e.to_string(),
    })?;
    let vocab = tok.vocab_size() as u32;
    let mut han = 0u64;
    let mut longest: Vec<String> = Vec::new();
    for id in 0..vocab {
        let Some(bytes) = tok.token_bytes(id) else {
            continue;
        };
        if let Ok(s) = std::str::from_utf8(bytes) {
            if s.chars().any(is_han) {
                han += 1;
            }
            if s.chars().count() >= 2 && s.chars().all(is_han) {
                longest.push(s.to_string());
            }
        }
    }
    longest.sort_by(|a, b| {
        b.chars()
            .count()
            .cmp(&a.chars().count())
            .then_with(|| a.cmp(b))
    });
    longest.truncate(30);
    let per_source = samples
        .iter()
        .filter(|(_, (_, text))| !text.is_empty())
        .map(|(source, (_, text))| {
            let chars = text.chars().count() as u64;
            let tokens = tok.encode(text).len() as u64;
            SourceTokens {
                source: source.clone(),
                chars,
                tokens,
                chars_per_token: if tokens > 0 {
                    chars as f64 / tokens as f64
                } else {
                    0.0
                },
            }
        })
        .collect();
    Ok(TokenizerView {
        path: path.display().to_string(),
        vocab_size: u64::from(vocab),
        han_share: if vocab > 0 {
            han as f64 / f64::from(vocab)
        } else {
            0.0
        },
        longest_han: longest,
        per_source,
    })
}

fn thumb(store: &Store, p: &PairRow) -> Result<Thumb, Error> {
    let data_uri = match &p.sha256 {
        Some(sha) => store.report_image_body(sha)?.and_then(|body| {
            use base64::Engine;
            let img = images::check::decode(&body, 50_000_000).ok()?;
            let (w, h) = (img.width().max(1), img.height().max(1));
            let scale = (f64::from(THUMB_SIDE) / f64::from(w.max(h))).min(1.0);
            let (tw, th) = (
                ((f64::from(w) * scale).round() as u32).max(1),
                ((f64::from(h) * scale).round() as u32).max(1),
            );
            let small = images::check::resize(&img, tw, th).ok()?.to_rgb8();
            let mut jpeg = Vec::new();
            jpeg_encoder::Encoder::new(&mut jpeg, 80)
                .encode(
                    small.as_raw(),
                    u16::try_from(tw).ok()?,
                    u16::try_from(th).ok()?,
                    jpeg_encoder::ColorType::Rgb,
                )
                .ok()?;
            Some(format!(
                "data:image/jpeg;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(jpeg)
            ))
        }),
        None => None,
    };
    let verdict = match (p.keep, &p.reason) {
        (Some(false), Some(r)) => match p.value {
            Some(v) => format!("{r} ({})", short(v)),
            None => r.clone(),
        },
        _ => String::new(),
    };
    Ok(Thumb {
        pair: p.id,
        caption: p.caption.clone().unwrap_or_default(),
        caption_source: p.caption_source.clone(),
        image_url: p.image_url.clone(),
        page_url: p.page_url.clone(),
        verdict,
        data_uri,
    })
}

fn images(store: &Store, pairs: &[PairRow]) -> Result<Images, Error> {
    let judged = pairs.iter().filter(|p| p.keep.is_some()).count() as u64;
    let kept: Vec<&PairRow> = pairs.iter().filter(|p| p.keep == Some(true)).collect();
    let mut removed = FxHashMap::default();
    let mut sources = FxHashMap::default();
    for p in pairs {
        if p.keep == Some(false) {
            *removed
                .entry(p.reason.clone().unwrap_or_else(|| "(none)".to_string()))
                .or_insert(0u64) += 1;
        }
        *sources
            .entry(
                p.caption_source
                    .clone()
                    .unwrap_or_else(|| "none".to_string()),
            )
            .or_insert(0u64) += 1;
    }
    let removed = counts(removed);
    let mut grid = Vec::new();
    for p in kept.iter().take(GRID_PAIRS) {
        grid.push(thumb(store, p)?);
    }
    let mut rejected = Vec::new();
    for reason in &removed {
        if let Some(p) = pairs
            .iter()
            .find(|p| p.keep == Some(false) && p.reason.as_deref() == Some(&*reason.name))
        {
            rejected.push(thumb(store, p)?);
        }
    }
    Ok(Images {
        pairs: pairs.len() as u64,
        judged,
        kept: kept.len() as u64,
        removed,
        caption_sources: counts(sources),
        grid,
        rejected,
    })
}

fn training(dir: &Path) -> Result<Training, Error> {
    let path = dir.join("metrics.jsonl");
    let text = std::fs::read_to_string(&path).map_err(|err| Error::Io {
        path: path.clone(),
        err,
    })?;
    let mut steps = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line).map_err(|e| Error::Invalid {
            path: path.clone(),
            why: format!("line {}: {e}", i + 1),
        })?;
        let f = |k: &str| v.get(k).and_then(Value::as_f64);
        steps.push(MetricRow {
            step: v
                .get("step")
                .and_then(Value::as_u64)
                .unwrap_or(i as u64 + 1),
            loss: f("loss"),
            val_loss: f("val_loss"),
            lr: f("lr"),
            tokens_per_s: f("tokens_per_s"),
        });
    }
    let mut samples = Vec::new();
    if let Ok(text) = std::fs::read_to_string(dir.join("samples.jsonl")) {
        for line in text.lines().take(10) {
            if let Ok(v) = serde_json::from_str::<Value>(line) {
                let step = v.get("step").and_then(Value::as_u64);
                if let Some(t) = v.get("text").and_then(Value::as_str) {
                    samples.push(match step {
                        Some(s) => format!("step {s}: {t}"),
                        None => t.to_string(),
                    });
                }
            }
        }
    }
    Ok(Training {
        run: dir.display().to_string(),
        steps,
        samples,
    })
}
