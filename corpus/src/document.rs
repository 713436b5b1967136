//! The document: one unit of text with a stable id, in the shape of dolma and datatrove JSONL.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};
use xxhash_rust::xxh3::xxh3_128;

/// A document as stored and exchanged. `id` and `text` are required; the fields zhcorpus knows
/// by name get their own columns, and every other field of the input line travels in `extra`
/// untouched, in its original order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Document {
    /// Stable id, unique in a store.
    pub id: String,
    /// The text itself.
    pub text: String,
    /// Where the text came from, when it came from the web.
    pub url: Option<String>,
    /// A name for the collection or host the document belongs to.
    pub source: Option<String>,
    pub title: Option<String>,
    /// Language code, such as `zh`.
    pub lang: Option<String>,
    /// When the document was created or published, as given by the source.
    pub created: Option<String>,
    /// Every other field of the input line, in order.
    pub extra: Map<String, Value>,
}

/// The named fields, in the order they are written.
const NAMED: [&str; 5] = ["url", "source", "title", "lang", "created"];

impl Document {
    /// A document with just an id and a text.
    pub fn new(id: impl Into<String>, text: impl Into<String>) -> Document {
        Document {
            id: id.into(),
            text: text.into(),
            ..Document::default()
        }
    }

    /// Parses one JSONL line. `text` must be a string. `id` may be a string or a number (kept
    /// as its decimal text); when it is absent the id is the hex xxh3-128 of the text, so the
    /// same file imported twice gives the same ids. A named field whose value is not a string
    /// stays in `extra` as it was.
    pub fn from_json(line: &str) -> Result<Document, String> {
        let value: Value = serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?;
        let Value::Object(mut map) = value else {
            return Err("a document must be a JSON object".to_string());
        };
        let text = match map.shift_remove("text") {
            Some(Value::String(s)) => s,
            Some(other) => {
                return Err(format!(
                    "field `text` must be a string, found {}",
                    kind(&other)
                ));
            }
            None => return Err("missing field `text`".to_string()),
        };
        let id = match map.shift_remove("id") {
            Some(Value::String(s)) if !s.is_empty() => s,
            Some(Value::Number(n)) => n.to_string(),
            Some(other) => {
                return Err(format!(
                    "field `id` must be a non-empty string or a number, found {}",
                    kind(&other)
                ));
            }
            None => text_hash_id(&text),
        };
        let mut take = |name: &str| match map.get(name) {
            Some(Value::String(_)) => match map.shift_remove(name) {
                Some(Value::String(s)) => Some(s),
                _ => None,
            },
            _ => None,
        };
        Ok(Document {
            id,
            text,
            url: take("url"),
            source: take("source"),
            title: take("title"),
            lang: take("lang"),
            created: take("created"),
            extra: map,
        })
    }

    /// The document as one JSON line (without the newline): `id`, `text`, the named fields that
    /// are set, then `extra` in order.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a document always serialises")
    }

    /// xxh3-128 of the text, as stored in the `content_hash` column.
    pub fn content_hash(&self) -> [u8; 16] {
        xxh3_128(self.text.as_bytes()).to_be_bytes()
    }

    /// The named fields that are set, in write order.
    fn named(&self) -> impl Iterator<Item = (&'static str, &str)> {
        let values = [
            &self.url,
            &self.source,
            &self.title,
            &self.lang,
            &self.created,
        ];
        NAMED
            .into_iter()
            .zip(values)
            .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
    }

    /// `extra` as JSON text, or `None` when it is empty (how the store keeps it).
    pub(crate) fn extra_json(&self) -> Option<String> {
        (!self.extra.is_empty()).then(|| Value::Object(self.extra.clone()).to_string())
    }
}

impl Serialize for Document {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("id", &self.id)?;
        map.serialize_entry("text", &self.text)?;
        for (k, v) in self.named() {
            map.serialize_entry(k, v)?;
        }
        for (k, v) in &self.extra {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// The id given to a document that arrives without one.
pub fn text_hash_id(text: &str) -> String {
    format!("{:032x}", xxh3_128(text.as_bytes()))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `line` and writes it back; `expected` is the line written, or the error.
    fn check(line: &str, expected: &str) {
        let got = match Document::from_json(line) {
            Ok(doc) => doc.to_json(),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expected, "input: {line}");
    }

    #[test]
    fn parse_and_write() {
        check(r#"{"id":"a","text":"你好"}"#, r#"{"id":"a","text":"你好"}"#);
        check(
            r#"{"text":"正文","id":"b","url":"http://x.cn/","k":[1,2]}"#,
            r#"{"id":"b","text":"正文","url":"http://x.cn/","k":[1,2]}"#,
        );
        // extra fields keep their order, named fields come first
        check(
            r#"{"id":"c","z":1,"text":"t","a":2,"source":"news","lang":"zh"}"#,
            r#"{"id":"c","text":"t","source":"news","lang":"zh","z":1,"a":2}"#,
        );
        // numeric ids become text; a null url stays where it was, as an extra field
        check(
            r#"{"id":42,"text":"t","url":null}"#,
            r#"{"id":"42","text":"t","url":null}"#,
        );
        // escapes are decoded and written back as UTF-8
        check(
            r#"{"id":"d","text":"\u4e2d\u6587\n"}"#,
            "{\"id\":\"d\",\"text\":\"中文\\n\"}",
        );
        check(
            r#"{"text":"无编号"}"#,
            &format!(r#"{{"id":"{}","text":"无编号"}}"#, text_hash_id("无编号")),
        );
    }

    #[test]
    fn bad_lines() {
        check("[1,2]", "error: a document must be a JSON object");
        check(r#"{"id":"a"}"#, "error: missing field `text`");
        check(
            r#"{"id":"a","text":5}"#,
            "error: field `text` must be a string, found a number",
        );
        check(
            r#"{"id":"","text":"x"}"#,
            "error: field `id` must be a non-empty string or a number, found a string",
        );
        check(
            r#"{"id":null,"text":"x"}"#,
            "error: field `id` must be a non-empty string or a number, found null",
        );
        check(
            r#"{"id":"a","text":"x""#,
            "error: invalid JSON: EOF while parsing an object at line 1 column 20",
        );
    }
}
