//! Sitemaps (sitemaps.org): `<urlset>` lists pages, `<sitemapindex>` lists more sitemaps;
//! either may come gzip-compressed, and a plain-text sitemap lists one URL per line.

use std::io::Read;

use quick_xml::events::Event;

/// The URLs a sitemap lists.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sitemap {
    pub pages: Vec<String>,
    pub sitemaps: Vec<String>,
}

/// Parses a sitemap body, gunzipping it first when it is gzip (by its magic bytes), and
/// reading at most `max` decompressed bytes.
pub fn parse(body: &[u8], max: usize) -> Result<Sitemap, String> {
    let mut data = Vec::new();
    if body.starts_with(&[0x1f, 0x8b]) {
        flate2::read::MultiGzDecoder::new(body)
            .take(max as u64)
            .read_to_end(&mut data)
            .map_err(|e| format!("gzip: {e}"))?;
    } else {
        data.extend_from_slice(&body[..body.len().min(max)]);
    }
    let start = data
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(data.len());
    if data.get(start) != Some(&b'<') {
        // text sitemap: one absolute URL per line
        let text = String::from_utf8_lossy(&data);
        let pages = text
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("http://") || l.starts_with("https://"))
            .map(str::to_string)
            .collect();
        return Ok(Sitemap {
            pages,
            sitemaps: Vec::new(),
        });
    }
    let mut reader = quick_xml::Reader::from_reader(&data[..]);
    let mut buf = Vec::new();
    let mut out = Sitemap::default();
    // the element enclosing the current <loc>: url or sitemap
    let mut parent: Option<bool> = None;
    let mut in_loc = false;
    let mut loc = String::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => match e.local_name().as_ref() {
                b"url" => parent = Some(false),
                b"sitemap" => parent = Some(true),
                b"loc" => {
                    in_loc = true;
                    loc.clear();
                }
                _ => {}
            },
            Ok(Event::Text(t)) if in_loc => {
                if let Ok(s) = t.decode() {
                    loc.push_str(&s);
                }
            }
            Ok(Event::GeneralRef(r)) if in_loc => {
                let name = String::from_utf8_lossy(&r);
                loc.push_str(match name.as_ref() {
                    "amp" => "&",
                    "lt" => "<",
                    "gt" => ">",
                    "quot" => "\"",
                    "apos" => "'",
                    _ => "",
                });
            }
            Ok(Event::CData(t)) if in_loc => loc.push_str(&String::from_utf8_lossy(&t)),
            Ok(Event::End(e)) => match e.local_name().as_ref() {
                b"loc" => {
                    in_loc = false;
                    let l = loc.trim().to_string();
                    if !l.is_empty() {
                        match parent {
                            Some(true) => out.sitemaps.push(l),
                            _ => out.pages.push(l),
                        }
                    }
                }
                b"url" | b"sitemap" => parent = None,
                _ => {}
            },
            Ok(Event::Eof) => break,
            // a broken sitemap gives what was read before the damage
            Err(_) => break,
            _ => {}
        }
        buf.clear();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn urlset_index_gzip_and_text() {
        let urlset = br#"<?xml version="1.0" encoding="UTF-8"?>
            <urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
              <url><loc>http://a.cn/1.html</loc><lastmod>2024-01-01</lastmod></url>
              <url><loc> http://a.cn/s?a=1&amp;b=2 </loc></url>
            </urlset>"#;
        let got = parse(urlset, 1 << 20).unwrap();
        assert_eq!(got.pages, ["http://a.cn/1.html", "http://a.cn/s?a=1&b=2"]);
        assert!(got.sitemaps.is_empty());

        let index =
            br#"<sitemapindex><sitemap><loc>http://a.cn/s1.xml.gz</loc></sitemap></sitemapindex>"#;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(index).unwrap();
        let got = parse(&gz.finish().unwrap(), 1 << 20).unwrap();
        assert_eq!(got.sitemaps, ["http://a.cn/s1.xml.gz"]);

        let text = b"http://a.cn/x\n\nnot a url\nhttps://a.cn/y\n";
        assert_eq!(
            parse(text, 1 << 20).unwrap().pages,
            ["http://a.cn/x", "https://a.cn/y"]
        );
        // broken XML keeps what came before the damage
        let broken = b"<urlset><url><loc>http://a.cn/1</loc></url><url><loc>http://a";
        assert_eq!(parse(broken, 1 << 20).unwrap().pages, ["http://a.cn/1"]);
    }
}
