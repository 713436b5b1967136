//! URL normalisation, scope and crawler-trap defences.
//!
//! Two links that name the same page must give one frontier row: the URL is parsed (which
//! lower-cases the host, drops a default port and resolves `.` and `..`), its fragment and
//! tracking parameters go, and the query's pairs are sorted. The query is handled as raw
//! text: Chinese sites put GBK bytes in percent escapes, which decoding as UTF-8 would ruin.

use std::net::IpAddr;

use regex::Regex;
use url::Url;
use xxhash_rust::xxh3::xxh3_64;

/// Query parameters that only track the visitor: dropped from every URL.
const TRACKING: &[&str] = &[
    "gclid", "fbclid", "msclkid", "yclid", "dclid", "spm", "_hsenc", "_hsmi", "mc_cid", "mc_eid",
    "igshid", "scm",
];

/// The normalised form of `url`, or `None` when it is not an http(s) URL with a host.
pub fn normalize(url: &Url) -> Option<Url> {
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return None;
    }
    let mut u = url.clone();
    u.set_fragment(None);
    if let Some(query) = url.query() {
        let mut pairs: Vec<&str> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .filter(|p| {
                let key = p.split('=').next().unwrap_or("").to_ascii_lowercase();
                !key.starts_with("utm_") && !TRACKING.contains(&key.as_str())
            })
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        if pairs.is_empty() {
            u.set_query(None);
        } else {
            u.set_query(Some(&pairs.join("&")));
        }
    }
    Some(u)
}

/// Parses and normalises a URL given as text.
pub fn parse(url: &str) -> Option<Url> {
    normalize(&Url::parse(url.trim()).ok()?)
}

/// The seen-set key of a normalised URL.
pub fn hash(url: &Url) -> i64 {
    xxh3_64(url.as_str().as_bytes()) as i64
}

/// The politeness key: host, and port when it is not the scheme's default.
pub fn authority(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// The registrable domain of a host (`news.sina.com.cn` → `sina.com.cn`), by the public
/// suffix list; an IP address or an unlisted name is its own domain.
pub fn registrable_domain(host: &str) -> String {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.parse::<IpAddr>().is_ok() || host.starts_with('[') {
        return host;
    }
    psl::domain_str(&host).map_or(host.clone(), str::to_string)
}

/// Whether a URL names a host that is surely private: `localhost` or a private IP literal
/// (names that resolve to private addresses are refused when they are resolved).
pub fn is_private_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => is_private(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => is_private(IpAddr::V6(ip)),
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        None => false,
    }
}

/// Whether an address must not be fetched without `--allow-private`: loopback, private,
/// link-local, multicast, unspecified, shared, documentation and broadcast addresses, IPv4
/// inside IPv6 included.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64/10, shared address space
                || (o[0] == 198 && (o[1] & 0xfe) == 18) // 198.18/15, benchmarking
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let seg = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00 // unique local
                || (seg[0] & 0xffc0) == 0xfe80 // link-local
                || (seg[0] == 0x2001 && seg[1] == 0x0db8) // documentation
                || seg[..6].iter().all(|&s| s == 0) // IPv4-compatible ::a.b.c.d
                || (seg[0] == 0x64 && seg[1] == 0xff9b) // NAT64 of any IPv4
        }
    }
}

/// The IP a URL names literally, if its host is an address.
pub fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    }
}

/// What may be crawled.
#[derive(Debug, Clone)]
pub struct Scope {
    /// Domains whose hosts (the domain itself and its subdomains) are in scope.
    pub domains: Vec<String>,
    /// A URL must match one of these, when any are given.
    pub include: Vec<Regex>,
    /// A URL matching one of these is out.
    pub exclude: Vec<Regex>,
    pub max_url_len: usize,
    /// The most times one path segment may appear in a path (`/a/b/a/b/a/b` repeats).
    pub max_segment_repeats: usize,
}

/// Why a URL was left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutOfScope {
    Domain,
    Pattern,
    TooLong,
    RepeatedSegments,
}

impl Scope {
    /// Checks a normalised URL.
    pub fn check(&self, url: &Url) -> Result<(), OutOfScope> {
        let host = url.host_str().unwrap_or("").to_ascii_lowercase();
        let host = host.trim_end_matches('.');
        let in_domain = self.domains.iter().any(|d| {
            host == d
                || (host.len() > d.len() && host.ends_with(d.as_str()) && {
                    host.as_bytes()[host.len() - d.len() - 1] == b'.'
                })
        });
        if !in_domain {
            return Err(OutOfScope::Domain);
        }
        if url.as_str().len() > self.max_url_len {
            return Err(OutOfScope::TooLong);
        }
        if repeats_segments(url.path(), self.max_segment_repeats) {
            return Err(OutOfScope::RepeatedSegments);
        }
        let s = url.as_str();
        if self.exclude.iter().any(|r| r.is_match(s))
            || (!self.include.is_empty() && !self.include.iter().any(|r| r.is_match(s)))
        {
            return Err(OutOfScope::Pattern);
        }
        Ok(())
    }
}

/// Whether some non-empty segment of `path` appears more than `max` times.
fn repeats_segments(path: &str, max: usize) -> bool {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if segments.len() <= max {
        return false;
    }
    let mut counts = std::collections::HashMap::new();
    segments.iter().any(|s| {
        let n = counts.entry(*s).or_insert(0usize);
        *n += 1;
        *n > max
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        parse(s).unwrap().to_string()
    }

    #[test]
    fn normalisation() {
        assert_eq!(
            norm("HTTP://News.Example.CN:80/a/./b/../c.html?z=1&utm_source=x&a=2#frag"),
            "http://news.example.cn/a/c.html?a=2&z=1"
        );
        assert_eq!(
            norm("https://example.cn:443/?utm_medium=y"),
            "https://example.cn/"
        );
        assert_eq!(
            norm("http://example.cn:8080/x?spm=a.b&id=3"),
            "http://example.cn:8080/x?id=3"
        );
        // GBK bytes in the query survive untouched
        assert_eq!(
            norm("http://a.cn/s?wd=%D6%D0%CE%C4"),
            "http://a.cn/s?wd=%D6%D0%CE%C4"
        );
        // non-ASCII paths are percent-encoded once
        assert_eq!(norm("http://a.cn/新闻/"), "http://a.cn/%E6%96%B0%E9%97%BB/");
        assert!(parse("mailto:a@b.cn").is_none());
        assert!(parse("ftp://a.cn/x").is_none());
        assert_eq!(
            hash(&parse("http://A.cn/x?b=1&a=2").unwrap()),
            hash(&parse("http://a.cn/x?a=2&b=1#z").unwrap())
        );
    }

    #[test]
    fn authority_and_domain() {
        assert_eq!(authority(&parse("http://A.cn:80/").unwrap()), "a.cn");
        assert_eq!(
            authority(&parse("http://127.0.0.1:8001/").unwrap()),
            "127.0.0.1:8001"
        );
        assert_eq!(registrable_domain("news.sina.com.cn"), "sina.com.cn");
        assert_eq!(registrable_domain("www.people.com.cn"), "people.com.cn");
        assert_eq!(registrable_domain("baike.baidu.com"), "baidu.com");
        assert_eq!(registrable_domain("127.0.0.1"), "127.0.0.1");
    }

    #[test]
    fn private_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "224.0.0.1",
            "100.64.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "1.1.1.1",
            "202.108.22.5",
            "2400:da00::6666",
            "::ffff:1.1.1.1",
        ] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
        assert_eq!(
            literal_ip(&parse("http://[::ffff:127.0.0.1]:8080/").unwrap()),
            Some("::ffff:127.0.0.1".parse().unwrap())
        );
    }

    #[test]
    fn scope_checks() {
        let scope = Scope {
            domains: vec!["sina.com.cn".into()],
            include: vec![],
            exclude: vec![Regex::new(r"/login").unwrap()],
            max_url_len: 60,
            max_segment_repeats: 2,
        };
        let check = |s: &str| scope.check(&parse(s).unwrap());
        assert_eq!(check("http://news.sina.com.cn/a.html"), Ok(()));
        assert_eq!(check("http://sina.com.cn/"), Ok(()));
        assert_eq!(check("http://notsina.com.cn/"), Err(OutOfScope::Domain));
        assert_eq!(
            check("http://sina.com.cn.evil.cn/"),
            Err(OutOfScope::Domain)
        );
        assert_eq!(
            check("http://sina.com.cn/login?x"),
            Err(OutOfScope::Pattern)
        );
        assert_eq!(
            check("http://sina.com.cn/a/b/a/b/a/c"),
            Err(OutOfScope::RepeatedSegments)
        );
        assert_eq!(
            check(&format!("http://sina.com.cn/{}", "x".repeat(60))),
            Err(OutOfScope::TooLong)
        );
    }
}
