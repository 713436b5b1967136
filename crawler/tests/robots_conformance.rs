//! Google's robots.txt conformance cases (google/robotstxt-spec-test), when the shared data set
//! is present beside the checkout. The project's own robots tests live with the parser.

use std::path::PathBuf;

use base64::Engine;
use crawler::robots::{Robots, path_of};

#[test]
fn google_spec_test_cases() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/robots-conformance.jsonl");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        // CI lays the shared data beside the checkout: there, missing data is a failure
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!(
                "{}: {e}: the conformance cases must run in CI",
                path.display()
            )
        }
        Err(e) => {
            eprintln!(
                "NOT RUN: google_spec_test_cases needs {} ({e}); this test checked nothing",
                path.display()
            );
            return;
        }
    };
    let mut failed = Vec::new();
    let mut total = 0;
    for line in text.lines() {
        let case: serde_json::Value = serde_json::from_str(line).unwrap();
        total += 1;
        let body = base64::engine::general_purpose::STANDARD
            .decode(case["robotstxt_b64"].as_str().unwrap())
            .unwrap();
        let agent = case["user_agent"].as_str().unwrap();
        let url = case["url"].as_str().unwrap();
        // the URL's path exactly as written: the cases check that a raw `ツ` is not
        // matched by an escaped pattern
        let path = path_of(url);
        let got = Robots::parse(&body, agent).allowed(path);
        let want = case["expected"] == "ALLOWED";
        if got != want {
            failed.push(format!(
                "{}/{}#{}: {url} for {agent}: expected {}",
                case["suite"], case["file"], case["case"], case["expected"]
            ));
        }
    }
    eprintln!(
        "robots conformance: {} of {total} pass",
        total - failed.len()
    );
    assert!(
        failed.is_empty(),
        "{} failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}
