//! WARC 1.1 output: a `warcinfo` record opens each file, then every fetch gives a request and a
//! response record, each its own gzip member (so a file can be cut and indexed per record),
//! with SHA-1 block and payload digests. Files are named by their start time and rolled over
//! at a size limit; each record is flushed when written.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha1::{Digest, Sha1};

use crate::fetch::Hop;

/// Bytes after which a new file is started.
const ROLL_OVER: u64 = 1 << 30;

pub struct WarcWriter {
    dir: PathBuf,
    stem: String,
    index: u32,
    file: Option<BufWriter<File>>,
    written: u64,
    /// Files written so far.
    pub files: Vec<PathBuf>,
}

impl WarcWriter {
    /// Creates the directory if needed; the first file is opened on the first record.
    pub fn new(dir: &Path) -> std::io::Result<WarcWriter> {
        std::fs::create_dir_all(dir)?;
        let stamp = iso8601(SystemTime::now())
            .replace(['-', ':', 'T', 'Z'], "")
            .chars()
            .take(14)
            .collect::<String>();
        Ok(WarcWriter {
            dir: dir.to_path_buf(),
            stem: format!("zhcorpus-{stamp}-{}", std::process::id()),
            index: 0,
            file: None,
            written: 0,
            files: Vec::new(),
        })
    }

    /// Opens the first file, or the next one past the size limit, with its warcinfo record.
    fn ensure_file(&mut self) -> std::io::Result<()> {
        if self.file.is_none() || self.written >= ROLL_OVER {
            if let Some(mut f) = self.file.take() {
                f.flush()?;
            }
            let path = self
                .dir
                .join(format!("{}-{:05}.warc.gz", self.stem, self.index));
            self.index += 1;
            let file = File::create(&path)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            self.files.push(path.clone());
            self.file = Some(BufWriter::new(file));
            self.written = 0;
            let info = format!(
                "software: zhcorpus/{}\r\nformat: WARC File Format 1.1\r\n\
                 conformsTo: https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/\r\n",
                env!("CARGO_PKG_VERSION")
            );
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            let mut headers = vec![("WARC-Filename".to_string(), name.unwrap_or_default())];
            headers.push(("Content-Type".into(), "application/warc-fields".into()));
            self.record("warcinfo", &headers, info.as_bytes())?;
        }
        Ok(())
    }

    fn record(
        &mut self,
        kind: &str,
        headers: &[(String, String)],
        block: &[u8],
    ) -> std::io::Result<String> {
        let id = format!("<urn:uuid:{}>", uuid4());
        let mut head = format!(
            "WARC/1.1\r\nWARC-Type: {kind}\r\nWARC-Record-ID: {id}\r\nWARC-Date: {}\r\n",
            iso8601(SystemTime::now())
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!(
            "WARC-Block-Digest: {}\r\nContent-Length: {}\r\n\r\n",
            sha1_label(block),
            block.len()
        ));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(head.as_bytes())?;
        gz.write_all(block)?;
        gz.write_all(b"\r\n\r\n")?;
        let member = gz.finish()?;
        let Some(f) = self.file.as_mut() else {
            return Err(std::io::Error::other("WARC file not open"));
        };
        f.write_all(&member)?;
        f.flush()?;
        self.written += member.len() as u64;
        Ok(id)
    }

    /// Writes the request and response records of one hop; needs the hop's raw body.
    pub fn write_hop(&mut self, hop: &Hop) -> std::io::Result<()> {
        self.ensure_file()?;
        let raw = hop.raw.as_deref().unwrap_or_default();
        // response block: status line, headers (the body is de-chunked), body as transferred
        let mut response = format!(
            "{} {} {}\r\n",
            warc_version(hop.version),
            hop.status,
            reason(hop.status)
        )
        .into_bytes();
        for (k, v) in &hop.headers {
            if k.eq_ignore_ascii_case("transfer-encoding") {
                continue;
            }
            response.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        response.extend_from_slice(b"\r\n");
        response.extend_from_slice(raw);
        let mut headers = vec![("WARC-Target-URI".to_string(), hop.url.to_string())];
        if let Some(peer) = hop.peer {
            headers.push(("WARC-IP-Address".into(), peer.ip().to_string()));
        }
        headers.push((
            "Content-Type".into(),
            "application/http;msgtype=response".into(),
        ));
        headers.push(("WARC-Payload-Digest".into(), sha1_label(raw)));
        let response_id = self.record("response", &headers, &response)?;

        let mut target = hop.url.path().to_string();
        if let Some(q) = hop.url.query() {
            target.push('?');
            target.push_str(q);
        }
        let mut request = format!("GET {target} HTTP/1.1\r\n").into_bytes();
        let host = crate::urls::authority(&hop.url);
        request.extend_from_slice(format!("host: {host}\r\n").as_bytes());
        for (k, v) in &hop.request_headers {
            request.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        request.extend_from_slice(b"\r\n");
        let headers = vec![
            ("WARC-Target-URI".to_string(), hop.url.to_string()),
            ("WARC-Concurrent-To".into(), response_id),
            (
                "Content-Type".into(),
                "application/http;msgtype=request".into(),
            ),
        ];
        self.record("request", &headers, &request)?;
        Ok(())
    }

    pub fn finish(mut self) -> std::io::Result<Vec<PathBuf>> {
        if let Some(mut f) = self.file.take() {
            f.flush()?;
            f.get_ref().sync_all()?;
        }
        Ok(self.files)
    }
}

fn warc_version(v: &str) -> &str {
    if v == "HTTP/2" { "HTTP/1.1" } else { v }
}

fn reason(status: u16) -> &'static str {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

fn sha1_label(data: &[u8]) -> String {
    format!("sha1:{}", data_encoding::BASE32.encode(&Sha1::digest(data)))
}

fn uuid4() -> String {
    let mut b: [u8; 16] = fastrand::u128(..).to_be_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = data_encoding::HEXLOWER.encode(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// UTC time as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn iso8601(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_ids() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(784_111_777);
        assert_eq!(iso8601(t), "1994-11-06T08:49:37Z");
        assert_eq!(iso8601(std::time::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let id = uuid4();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_eq!(sha1_label(b""), "sha1:3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ");
    }
}
