//! `zhcorpus report` in a real browser: the demo's report opened in headless Chromium, driven
//! over the DevTools protocol; and the command's own output, JSON and errors.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use common::{ok, run, stderr};
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

const SECTIONS: [&str; 9] = [
    "funnel",
    "crawl",
    "clean",
    "dedup",
    "lengths",
    "about",
    "tokenizer",
    "images",
    "training",
];

/// Chromium's binary: `$CHROMIUM`, else the first of the usual names on the PATH. Missing, it
/// fails under `CI=true` (the README's test command installs it) and says so elsewhere.
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser", "google-chrome", "chrome"] {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "no Chromium on the PATH (or $CHROMIUM): the report's browser test must run in CI; \
             the README's test command installs Debian's chromium"
        );
    }
    eprintln!(
        "NOT RUN: the report's browser test needs Chromium (apt-get install chromium, or set \
         $CHROMIUM); this test checked nothing"
    );
    None
}

/// A headless Chromium with one page, driven over the DevTools protocol.
struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    session: String,
    next_id: u64,
    /// Every event received, in order.
    events: Vec<Value>,
}

impl Browser {
    fn start(binary: &Path, profile: &Path) -> Browser {
        let mut child = Command::new(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
                "--window-size=1280,900",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("Chromium starts");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let ws_url = loop {
            let line = lines
                .next()
                .expect("Chromium printed its DevTools address")
                .unwrap();
            if let Some(rest) = line.split("DevTools listening on ").nth(1) {
                break rest.trim().to_string();
            }
        };
        // keep reading stderr so that Chromium never blocks on a full pipe
        std::thread::spawn(move || for _ in lines {});
        let addr = ws_url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .unwrap()
            .to_string();
        let stream = TcpStream::connect(&addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let (ws, _) = tungstenite::client(ws_url.as_str(), stream).expect("DevTools handshake");
        let mut b = Browser {
            child,
            ws,
            session: String::new(),
            next_id: 0,
            events: Vec::new(),
        };
        let target = b.call_browser("Target.createTarget", json!({"url": "about:blank"}));
        let target = target["targetId"].as_str().unwrap().to_string();
        let attached = b.call_browser(
            "Target.attachToTarget",
            json!({"targetId": target, "flatten": true}),
        );
        b.session = attached["sessionId"].as_str().unwrap().to_string();
        for domain in [
            "Page.enable",
            "Runtime.enable",
            "Log.enable",
            "Network.enable",
        ] {
            b.call(domain, json!({}));
        }
        b
    }

    fn send(&mut self, method: &str, params: Value, session: bool) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if session {
            msg["sessionId"] = json!(self.session);
        }
        self.ws.send(Message::text(msg.to_string())).unwrap();
        loop {
            if let Some(v) = self.read()
                && v["id"] == json!(id)
            {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// The next message: an event is kept in `events`; a reply is returned.
    fn read(&mut self) -> Option<Value> {
        let Message::Text(text) = self.ws.read().expect("a DevTools message") else {
            return None;
        };
        let v: Value = serde_json::from_str(text.as_str()).unwrap();
        if v.get("method").is_some() {
            self.events.push(v);
            return None;
        }
        Some(v)
    }

    fn call_browser(&mut self, method: &str, params: Value) -> Value {
        self.send(method, params, false)
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        self.send(method, params, true)
    }

    /// The value of a JavaScript expression in the page.
    fn eval(&mut self, expression: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        );
        assert!(r.get("exceptionDetails").is_none(), "{expression}: {r}");
        r["result"]["value"].clone()
    }

    /// Waits for an event named `method`, reading until `timeout`.
    fn wait_for(&mut self, method: &str, timeout: Duration) {
        let start = Instant::now();
        while !self.events.iter().any(|e| e["method"] == json!(method)) {
            assert!(start.elapsed() < timeout, "no {method} within {timeout:?}");
            self.read();
        }
    }

    /// A real mouse click (pressed and released) at the centre of the element `selector`.
    fn click(&mut self, selector: &str) {
        let rect = self.eval(&format!(
            "(() => {{ const e = document.querySelector({selector:?}); e.scrollIntoView({{block: 'center'}});
               const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()"
        ));
        let (x, y) = (rect[0].as_f64().unwrap(), rect[1].as_f64().unwrap());
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            );
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Console errors, uncaught exceptions, failed loads and any request that is not the page
/// itself or an inline `data:` URI.
fn problems(events: &[Value], page: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in events {
        let p = &e["params"];
        match e["method"].as_str().unwrap_or("") {
            "Runtime.exceptionThrown" => out.push(format!("exception: {p}")),
            "Runtime.consoleAPICalled" if p["type"] == json!("error") => {
                out.push(format!("console error: {p}"))
            }
            "Log.entryAdded" if p["entry"]["level"] == json!("error") => {
                out.push(format!("log error: {}", p["entry"]))
            }
            "Network.loadingFailed" => out.push(format!("failed request: {p}")),
            "Network.requestWillBeSent" => {
                let url = p["request"]["url"].as_str().unwrap_or("");
                if url != page && !url.starts_with("data:") {
                    out.push(format!("request: {url}"));
                }
            }
            _ => {}
        }
    }
    out
}

#[test]
fn the_demos_report_opens_offline_in_chromium_with_every_section_and_examples_that_open() {
    let Some(binary) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = ok(run(dir.path(), &["demo", "--quiet", "--output", "d"]));
    let page = dir.path().join("d").join("report.html");
    assert!(
        out.contains(&format!(
            "report: {}",
            Path::new("d").join("report.html").display()
        )),
        "{out}"
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.len() < 4 << 20, "{} bytes", html.len());
    // nothing to fetch: no script, no stylesheet link, no source but inline data
    assert!(!html.contains("<script"), "the page has a script");
    assert!(!html.contains("<link"), "the page links a file");
    for src in html.split("src=\"").skip(1) {
        assert!(
            src.starts_with("data:"),
            "src={}",
            &src[..src.len().min(60)]
        );
    }

    let mut b = Browser::start(&binary, &dir.path().join("profile"));
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    b.call("Page.navigate", json!({"url": url}));
    b.wait_for("Page.loadEventFired", Duration::from_secs(60));
    let found = problems(&b.events, &url);
    assert!(found.is_empty(), "{found:#?}");
    let load = b.eval("performance.getEntriesByType('navigation')[0].loadEventEnd");
    eprintln!(
        "the demo's report: {} bytes, loaded in {load} ms",
        html.len()
    );

    // every section there and drawn: a chart or a table, and no "missing" note but the one
    // about samples (the demo's trainer saves none)
    for id in SECTIONS {
        let v = b.eval(&format!(
            "(() => {{ const s = document.getElementById('{id}'); if (!s) return null;
               return [s.querySelectorAll('svg, table, .tile').length, s.innerText.length,
                       [...s.querySelectorAll('.missing')].map(m => m.innerText)]; }})()"
        ));
        assert!(!v.is_null(), "section {id} is missing");
        assert!(
            v[0].as_u64().unwrap() > 0,
            "section {id} draws nothing: {v}"
        );
        assert!(
            v[1].as_u64().unwrap() > 80,
            "section {id} is nearly empty: {v}"
        );
        for m in v[2].as_array().unwrap() {
            assert!(
                m.as_str().unwrap().contains("samples"),
                "section {id} says: {m}"
            );
        }
    }
    // the figures the page shows are the store's
    let funnel = b.eval("document.getElementById('funnel').innerText");
    let stats: Value = serde_json::from_str(&ok(run(
        dir.path(),
        &["stats", "--db", "d/corpus.db", "--json"],
    )))
    .unwrap();
    let kept = stats["kept"].as_u64().unwrap();
    assert!(
        funnel
            .as_str()
            .unwrap()
            .contains(&format!("kept by dedup\t{kept}\t")),
        "{funnel}"
    );
    // the thresholds are drawn on the rules' value charts
    let lines = b.eval("document.querySelectorAll('#clean line.threshold').length");
    assert!(lines.as_u64().unwrap() >= 5, "{lines}");
    // the kept pairs are drawn as decoded images
    let drawn = b.eval(
        "[...document.querySelectorAll('#images img')].filter(i => i.complete && i.naturalWidth > 0).length",
    );
    assert!(drawn.as_u64().unwrap() >= 10, "{drawn}");

    // a click on a removed document's title opens its text
    let sel = "#clean details.example summary";
    let before = b.eval(&format!(
        "(() => {{ const d = document.querySelector({sel:?}).parentElement;
           return [d.open, d.querySelector('pre').checkVisibility()]; }})()"
    ));
    assert_eq!(before, json!([false, false]), "{before}");
    b.click(sel);
    let after = b.eval(&format!(
        "(() => {{ const d = document.querySelector({sel:?}).parentElement;
           const p = d.querySelector('pre');
           return [d.open, p.checkVisibility(), p.getBoundingClientRect().height, p.innerText.length]; }})()"
    ));
    assert_eq!(
        (&after[0], &after[1]),
        (&json!(true), &json!(true)),
        "{after}"
    );
    assert!(after[2].as_f64().unwrap() > 10.0, "{after}");
    assert!(after[3].as_u64().unwrap() > 20, "{after}");
    // with every rule's value the cleaner measured on it
    let values = b.eval(&format!(
        "document.querySelector({sel:?}).parentElement.querySelector('.values').innerText"
    ));
    for rule in ["han_ratio", "min_chars", "terminal_punct_ratio"] {
        assert!(values.as_str().unwrap().contains(rule), "{values}");
    }
    let found = problems(&b.events, &url);
    assert!(found.is_empty(), "{found:#?}");

    // the other sections' numbers against the store and the folder's files
    let json: Value = serde_json::from_str(&ok(run(
        dir.path(),
        &[
            "report",
            "--db",
            "d/corpus.db",
            "--run",
            "d/run",
            "--shards",
            "d/shards",
            "--tokenizer",
            "d/tokenizer/tokenizer.json",
            "--json",
        ],
    )))
    .unwrap();
    assert_eq!(json["crawl"]["pages"], stats["pages"]);
    let refused = stats["pages_by_status"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == json!("error:robots_disallowed"))
        .map(|c| c["count"].clone())
        .unwrap();
    assert_eq!(json["crawl"]["robots_refused"], refused);
    let host_pages: u64 = json["crawl"]["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["pages"].as_u64().unwrap())
        .sum();
    assert_eq!(json["crawl"]["pages"], json!(host_pages));
    assert_eq!(json["images"]["pairs"], stats["images"]["pairs"]);
    assert_eq!(json["images"]["kept"], stats["images"]["kept"]);
    let removed: u64 = json["images"]["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["count"].as_u64().unwrap())
        .sum();
    assert_eq!(
        removed + json["images"]["kept"].as_u64().unwrap(),
        json["images"]["judged"].as_u64().unwrap()
    );
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("d/shards/manifest.json")).unwrap(),
    )
    .unwrap();
    let tokens =
        manifest["tokens"]["train"].as_u64().unwrap() + manifest["tokens"]["val"].as_u64().unwrap();
    assert_eq!(json["funnel"]["steps"][4]["count"], json!(tokens));
    assert_eq!(json["tokenizer"]["vocab_size"], manifest["vocab_size"]);
    let metrics = std::fs::read_to_string(dir.path().join("d/run/metrics.jsonl")).unwrap();
    assert_eq!(
        json["training"]["steps"].as_array().unwrap().len(),
        metrics.lines().count()
    );
    assert!(
        json["missing"].as_object().unwrap().is_empty(),
        "{}",
        json["missing"]
    );

    let shot = b.call(
        "Page.captureScreenshot",
        json!({"format": "png", "captureBeyondViewport": true}),
    );
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().unwrap())
        .unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
    let saved = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-demo.png");
    std::fs::write(&saved, &png).unwrap();
    eprintln!("screenshot: {}", saved.display());
}

#[test]
fn report_json_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    // an empty store: every part said missing, plainly
    let store = corpus::Store::open(dir.path().join("empty.db")).unwrap();
    drop(store);
    let out = ok(run(
        dir.path(),
        &["report", "--db", "empty.db", "--output", "empty.html"],
    ));
    assert!(out.contains("wrote empty.html"), "{out}");
    let html = std::fs::read_to_string(dir.path().join("empty.html")).unwrap();
    for id in SECTIONS {
        assert!(html.contains(&format!("<section id=\"{id}\"")), "{id}");
    }
    for said in [
        "nothing was crawled",
        "the cleaner has not judged any document",
        "dedup has not judged any document",
        "no image-text pairs",
        "no run folder given",
        "the store holds no documents",
    ] {
        assert!(html.contains(said), "{said}");
    }
    let json: Value = serde_json::from_str(&ok(run(
        dir.path(),
        &["report", "--db", "empty.db", "--json"],
    )))
    .unwrap();
    assert_eq!(json["funnel"]["steps"][1]["count"], json!(0));
    assert!(json["clean"].is_null() && json["missing"]["clean"].is_string());

    // a store that does not exist, a run folder without metrics: exit 2 naming the file
    let o = run(dir.path(), &["report", "--db", "nope.db"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("nope.db"), "{}", stderr(&o));
    std::fs::create_dir(dir.path().join("run")).unwrap();
    let o = run(
        dir.path(),
        &["report", "--db", "empty.db", "--run", "run", "-o", "r.html"],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("metrics.jsonl"), "{}", stderr(&o));
    assert!(!dir.path().join("r.html").exists());
}
