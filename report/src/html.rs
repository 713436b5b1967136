//! The report as one HTML page: inline CSS, inline SVG charts, `<details>` for the examples
//! (clicking one opens its text), no script and no request.

use std::fmt::Write;

use corpus::Count;

use crate::build::{Bin, Example, Report, short};

/// `s` with `&`, `<`, `>`, `"` and `'` escaped.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn num(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

const CSS: &str = "
body{font:14px/1.5 system-ui,'Noto Sans CJK SC','Source Han Sans SC',sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1f3a5f;color:#fff;padding:16px 32px}header h1{margin:0;font-size:22px}
nav{padding:8px 32px;background:#e8edf3;position:sticky;top:0}nav a{margin-right:14px;color:#1f3a5f}
main{padding:8px 32px 48px;max-width:1200px}
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:12px 20px;margin:16px 0}
h2{margin:4px 0 8px;font-size:19px}h3{font-size:15px;margin:14px 0 6px}
table{border-collapse:collapse;margin:6px 0}td,th{border-bottom:1px solid #eee;padding:3px 10px;text-align:left}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.missing{color:#8a5300;background:#fff6e0;padding:6px 10px;border-radius:4px}
.q{color:#555;font-style:italic;margin:0 0 8px}
details.example{border:1px solid #ddd;border-radius:4px;margin:4px 0;padding:2px 8px;background:#fcfcfc}
details.example summary{cursor:pointer}.values{color:#555;font-size:12px}
pre.text{white-space:pre-wrap;word-break:break-all;font:13px/1.6 inherit;max-height:360px;overflow:auto;margin:6px 0}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:12px}
del{background:#fdd;text-decoration:none}ins{background:#dfd;text-decoration:none}
.grid{display:flex;flex-wrap:wrap;gap:10px}.tile{width:150px;font-size:12px}
.tile img{max-width:140px;max-height:140px;display:block;border:1px solid #ccc}
.noimg{width:128px;height:64px;background:#eee;color:#777;display:flex;align-items:center;justify-content:center}
.cols{display:flex;flex-wrap:wrap;gap:24px}
svg text{font:11px system-ui,sans-serif;fill:#333}
";

/// Horizontal bars, one per count.
fn bars(items: &[Count], color: &str) -> String {
    if items.is_empty() {
        return "<p class=\"missing\">nothing to count</p>".to_string();
    }
    let max = items.iter().map(|c| c.count).max().unwrap_or(1).max(1);
    let (label_w, bar_w, row) = (220.0, 360.0, 18.0);
    let h = row * items.len() as f64 + 4.0;
    let mut s = format!(
        "<svg class=\"chart\" width=\"{}\" height=\"{h}\" role=\"img\">",
        label_w + bar_w + 80.0
    );
    for (i, c) in items.iter().enumerate() {
        let y = i as f64 * row;
        let w = bar_w * c.count as f64 / max as f64;
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{label_w}\" y=\"{}\" width=\"{w:.1}\" height=\"{}\" fill=\"{color}\"/>\
             <text x=\"{}\" y=\"{}\">{}</text>",
            label_w - 6.0,
            y + 13.0,
            esc(&c.name),
            y + 2.0,
            row - 4.0,
            label_w + w + 4.0,
            y + 13.0,
            num(c.count)
        );
    }
    s.push_str("</svg>");
    s
}

/// Vertical bars over `bins`, with a red line at `mark`.
fn histogram(bins: &[Bin], mark: Option<f64>, label: &str) -> String {
    if bins.is_empty() {
        return "<p class=\"missing\">no values</p>".to_string();
    }
    let (w, h, left, bottom) = (520.0, 150.0, 40.0, 30.0);
    let max = bins.iter().map(|b| b.count).max().unwrap_or(1).max(1);
    let bw = (w - left) / bins.len() as f64;
    let mut s = format!(
        "<svg class=\"chart\" width=\"{w}\" height=\"{}\" role=\"img\" aria-label=\"{}\">",
        h + bottom,
        esc(label)
    );
    for (i, b) in bins.iter().enumerate() {
        let bh = (h - 10.0) * b.count as f64 / max as f64;
        let _ = write!(
            s,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"#5b8cc4\">\
             <title>{} to {}: {}</title></rect>",
            left + i as f64 * bw,
            h - bh,
            (bw - 1.0).max(1.0),
            short(b.lo),
            short(b.hi),
            num(b.count)
        );
    }
    let (lo, hi) = (bins[0].lo, bins[bins.len() - 1].hi);
    let _ = write!(
        s,
        "<line x1=\"{left}\" y1=\"{h}\" x2=\"{w}\" y2=\"{h}\" stroke=\"#999\"/>\
         <text x=\"{left}\" y=\"{}\">{}</text><text x=\"{w}\" y=\"{}\" text-anchor=\"end\">{}</text>\
         <text x=\"{}\" y=\"12\" text-anchor=\"end\">{}</text>",
        h + 14.0,
        short(lo),
        h + 14.0,
        short(hi),
        left - 4.0,
        num(max)
    );
    if let Some(m) = mark.filter(|m| *m >= lo && *m <= hi && hi > lo) {
        let x = left + (w - left) * (m - lo) / (hi - lo);
        let _ = write!(
            s,
            "<line class=\"threshold\" x1=\"{x:.1}\" y1=\"0\" x2=\"{x:.1}\" y2=\"{h}\" \
             stroke=\"#d33\" stroke-width=\"2\"/><text x=\"{:.1}\" y=\"{}\" fill=\"#d33\">threshold {}</text>",
            x + 3.0,
            h + 26.0,
            short(m)
        );
    }
    s.push_str("</svg>");
    s
}

/// One line of a chart: its name, its colour and its points.
type Series<'a> = (&'a str, &'a str, Vec<(f64, f64)>);

/// Lines over steps.
fn lines(series: &[Series<'_>], label: &str) -> String {
    let pts = series.iter().flat_map(|s| s.2.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if !x0.is_finite() {
        return "<p class=\"missing\">no values</p>".to_string();
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= y0 {
        y1 = y0 + 1.0;
    }
    let (w, h, left, bottom) = (520.0, 160.0, 50.0, 20.0);
    let mut s = format!(
        "<svg class=\"chart\" width=\"{w}\" height=\"{}\" role=\"img\" aria-label=\"{}\">",
        h + bottom,
        esc(label)
    );
    let sx = |x: f64| left + (w - left - 10.0) * (x - x0) / (x1 - x0);
    let sy = |y: f64| 6.0 + (h - 12.0) * (1.0 - (y - y0) / (y1 - y0));
    for (i, (name, color, points)) in series.iter().enumerate() {
        if points.is_empty() {
            continue;
        }
        let path: Vec<String> = points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        let _ = write!(
            s,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\"/>\
             <text x=\"{}\" y=\"{}\" fill=\"{color}\" text-anchor=\"end\">{}</text>",
            path.join(" "),
            w - 4.0,
            14.0 + 14.0 * i as f64,
            esc(name)
        );
        if points.len() == 1 {
            let (x, y) = points[0];
            let _ = write!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{color}\"/>",
                sx(x),
                sy(y)
            );
        }
    }
    let _ = write!(
        s,
        "<line x1=\"{left}\" y1=\"{h}\" x2=\"{w}\" y2=\"{h}\" stroke=\"#999\"/>\
         <text x=\"{}\" y=\"12\" text-anchor=\"end\">{}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
         <text x=\"{left}\" y=\"{}\">step {}</text><text x=\"{w}\" y=\"{}\" text-anchor=\"end\">{}</text></svg>",
        left - 4.0,
        short(y1),
        left - 4.0,
        h - 2.0,
        short(y0),
        h + 14.0,
        short(x0),
        h + 14.0,
        short(x1)
    );
    s
}

fn example(e: &Example) -> String {
    let title = e
        .title
        .clone()
        .unwrap_or_else(|| format!("document {}", e.seq));
    let url = e
        .url
        .as_deref()
        .map(|u| format!("<div>{}</div>", esc(u)))
        .unwrap_or_default();
    let values = if e.values.is_empty() {
        String::new()
    } else {
        let v: Vec<String> = e
            .values
            .iter()
            .map(|(k, v)| format!("{k} {}", short(*v)))
            .collect();
        format!("<div class=\"values\">{}</div>", esc(&v.join(" · ")))
    };
    format!(
        "<details class=\"example\" data-seq=\"{}\"><summary>{} <small>· {} · {} characters · {}</small></summary>\
         {url}{values}<pre class=\"text\">{}</pre></details>",
        e.seq,
        esc(&title),
        esc(&e.source),
        num(e.chars),
        esc(&e.note),
        esc(&e.text)
    )
}

fn missing(r: &Report, key: &str) -> String {
    r.missing
        .get(key)
        .map(|m| format!("<p class=\"missing\">{}</p>", esc(m)))
        .unwrap_or_default()
}

fn table(head: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut s = String::from("<table><tr>");
    for (i, h) in head.iter().enumerate() {
        let _ = write!(
            s,
            "<th{}>{}</th>",
            if i > 0 { " class=\"n\"" } else { "" },
            h
        );
    }
    s.push_str("</tr>");
    for row in rows {
        s.push_str("<tr>");
        for (i, c) in row.iter().enumerate() {
            let _ = write!(s, "<td{}>{c}</td>", if i > 0 { " class=\"n\"" } else { "" });
        }
        s.push_str("</tr>");
    }
    s.push_str("</table>");
    s
}

fn open(s: &mut String, id: &str, title: &str, question: &str) {
    let _ = write!(
        s,
        "<section id=\"{id}\" data-section=\"{id}\"><h2>{title}</h2><p class=\"q\">{question}</p>"
    );
}

pub(crate) fn render(r: &Report) -> String {
    let mut s = String::with_capacity(1 << 20);
    let _ = write!(
        s,
        "<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>zhcorpus report: {}</title><style>{CSS}</style></head><body>\
         <header><h1>What this corpus is made of</h1><div>{}</div></header><nav>",
        esc(&r.store),
        esc(&r.store)
    );
    for (id, name) in [
        ("funnel", "funnel"),
        ("crawl", "crawl"),
        ("clean", "clean"),
        ("dedup", "dedup"),
        ("lengths", "lengths"),
        ("about", "about"),
        ("tokenizer", "tokenizer"),
        ("images", "image-text pairs"),
        ("training", "training"),
    ] {
        let _ = write!(s, "<a href=\"#{id}\">{name}</a>");
    }
    s.push_str("</nav><main>");

    // funnel
    open(
        &mut s,
        "funnel",
        "Funnel",
        "How much of what was fetched reaches training, overall and per source?",
    );
    // tokens are not on the documents' scale: in the table only
    let steps: Vec<Count> = r
        .funnel
        .steps
        .iter()
        .filter(|st| st.name != "tokens")
        .filter_map(|st| {
            st.count.map(|c| Count {
                name: st.name.clone(),
                count: c,
            })
        })
        .collect();
    s.push_str(&bars(&steps, "#1f3a5f"));
    let documents = r
        .funnel
        .steps
        .iter()
        .find(|st| st.name == "documents")
        .and_then(|st| st.count);
    s.push_str(&table(
        &["step", "count", "of the documents"],
        r.funnel
            .steps
            .iter()
            .filter_map(|st| {
                let c = st.count?;
                let share = match documents {
                    Some(d) if d > 0 && st.name != "tokens" => {
                        format!("{:.1}%", 100.0 * c as f64 / d as f64)
                    }
                    _ => String::new(),
                };
                Some(vec![esc(&st.name), c.to_string(), share])
            })
            .collect(),
    ));
    let not_run: Vec<&str> = r
        .funnel
        .steps
        .iter()
        .filter(|st| st.count.is_none())
        .map(|st| st.name.as_str())
        .collect();
    if !not_run.is_empty() {
        let _ = write!(
            s,
            "<p class=\"missing\">not counted: {} (the stage has not run, or its files were not given)</p>",
            esc(&not_run.join(", "))
        );
    }
    s.push_str(&missing(r, "documents"));
    s.push_str(&missing(r, "tokens"));
    s.push_str(&table(
        &[
            "source",
            "documents",
            "kept by clean",
            "kept by dedup",
            "characters",
            "kept characters",
        ],
        r.funnel
            .sources
            .iter()
            .map(|x| {
                vec![
                    esc(&x.source),
                    num(x.documents),
                    num(x.clean_kept),
                    num(x.dedup_kept),
                    num(x.chars),
                    num(x.kept_chars),
                ]
            })
            .collect(),
    ));
    s.push_str("</section>");

    // crawl
    open(
        &mut s,
        "crawl",
        "Crawl",
        "Which hosts answered, with what, in which encoding, and what did robots.txt refuse?",
    );
    match &r.crawl {
        Some(c) => {
            let _ = write!(
                s,
                "<p>{} pages from {} hosts; {} refused by robots.txt.</p><div class=\"cols\"><div><h3>status</h3>{}</div>\
                 <div><h3>charsets (how decided)</h3>{}</div><div><h3>errors</h3>{}</div></div><h3>pages per minute</h3>{}",
                num(c.pages),
                num(c.hosts.len() as u64),
                num(c.robots_refused),
                bars(&c.statuses, "#5b8cc4"),
                bars(&c.charsets, "#6aa06a"),
                if c.error_classes.is_empty() {
                    "<p>none</p>".to_string()
                } else {
                    bars(&c.error_classes, "#c46a5b")
                },
                bars(&c.timeline, "#888"),
            );
            s.push_str(&table(
                &["host", "pages", "2xx", "errors", "robots refused"],
                c.hosts
                    .iter()
                    .take(50)
                    .map(|h| {
                        vec![
                            esc(&h.host),
                            num(h.pages),
                            num(h.ok),
                            num(h.errors),
                            num(h.robots_refused),
                        ]
                    })
                    .collect(),
            ));
        }
        None => s.push_str(&missing(r, "crawl")),
    }
    s.push_str("</section>");

    // clean
    open(
        &mut s,
        "clean",
        "Clean",
        "What did each rule throw away, where do its thresholds cut, and was it right?",
    );
    match &r.clean {
        Some(c) => {
            let _ = write!(
                s,
                "<p>{} judged, {} kept, {} texts changed (lines dropped, PII masked).</p>{}",
                num(c.judged),
                num(c.kept),
                num(c.changed),
                bars(&c.removed, "#c46a5b")
            );
            let _ = write!(
                s,
                "<h3>PII masked, by type</h3>{}",
                if c.pii.is_empty() {
                    "<p>none</p>".to_string()
                } else {
                    bars(&c.pii, "#8a6ac4")
                }
            );
            for rule in &c.rules {
                let bound = match (&rule.bound, rule.threshold) {
                    (Some(b), Some(t)) => {
                        let side = if b == "max" { "above" } else { "below" };
                        format!("removes {side} {}", short(t))
                    }
                    _ => "no threshold recorded".to_string(),
                };
                let _ = write!(
                    s,
                    "<div class=\"rule\" data-rule=\"{}\"><h3>{} <small>({} removed; {})</small></h3>{}",
                    esc(&rule.rule),
                    esc(&rule.rule),
                    num(rule.removed),
                    bound,
                    histogram(&rule.histogram, rule.threshold, &rule.rule)
                );
                if !rule.rejected.is_empty() {
                    s.push_str("<div>removed:</div>");
                    for e in &rule.rejected {
                        s.push_str(&example(e));
                    }
                }
                if !rule.barely_kept.is_empty() {
                    s.push_str("<div>barely kept:</div>");
                    for e in &rule.barely_kept {
                        s.push_str(&example(e));
                    }
                }
                s.push_str("</div>");
            }
        }
        None => s.push_str(&missing(r, "clean")),
    }
    s.push_str("</section>");

    // dedup
    open(
        &mut s,
        "dedup",
        "Dedup",
        "Which documents were merged as duplicates, how big are the clusters, what differs?",
    );
    match &r.dedup {
        Some(d) => {
            let _ = write!(
                s,
                "<p>{} judged, {} kept.</p><div class=\"cols\"><div><h3>by kind</h3>{}</div>\
                 <div><h3>clusters by size (members)</h3>{}</div></div>",
                num(d.judged),
                num(d.kept),
                bars(&d.kinds, "#5b8cc4"),
                bars(&d.cluster_sizes, "#888")
            );
            for c in &d.largest {
                let mut diff = String::new();
                for part in &c.diff {
                    match part.op.as_str() {
                        "kept" => {
                            let _ = write!(diff, "<del>{}</del>", esc(&part.text));
                        }
                        "removed" => {
                            let _ = write!(diff, "<ins>{}</ins>", esc(&part.text));
                        }
                        _ => diff.push_str(&esc(&part.text)),
                    }
                }
                let _ = write!(
                    s,
                    "<h3>cluster {} ({} members)</h3><div class=\"pair\">{}{}</div>\
                     <details class=\"example diff\"><summary>differences (red: only in the kept one; green: only in the duplicate)</summary>\
                     <pre class=\"text\">{diff}</pre></details>",
                    c.cluster,
                    c.size,
                    example(&c.kept),
                    example(&c.duplicate)
                );
            }
            s.push_str("<h3>contamination hits</h3>");
            if d.contaminated.is_empty() {
                s.push_str("<p>none</p>");
            }
            for e in &d.contaminated {
                s.push_str(&example(e));
            }
        }
        None => s.push_str(&missing(r, "dedup")),
    }
    s.push_str("</section>");

    // lengths
    open(
        &mut s,
        "lengths",
        "Lengths",
        "How long are the documents, in characters, before and after the filters?",
    );
    let _ = write!(
        s,
        "<div class=\"cols\"><div><h3>all documents</h3>{}</div><div><h3>kept</h3>{}</div></div>",
        histogram(&r.lengths.all, None, "all documents"),
        histogram(&r.lengths.kept, None, "kept documents")
    );
    s.push_str("</section>");

    // about
    open(
        &mut s,
        "about",
        "What the corpus is about",
        "Which sources weigh most, what each talks about, and which documents are unlike the rest?",
    );
    if r.about.sources.is_empty() {
        s.push_str("<p class=\"missing\">no kept documents</p>");
    }
    s.push_str(&table(
        &[
            "source",
            "kept characters",
            "share",
            "top words (jieba)",
            "top character pairs",
        ],
        r.about
            .sources
            .iter()
            .map(|x| {
                let join = |v: &[Count]| {
                    esc(&v
                        .iter()
                        .map(|c| format!("{} {}", c.name, c.count))
                        .collect::<Vec<_>>()
                        .join(" · "))
                };
                vec![
                    esc(&x.source),
                    num(x.chars),
                    format!("{:.1}%", 100.0 * x.share),
                    join(&x.words),
                    join(&x.bigrams),
                ]
            })
            .collect(),
    ));
    s.push_str("<h3>most novel documents</h3>");
    for e in &r.about.novel {
        s.push_str(&example(e));
    }
    s.push_str("</section>");

    // tokenizer
    open(
        &mut s,
        "tokenizer",
        "Tokenizer",
        "How well does the vocabulary fit each source, and how Chinese is it?",
    );
    match &r.tokenizer {
        Some(t) => {
            let _ = write!(
                s,
                "<p>{}: {} ids, {:.1}% of them with Han characters.</p>",
                esc(&t.path),
                num(t.vocab_size),
                100.0 * t.han_share
            );
            s.push_str(&table(
                &["source", "characters", "tokens", "characters per token"],
                t.per_source
                    .iter()
                    .map(|x| {
                        vec![
                            esc(&x.source),
                            num(x.chars),
                            num(x.tokens),
                            format!("{:.2}", x.chars_per_token),
                        ]
                    })
                    .collect(),
            ));
            let _ = write!(
                s,
                "<h3>longest Chinese tokens</h3><p>{}</p>",
                esc(&t.longest_han.join(" · "))
            );
        }
        None => s.push_str(&missing(r, "tokenizer")),
    }
    s.push_str("</section>");

    // images
    open(
        &mut s,
        "images",
        "Image-text pairs",
        "What do the kept pairs look like, and why were the others removed?",
    );
    match &r.images {
        Some(im) => {
            let _ = write!(
                s,
                "<p>{} pairs, {} judged, {} kept.</p><div class=\"cols\"><div><h3>removed, by reason</h3>{}</div>\
                 <div><h3>caption sources</h3>{}</div></div><h3>kept pairs</h3><div class=\"grid\">",
                num(im.pairs),
                num(im.judged),
                num(im.kept),
                bars(&im.removed, "#c46a5b"),
                bars(&im.caption_sources, "#6aa06a")
            );
            let tile = |t: &crate::build::Thumb| {
                let img = match &t.data_uri {
                    Some(uri) => format!("<img src=\"{uri}\" alt=\"{}\">", esc(&t.caption)),
                    None => "<div class=\"noimg\">not stored</div>".to_string(),
                };
                format!(
                    "<div class=\"tile\" title=\"{}\">{img}<div>{}</div><small>{}</small></div>",
                    esc(&t.image_url),
                    esc(&t.caption),
                    esc(&t.verdict)
                )
            };
            for t in &im.grid {
                s.push_str(&tile(t));
            }
            s.push_str("</div><h3>removed, one per reason</h3><div class=\"grid\">");
            for t in &im.rejected {
                s.push_str(&tile(t));
            }
            s.push_str("</div>");
        }
        None => s.push_str(&missing(r, "images")),
    }
    s.push_str("</section>");

    // training
    open(
        &mut s,
        "training",
        "Training",
        "Did the loss fall, and how fast did it train?",
    );
    match &r.training {
        Some(t) => {
            let pick = |f: fn(&crate::build::MetricRow) -> Option<f64>| -> Vec<(f64, f64)> {
                t.steps
                    .iter()
                    .filter_map(|m| f(m).map(|v| (m.step as f64, v)))
                    .collect()
            };
            let _ = write!(
                s,
                "<p>{}: {} steps.</p><div class=\"cols\"><div><h3>loss</h3>{}</div><div><h3>learning rate</h3>{}</div>\
                 <div><h3>tokens per second</h3>{}</div></div>",
                esc(&t.run),
                num(t.steps.len() as u64),
                lines(
                    &[
                        ("training", "#1f3a5f", pick(|m| m.loss)),
                        ("validation", "#d33", pick(|m| m.val_loss)),
                    ],
                    "loss"
                ),
                lines(&[("lr", "#6aa06a", pick(|m| m.lr))], "learning rate"),
                lines(
                    &[("tokens/s", "#888", pick(|m| m.tokens_per_s))],
                    "tokens per second"
                )
            );
            if t.samples.is_empty() {
                s.push_str(
                    "<p class=\"missing\">the run folder holds no samples (samples.jsonl)</p>",
                );
            }
            for x in &t.samples {
                let _ = write!(s, "<pre class=\"text\">{}</pre>", esc(x));
            }
        }
        None => s.push_str(&missing(r, "training")),
    }
    s.push_str("</section></main></body></html>\n");
    s
}
