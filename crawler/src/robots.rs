//! robots.txt (RFC 9309), parsed the way Google's open-source parser does, plus `Crawl-delay`.
//!
//! The file is parsed once for one product token (ours is `zhcorpus`). Rules from groups that
//! name the token apply; only when no group names it do the `*` groups apply. Among the
//! `Allow` and `Disallow` patterns that match a path the longest wins, and `Allow` wins a tie.
//! Patterns know `*` and a final `$`. Following Google, a missing colon (`Disallow /x`) and
//! common misspellings of `disallow` are accepted, lines are cut at 16,664 bytes, and an
//! `Allow` ending in `/index.html` also allows its directory.
//!
//! ```
//! let robots = crawler::robots::Robots::parse(
//!     b"User-agent: *\nDisallow: /private/\nAllow: /private/open\nCrawl-delay: 2\n",
//!     "zhcorpus",
//! );
//! assert!(!robots.allowed("/private/x"));
//! assert!(robots.allowed("/private/open/page"));
//! assert_eq!(robots.crawl_delay(), Some(2.0));
//! ```

/// The longest line read; the rest of a longer line is dropped.
const MAX_LINE: usize = 2083 * 8;

/// Parsed rules for one product token.
#[derive(Debug, Clone, Default)]
pub struct Robots {
    specific: Vec<Rule>,
    global: Vec<Rule>,
    /// Some group names our token, even one without rules: then `*` groups do not apply.
    ever_specific: bool,
    specific_delay: Option<f64>,
    global_delay: Option<f64>,
    sitemaps: Vec<String>,
}

#[derive(Debug, Clone)]
struct Rule {
    allow: bool,
    /// Percent-escaped pattern bytes.
    pattern: Vec<u8>,
}

/// Parser state while reading groups (the names follow Google's matcher).
#[derive(Default)]
struct State {
    seen_global: bool,
    seen_specific: bool,
    /// A rule line was read since the last `User-agent` line: the next one starts a group.
    seen_separator: bool,
}

enum Key {
    UserAgent,
    Allow,
    Disallow,
    Sitemap,
    CrawlDelay,
    Other,
}

impl Robots {
    /// Rules that allow everything (a robots.txt that is missing, or answered 4xx).
    pub fn allow_all() -> Self {
        Self::default()
    }

    /// Rules that disallow everything (robots.txt unreachable, or answered 5xx).
    pub fn disallow_all() -> Self {
        Self {
            global: vec![Rule {
                allow: false,
                pattern: b"/".to_vec(),
            }],
            ..Self::default()
        }
    }

    /// Parses `body` for the product token `agent` (compared without case).
    pub fn parse(body: &[u8], agent: &str) -> Self {
        let mut robots = Robots::default();
        let mut state = State::default();
        let body = strip_bom(body);
        let mut line = Vec::with_capacity(256);
        let mut last_cr = false;
        for &b in body {
            if b != b'\n' && b != b'\r' {
                if line.len() < MAX_LINE {
                    line.push(b);
                }
                continue;
            }
            // "\r\n" is one line end, not two
            let crlf = line.is_empty() && last_cr && b == b'\n';
            if !crlf {
                robots.line(&line, agent, &mut state);
            }
            line.clear();
            last_cr = b == b'\r';
        }
        robots.line(&line, agent, &mut state);
        robots
    }

    fn line(&mut self, raw: &[u8], agent: &str, state: &mut State) {
        let Some((key, value)) = split_line(raw) else {
            return;
        };
        match classify(key) {
            Key::UserAgent => {
                if state.seen_separator {
                    state.seen_specific = false;
                    state.seen_global = false;
                    state.seen_separator = false;
                }
                if value.first() == Some(&b'*')
                    && (value.len() == 1 || value[1].is_ascii_whitespace())
                {
                    state.seen_global = true;
                } else {
                    let token_len = value
                        .iter()
                        .take_while(|c| c.is_ascii_alphabetic() || **c == b'-' || **c == b'_')
                        .count();
                    if value[..token_len].eq_ignore_ascii_case(agent.as_bytes()) {
                        state.seen_specific = true;
                        self.ever_specific = true;
                    }
                }
            }
            k @ (Key::Allow | Key::Disallow) => {
                if !(state.seen_global || state.seen_specific) {
                    return;
                }
                state.seen_separator = true;
                let allow = matches!(k, Key::Allow);
                let rules = if state.seen_specific {
                    &mut self.specific
                } else {
                    &mut self.global
                };
                let pattern = escape_pattern(value);
                if allow {
                    // Google: "Allow: /dir/index.html" also allows "/dir/"
                    if let Some(slash) = pattern.iter().rposition(|&c| c == b'/')
                        && pattern[slash..].starts_with(b"/index.htm")
                    {
                        let mut dir = pattern[..=slash].to_vec();
                        dir.push(b'$');
                        rules.push(Rule {
                            allow: true,
                            pattern: dir,
                        });
                    }
                }
                rules.push(Rule { allow, pattern });
            }
            Key::CrawlDelay => {
                let Some(delay) = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .filter(|d| d.is_finite() && *d >= 0.0)
                else {
                    return;
                };
                if state.seen_specific {
                    self.specific_delay.get_or_insert(delay);
                } else if state.seen_global {
                    self.global_delay.get_or_insert(delay);
                }
            }
            Key::Sitemap => {
                if let Ok(url) = std::str::from_utf8(value)
                    && !url.is_empty()
                {
                    self.sitemaps.push(url.to_string());
                }
            }
            Key::Other => {}
        }
    }

    /// Whether `path` (path and query, percent-encoded, starting with `/`) may be fetched.
    pub fn allowed(&self, path: &str) -> bool {
        let path = path.as_bytes();
        let best = |rules: &[Rule]| {
            let mut allow = -1i64;
            let mut disallow = -1i64;
            for rule in rules {
                if matches(path, &rule.pattern) {
                    let slot = if rule.allow {
                        &mut allow
                    } else {
                        &mut disallow
                    };
                    *slot = (*slot).max(rule.pattern.len() as i64);
                }
            }
            (allow, disallow)
        };
        let (allow, disallow) = best(&self.specific);
        if allow > 0 || disallow > 0 {
            return disallow <= allow;
        }
        if self.ever_specific {
            return true;
        }
        let (allow, disallow) = best(&self.global);
        if allow > 0 || disallow > 0 {
            return disallow <= allow;
        }
        true
    }

    /// Whether the URL may be fetched: its path and query are matched.
    pub fn allowed_url(&self, url: &url::Url) -> bool {
        self.allowed(&path_and_query(url))
    }

    /// The `Crawl-delay` of the group that applies, in seconds.
    pub fn crawl_delay(&self) -> Option<f64> {
        if self.ever_specific {
            self.specific_delay
        } else {
            self.global_delay
        }
    }

    /// The `Sitemap` URLs, in file order, from any group.
    pub fn sitemaps(&self) -> &[String] {
        &self.sitemaps
    }
}

/// The path and query of a URL, as robots.txt rules see it.
pub fn path_and_query(url: &url::Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

/// The path, parameters and query of a URL given as text, without fragment, as Google's
/// parser cuts it (`/` when there is none). Does not parse or re-encode the URL.
pub fn path_of(url: &str) -> &str {
    let b = url.as_bytes();
    let search_start = if url.starts_with("//") { 2 } else { 0 };
    let find_any = |from: usize| {
        b.iter()
            .skip(from)
            .position(|c| matches!(c, b'/' | b'?' | b';'))
            .map(|p| p + from)
    };
    let early_path = find_any(search_start);
    let proto = url[search_start..].find("://").map(|p| p + search_start);
    let authority_start = match (proto, early_path) {
        (Some(p), Some(e)) if e < p => search_start,
        (Some(p), _) => p + 3,
        (None, _) => search_start,
    };
    let Some(start) = find_any(authority_start) else {
        return "/";
    };
    let hash = url[search_start..].find('#').map(|h| h + search_start);
    if hash.is_some_and(|h| h < start) {
        return "/";
    }
    let end = hash.unwrap_or(url.len());
    &url[start..end]
}

fn strip_bom(body: &[u8]) -> &[u8] {
    // a partial BOM is skipped too, as Google's parser does
    let bom = [0xEF, 0xBB, 0xBF];
    let n = body.iter().zip(bom).take_while(|(a, b)| **a == *b).count();
    &body[n..]
}

fn trim(s: &[u8]) -> &[u8] {
    let ws = |c: &u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
    let start = s.iter().position(|c| !ws(c)).unwrap_or(s.len());
    let end = s.iter().rposition(|c| !ws(c)).map_or(start, |e| e + 1);
    &s[start..end]
}

/// Splits a line into key and value: `key: value`, or (Google) `key value` with exactly two
/// words. Comments and surrounding blanks go.
fn split_line(raw: &[u8]) -> Option<(&[u8], &[u8])> {
    let line = match raw.iter().position(|&c| c == b'#') {
        Some(hash) => &raw[..hash],
        None => raw,
    };
    let line = trim(line);
    if line.is_empty() {
        return None;
    }
    let (key, value) = match line.iter().position(|&c| c == b':') {
        Some(colon) => (&line[..colon], &line[colon + 1..]),
        None => {
            let sep = line.iter().position(|&c| c == b' ' || c == b'\t')?;
            let value = trim(&line[sep..]);
            if value.iter().any(|&c| c == b' ' || c == b'\t') {
                return None;
            }
            (&line[..sep], value)
        }
    };
    let key = trim(key);
    if key.is_empty() {
        return None;
    }
    Some((key, trim(value)))
}

fn starts_with_ci(s: &[u8], prefix: &str) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

fn classify(key: &[u8]) -> Key {
    let any = |names: &[&str]| names.iter().any(|n| starts_with_ci(key, n));
    if any(&["user-agent", "useragent", "user agent"]) {
        Key::UserAgent
    } else if any(&["allow"]) {
        Key::Allow
    } else if any(&[
        "disallow",
        "dissallow",
        "dissalow",
        "disalow",
        "diasllow",
        "disallaw",
    ]) {
        Key::Disallow
    } else if any(&["sitemap", "site-map"]) {
        Key::Sitemap
    } else if any(&["crawl-delay", "crawldelay", "crawl delay"]) {
        Key::CrawlDelay
    } else {
        Key::Other
    }
}

/// Percent-escapes bytes above 0x7f and upper-cases existing escapes, so patterns compare
/// with percent-encoded URL paths.
fn escape_pattern(value: &[u8]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        let c = value[i];
        if c == b'%'
            && i + 2 < value.len()
            && value[i + 1].is_ascii_hexdigit()
            && value[i + 2].is_ascii_hexdigit()
        {
            out.push(b'%');
            out.push(value[i + 1].to_ascii_uppercase());
            out.push(value[i + 2].to_ascii_uppercase());
            i += 3;
        } else if c >= 0x80 {
            out.extend_from_slice(&[b'%', HEX[(c >> 4) as usize], HEX[(c & 15) as usize]]);
            i += 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Whether `pattern` (`*` any run, a final `$` the end) matches a prefix of `path`: the
/// positions reachable so far are tracked, so it is linear in pattern × path and never
/// backtracks.
fn matches(path: &[u8], pattern: &[u8]) -> bool {
    let mut pos: Vec<usize> = vec![0];
    let mut next = Vec::new();
    for (i, &p) in pattern.iter().enumerate() {
        if p == b'$' && i + 1 == pattern.len() {
            return pos.last() == Some(&path.len());
        }
        if p == b'*' {
            let first = pos[0];
            pos.clear();
            pos.extend(first..=path.len());
        } else {
            next.clear();
            next.extend(
                pos.iter()
                    .filter(|&&at| at < path.len() && path[at] == p)
                    .map(|at| at + 1),
            );
            std::mem::swap(&mut pos, &mut next);
            if pos.is_empty() {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(robots: &str, agent: &str, path: &str) -> bool {
        Robots::parse(robots.as_bytes(), agent).allowed(path)
    }

    #[test]
    fn longest_match_wins_and_allow_wins_ties() {
        let r =
            "User-agent: *\nDisallow: /a\nAllow: /a/b\nDisallow: /a/b/c\nAllow: /x\nDisallow: /x\n";
        assert!(!allowed(r, "zhcorpus", "/a"));
        assert!(allowed(r, "zhcorpus", "/a/b"));
        assert!(!allowed(r, "zhcorpus", "/a/b/c/d"));
        assert!(allowed(r, "zhcorpus", "/x"));
        assert!(allowed(r, "zhcorpus", "/other"));
    }

    #[test]
    fn a_group_naming_us_replaces_the_star_group() {
        let r = "User-agent: *\nDisallow: /\n\nUser-agent: ZHcorpus\nDisallow: /private\n";
        assert!(allowed(r, "zhcorpus", "/news/1.html"));
        assert!(!allowed(r, "zhcorpus", "/private/1"));
        assert!(!allowed(r, "otherbot", "/news/1.html"));
        // a group naming us without rules still replaces the star group
        let r = "User-agent: *\nDisallow: /\nUser-agent: zhcorpus\n";
        assert!(allowed(r, "zhcorpus", "/"));
    }

    #[test]
    fn consecutive_user_agents_share_a_group() {
        let r = "User-agent: a\nUser-agent: zhcorpus\nDisallow: /x\nUser-agent: b\nDisallow: /\n";
        assert!(!allowed(r, "zhcorpus", "/x"));
        assert!(allowed(r, "zhcorpus", "/y"));
    }

    #[test]
    fn wildcards_and_end_anchor() {
        let r = "User-agent: *\nDisallow: /*.php$\nDisallow: /search*q=\nAllow: /$\nDisallow: /\n";
        assert!(!allowed(r, "zhcorpus", "/index.php"));
        assert!(!allowed(r, "zhcorpus", "/a/index.php"));
        assert!(!allowed(r, "zhcorpus", "/index.php5"));
        assert!(!allowed(r, "zhcorpus", "/search?x=1&q=2"));
        assert!(allowed(r, "zhcorpus", "/"));
        assert!(matches(b"/abc", b"/a*c$"));
        assert!(!matches(b"/abcd", b"/a*c$"));
        assert!(matches(b"/", b""));
    }

    #[test]
    fn non_ascii_patterns_match_encoded_paths() {
        let r = "User-agent: *\nDisallow: /新闻/\nDisallow: /%e5%8d%9a\n";
        assert!(!allowed(r, "zhcorpus", "/%E6%96%B0%E9%97%BB/1.html"));
        assert!(!allowed(r, "zhcorpus", "/%E5%8D%9A%E5%AE%A2"));
        assert!(allowed(r, "zhcorpus", "/%E4%BD%93"));
    }

    #[test]
    fn crawl_delay_and_sitemaps() {
        let r = "Sitemap: http://a.test/s1.xml\nUser-agent: *\nCrawl-delay: 3\n\
                 User-agent: zhcorpus\nCrawl-delay: 0.5\nDisallow:\nSitemap: http://a.test/s2.xml.gz\n";
        let robots = Robots::parse(r.as_bytes(), "zhcorpus");
        assert_eq!(robots.crawl_delay(), Some(0.5));
        assert_eq!(
            robots.sitemaps(),
            ["http://a.test/s1.xml", "http://a.test/s2.xml.gz"]
        );
        assert_eq!(
            Robots::parse(r.as_bytes(), "other").crawl_delay(),
            Some(3.0)
        );
        assert_eq!(Robots::parse(b"Crawl-delay: x", "a").crawl_delay(), None);
    }

    #[test]
    fn accepted_mistakes_and_line_endings() {
        assert!(!allowed(
            "user-agent zhcorpus\ndisallow /\n",
            "zhcorpus",
            "/a"
        ));
        assert!(!allowed(
            "User-agent: *\r\nDissallow: /a\r\n",
            "zhcorpus",
            "/a"
        ));
        assert!(!allowed("User-agent: *\rDisallow: /a\r", "zhcorpus", "/a"));
        assert!(!allowed(
            "\u{feff}User-agent: *\nDisallow: /a # no\n",
            "x",
            "/a"
        ));
        // rules before any user-agent line apply to nobody
        assert!(allowed("Disallow: /\nUser-agent: x\n", "zhcorpus", "/"));
    }

    #[test]
    fn special_files() {
        assert!(Robots::allow_all().allowed("/anything"));
        assert!(!Robots::disallow_all().allowed("/anything"));
        assert!(!Robots::disallow_all().allowed("/"));
        let r = "User-agent: *\nDisallow: /\nAllow: /dir/index.html\n";
        assert!(allowed(r, "zhcorpus", "/dir/"));
        assert!(!allowed(r, "zhcorpus", "/dir/other"));
    }
}
