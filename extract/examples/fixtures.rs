//! Writes the generated failure-kind pages and their true texts for the benchmark:
//! `cargo run --release -p extract --example fixtures -- OUT_DIR` makes
//! `OUT_DIR/<name>.html` and `OUT_DIR/fixtures.json` (`{name: {kind, truth}}`).

#[path = "../tests/fixtures/mod.rs"]
#[allow(dead_code)]
mod fixtures;

fn main() -> std::io::Result<()> {
    let out = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".into()));
    fs_err::create_dir_all(&out)?;
    let mut index = serde_json::Map::new();
    for f in fixtures::all() {
        fs_err::write(out.join(format!("{}.html", f.name)), &f.html)?;
        index.insert(
            f.name.clone(),
            serde_json::json!({"kind": f.kind.name(), "truth": f.truth}),
        );
    }
    fs_err::write(
        out.join("fixtures.json"),
        serde_json::to_string_pretty(&index).map_err(std::io::Error::other)?,
    )?;
    Ok(())
}
