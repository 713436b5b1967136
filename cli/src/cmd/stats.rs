use std::fmt::Write;

use anyhow::Result;
use clap::Args;
use corpus::{Stats, Store, VerdictStats};

use crate::{Db, Global};

/// `zhcorpus stats --db corpus.db [--json]`
#[derive(Args)]
pub struct StatsArgs {
    #[command(flatten)]
    db: Db,

    /// Print one JSON object instead of the table, for scripts.
    #[arg(long)]
    json: bool,
}

pub fn run(global: &Global, args: StatsArgs) -> Result<()> {
    let _ = global;
    let store = Store::open_existing(&args.db.db)?;
    let stats = store.stats()?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&stats)?);
    } else {
        out!("{}", render(&args.db.db.display().to_string(), &stats));
    }
    Ok(())
}

/// The human-readable table.
pub fn render(name: &str, s: &Stats) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(
        w,
        "database    {name} (schema {}, {})",
        s.schema_version,
        bytes(s.file_bytes)
    );
    let _ = writeln!(
        w,
        "documents   {} ({} kept), {} of text, {} characters",
        s.documents,
        s.kept,
        bytes(s.text_bytes),
        s.text_chars
    );
    if s.unjudged.total() > 0 {
        let _ = writeln!(w, "unjudged    {}", unjudged(&s.unjudged));
    }
    if !s.sources.is_empty() {
        let width = s
            .sources
            .iter()
            .map(|x| x.source.as_deref().unwrap_or("(none)").chars().count())
            .max()
            .unwrap_or(0)
            .max(6);
        let _ = writeln!(
            w,
            "            {:<width$}  {:>10}  {:>10}  {:>10}",
            "source", "documents", "kept", "text"
        );
        for x in &s.sources {
            let _ = writeln!(
                w,
                "            {:<width$}  {:>10}  {:>10}  {:>10}",
                x.source.as_deref().unwrap_or("(none)"),
                x.documents,
                x.kept,
                bytes(x.text_bytes)
            );
        }
    }
    let _ = writeln!(w, "clean       {}", verdicts(&s.clean));
    let _ = writeln!(w, "dedup       {}", verdicts(&s.dedup));
    let _ = writeln!(w, "pages       {}{}", s.pages, counts(&s.pages_by_status));
    let _ = writeln!(w, "frontier    {}", counts(&s.frontier).trim_start());
    let i = &s.images;
    let _ = writeln!(
        w,
        "image-text  {} pairs, {} image URLs; fetched:{}; {} images stored ({})",
        i.pairs,
        i.urls,
        pairs(&i.fetched),
        i.images,
        bytes(i.image_bytes)
    );
    if i.kept > 0 || !i.removed.is_empty() {
        let _ = writeln!(
            w,
            "            {} pairs kept, removed:{}",
            i.kept,
            pairs(&i.removed)
        );
    }
    if !s.runs.is_empty() {
        let _ = writeln!(w, "recent runs");
        for r in &s.runs {
            let counts = r.counts.as_ref().map(|c| c.to_string()).unwrap_or_default();
            let _ = writeln!(
                w,
                "            #{} {} {} {} {counts}",
                r.id, r.stage, r.status, r.started_at
            );
        }
    }
    out
}

fn verdicts(v: &VerdictStats) -> String {
    if v.judged == 0 {
        return "not run".to_string();
    }
    format!(
        "{} judged, {} kept{}",
        v.judged,
        v.kept,
        if v.removed.is_empty() {
            String::new()
        } else {
            format!(", removed:{}", counts(&v.removed))
        }
    )
}

fn counts(c: &[corpus::Count]) -> String {
    if c.is_empty() {
        return " -".to_string();
    }
    c.iter()
        .map(|c| format!(" {} {}", c.name, c.count))
        .collect()
}

fn pairs(c: &[(String, u64)]) -> String {
    if c.is_empty() {
        return " -".to_string();
    }
    c.iter().map(|(k, n)| format!(" {k} {n}")).collect()
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Documents a stage that ran has not judged, and what to run.
pub fn unjudged(u: &corpus::Unjudged) -> String {
    let mut parts = Vec::new();
    if u.clean > 0 {
        parts.push(format!("{} without a clean verdict", u.clean));
    }
    if u.dedup > 0 {
        parts.push(format!("{} without a dedup verdict", u.dedup));
    }
    format!(
        "{} (not kept: added after the stage's last run, or left by an interrupted run; run \
         the stage again)",
        parts.join(", ")
    )
}
