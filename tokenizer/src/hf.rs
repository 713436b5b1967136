//! Hugging Face `tokenizer.json`: written so that the `tokenizers` library splits, merges and
//! numbers exactly as [`Tokenizer::encode`] does, and read back. Tokens are spelled in GPT-2's
//! byte-to-character mapping (a space is `Ġ`), as every byte-level BPE file is.

use std::path::Path;

use serde_json::{Value, json};

use crate::bpe::{InvalidTokenizer, Tokenizer};
use crate::pretok::{self, PreTokenizer, Segment};

/// GPT-2's printable character for each byte.
pub fn byte_chars() -> [char; 256] {
    let mut out = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..=255u8 {
        let printable = matches!(b, b'!'..=b'~' | 0xa1..=0xac | 0xae..=0xff);
        out[b as usize] = if printable {
            char::from(b)
        } else {
            n += 1;
            char::from_u32(255 + n).unwrap_or('\0')
        };
    }
    out
}

fn spell(bytes: &[u8], table: &[char; 256]) -> String {
    bytes.iter().map(|&b| table[b as usize]).collect()
}

fn unspell(token: &str, table: &[char; 256]) -> Option<Vec<u8>> {
    token
        .chars()
        .map(|c| table.iter().position(|&t| t == c).map(|b| b as u8))
        .collect()
}

/// The tokenizer as `tokenizer.json`.
pub fn to_json(tok: &Tokenizer) -> Value {
    let table = byte_chars();
    let special_ids: Vec<u32> = tok.specials.iter().map(|s| s.1).collect();
    let mut vocab = serde_json::Map::new();
    for (id, bytes) in tok.vocab.iter().enumerate() {
        if special_ids.contains(&(id as u32)) {
            continue;
        }
        vocab.insert(spell(bytes, &table), json!(id));
    }
    for (text, id) in &tok.specials {
        vocab.entry(text.clone()).or_insert(json!(id));
    }
    let merges: Vec<String> = tok
        .merges
        .iter()
        .map(|&(a, b)| {
            format!(
                "{} {}",
                spell(&tok.vocab[a as usize], &table),
                spell(&tok.vocab[b as usize], &table)
            )
        })
        .collect();
    let added: Vec<Value> = tok
        .specials
        .iter()
        .map(|(text, id)| {
            json!({"id": id, "content": text, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": pretok::pattern(tok.pre.han_max)},
                 "behavior": "Isolated", "invert": false},
                {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
                 "use_regex": false}
            ]
        },
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true,
                    "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null,
            "continuing_subword_prefix": null, "end_of_word_suffix": null,
            "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab, "merges": merges
        }
    })
}

/// Where the settings the expression cannot carry (jieba segmentation) go: beside the
/// tokenizer, `NAME.zhcorpus.json` for `NAME.json` (Hugging Face refuses unknown keys in
/// `tokenizer.json` itself).
pub fn sidecar_path(path: &Path) -> std::path::PathBuf {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!("{stem}.zhcorpus.json"))
}

/// Writes the sidecar of the tokenizer.json at `path` whose bytes are `json`.
pub fn save_sidecar(path: &Path, json: &[u8], pre: &PreTokenizer) -> std::io::Result<()> {
    let sidecar = json!({
        "tokenizer_xxh3": format!("{:016x}", xxhash_rust::xxh3::xxh3_64(json)),
        "pre_tokenizer": pre,
    });
    write_atomic(
        &sidecar_path(path),
        serde_json::to_string_pretty(&sidecar)?.as_bytes(),
    )
}

/// Writes `tokenizer.json` to `path`, and `vocab.json` and `merges.txt` (GPT-2's pair of
/// files, for tools that read those) beside it.
pub fn save(tok: &Tokenizer, path: &Path) -> std::io::Result<()> {
    let j = to_json(tok);
    let text = serde_json::to_string(&j)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    write_atomic(
        &dir.join("vocab.json"),
        serde_json::to_string(&j["model"]["vocab"])?.as_bytes(),
    )?;
    let mut merges = String::from("#version: 0.2\n");
    for m in j["model"]["merges"].as_array().into_iter().flatten() {
        merges.push_str(m.as_str().unwrap_or_default());
        merges.push('\n');
    }
    write_atomic(&dir.join("merges.txt"), merges.as_bytes())?;
    save_sidecar(path, text.as_bytes(), &tok.pre)?;
    // last: a tokenizer.json in place means its companions are too
    write_atomic(path, text.as_bytes())
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = fs_err::File::create(&tmp)?;
    f.write_all(bytes)?;
    // on disk before it takes its name: a task's marker may follow it
    f.sync_all()?;
    drop(f);
    fs_err::rename(&tmp, path)
}

/// Reads a byte-level BPE `tokenizer.json`: one this crate wrote, or another with the same
/// model type and a pre-tokenizer this crate can run (its han_max is read from the split
/// pattern). The jieba settings come from the sidecar file when it belongs to this very
/// tokenizer.json (its recorded hash matches).
pub fn load(path: &Path) -> Result<Tokenizer, InvalidTokenizer> {
    let text = fs_err::read_to_string(path).map_err(|e| InvalidTokenizer(e.to_string()))?;
    let j: Value = serde_json::from_str(&text)
        .map_err(|e| InvalidTokenizer(format!("{}: not JSON: {e}", path.display())))?;
    let hash = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(text.as_bytes()));
    let pre = std::fs::read_to_string(sidecar_path(path))
        .ok()
        .and_then(|s| serde_json::from_str::<Value>(&s).ok())
        .filter(|s| s["tokenizer_xxh3"] == hash.as_str())
        .and_then(|s| serde_json::from_value::<PreTokenizer>(s["pre_tokenizer"].clone()).ok());
    from_json(&j, pre).map_err(|e| InvalidTokenizer(format!("{}: {}", path.display(), e.0)))
}

/// A tokenizer from `tokenizer.json`'s contents; `pre` overrides the pre-tokenizer read from
/// the split pattern.
pub fn from_json(j: &Value, pre: Option<PreTokenizer>) -> Result<Tokenizer, InvalidTokenizer> {
    let bad = |m: &str| InvalidTokenizer(m.to_string());
    let model = &j["model"];
    if model["type"] != "BPE" {
        return Err(bad("not a BPE model"));
    }
    let pre = match pre {
        Some(pre) => pre,
        None => {
            let pattern = j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"]
                .as_str()
                .unwrap_or_default();
            let han_max = (1..=4096)
                .find(|&k| pretok::pattern(k) == pattern)
                .ok_or_else(|| bad("its split pattern is not one this tool runs"))?;
            PreTokenizer {
                han_max,
                segment: Segment::None,
            }
        }
    };
    let table = byte_chars();
    let entries = model["vocab"]
        .as_object()
        .ok_or_else(|| bad("no model.vocab"))?;
    let mut vocab: Vec<Option<Vec<u8>>> = Vec::new();
    let mut put = |id: u64, bytes: Vec<u8>| -> Result<(), InvalidTokenizer> {
        let id = usize::try_from(id).map_err(|_| bad("id out of range"))?;
        if id > 16 << 20 {
            return Err(bad("id out of range"));
        }
        if vocab.len() <= id {
            vocab.resize(id + 1, None);
        }
        vocab[id] = Some(bytes);
        Ok(())
    };
    let mut specials = Vec::new();
    for t in j["added_tokens"].as_array().into_iter().flatten() {
        let (Some(text), Some(id)) = (t["content"].as_str(), t["id"].as_u64()) else {
            return Err(bad("an added token without content or id"));
        };
        specials.push((text.to_string(), id as u32));
        put(id, text.as_bytes().to_vec())?;
    }
    for (token, id) in entries {
        let id = id
            .as_u64()
            .ok_or_else(|| bad("a vocabulary id is not a number"))?;
        if specials.iter().any(|s| u64::from(s.1) == id) {
            continue;
        }
        let bytes = unspell(token, &table)
            .ok_or_else(|| InvalidTokenizer(format!("token {token:?} is not byte-level")))?;
        put(id, bytes)?;
    }
    let vocab: Vec<Vec<u8>> = vocab
        .into_iter()
        .enumerate()
        .map(|(i, v)| v.ok_or_else(|| InvalidTokenizer(format!("id {i} is missing"))))
        .collect::<Result<_, _>>()?;
    let mut by_token: rustc_hash::FxHashMap<&str, u32> = rustc_hash::FxHashMap::default();
    for (token, id) in entries {
        by_token.insert(token, id.as_u64().unwrap_or_default() as u32);
    }
    let mut merges = Vec::new();
    for m in model["merges"].as_array().ok_or_else(|| bad("no merges"))? {
        let (a, b) = match m {
            Value::String(s) => s
                .split_once(' ')
                .ok_or_else(|| bad("a merge without a space"))?,
            Value::Array(v) if v.len() == 2 => (
                v[0].as_str().unwrap_or_default(),
                v[1].as_str().unwrap_or_default(),
            ),
            _ => return Err(bad("a merge is neither \"a b\" nor [a, b]")),
        };
        let id = |t: &str| {
            by_token
                .get(t)
                .copied()
                .ok_or_else(|| InvalidTokenizer(format!("merge names unknown token {t:?}")))
        };
        merges.push((id(a)?, id(b)?));
    }
    // a vocabulary whose bytes are not ids 0-255 in order (another trainer's numbering)
    // cannot be run by this crate's encoder
    Tokenizer::new(pre, vocab, merges, specials)
}
