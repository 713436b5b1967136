//! One HTTP fetch with the crawler's limits: timeouts, redirects followed by hand (each hop
//! checked), private addresses refused on every hop, and a body limit counted on decoded
//! bytes with a cap on the compression ratio, so a gzip bomb costs at most the limit.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderValue};
use url::Url;

use crate::urls;

/// Limits and identity of the HTTP client (durations in seconds in a TOML file).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FetchConfig {
    pub user_agent: String,
    #[serde(with = "crate::serde_util::secs")]
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of a response.
    #[serde(with = "crate::serde_util::secs")]
    pub read_timeout: Duration,
    /// Longest time for a whole request, body included.
    #[serde(with = "crate::serde_util::secs")]
    pub timeout: Duration,
    /// Most decoded body bytes kept.
    pub max_body: usize,
    /// Most decoded bytes per transferred byte, beyond the first MiB.
    pub max_ratio: usize,
    pub max_redirects: usize,
    pub allow_private: bool,
    /// Keep the body as transferred (still compressed) for WARC records; set by the crawl when
    /// it writes WARC files.
    #[serde(skip)]
    pub keep_raw: bool,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            user_agent: crate::DEFAULT_USER_AGENT.to_string(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            timeout: Duration::from_secs(60),
            max_body: 10 << 20,
            max_ratio: 100,
            max_redirects: 5,
            allow_private: false,
            keep_raw: false,
        }
    }
}

impl FetchConfig {
    /// Refuses limits that cannot work, naming the key.
    pub fn validate(&self) -> Result<(), crate::Error> {
        let bad = |key: &str, why: &str| Err(crate::Error::Config(format!("fetch.{key}: {why}")));
        if self.user_agent.trim().is_empty() {
            return bad("user_agent", "must not be empty");
        }
        for (key, d) in [
            ("connect_timeout", self.connect_timeout),
            ("read_timeout", self.read_timeout),
            ("timeout", self.timeout),
        ] {
            if d.is_zero() {
                return bad(key, "must be more than 0 seconds");
            }
        }
        if self.max_body == 0 {
            return bad("max_body", "must be at least 1 byte");
        }
        if self.max_ratio == 0 {
            return bad("max_ratio", "must be at least 1");
        }
        Ok(())
    }
}

/// Why a fetch failed; stored as the page's `error_class`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Timeout,
    Connect,
    Dns,
    PrivateAddress,
    TooLarge,
    CompressionBomb,
    BadEncoding,
    TooManyRedirects,
    ContentType,
    Network,
    InvalidUrl,
    /// Answered with an HTTP error status (the status is stored beside it).
    Http,
    RobotsDisallowed,
    RobotsUnavailable,
    OutOfScope,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Timeout => "timeout",
            ErrorClass::Connect => "connect",
            ErrorClass::Dns => "dns",
            ErrorClass::PrivateAddress => "private_address",
            ErrorClass::TooLarge => "too_large",
            ErrorClass::CompressionBomb => "compression_bomb",
            ErrorClass::BadEncoding => "bad_encoding",
            ErrorClass::TooManyRedirects => "too_many_redirects",
            ErrorClass::ContentType => "content_type",
            ErrorClass::Network => "network",
            ErrorClass::InvalidUrl => "invalid_url",
            ErrorClass::Http => "http",
            ErrorClass::RobotsDisallowed => "robots_disallowed",
            ErrorClass::RobotsUnavailable => "robots_unavailable",
            ErrorClass::OutOfScope => "out_of_scope",
        }
    }

    /// Whether trying again later may help.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            ErrorClass::Timeout | ErrorClass::Connect | ErrorClass::Network | ErrorClass::Dns
        )
    }
}

/// A failed fetch.
#[derive(Debug, Clone)]
pub struct FetchError {
    pub class: ErrorClass,
    pub message: String,
    /// The status, when a response came before the failure.
    pub status: Option<u16>,
    pub final_url: Option<Url>,
    pub headers: Vec<(String, String)>,
}

impl FetchError {
    fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        FetchError {
            class,
            message: message.into(),
            status: None,
            final_url: None,
            headers: Vec::new(),
        }
    }
}

/// One request and its response, for the WARC file.
#[derive(Debug, Clone)]
pub struct Hop {
    pub url: Url,
    pub status: u16,
    pub version: &'static str,
    pub request_headers: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    /// The body as transferred (content-encoded), when raw bodies are kept.
    pub raw: Option<Vec<u8>>,
    pub peer: Option<SocketAddr>,
}

/// A response, after redirects.
#[derive(Debug, Clone)]
pub struct Response {
    pub final_url: Url,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub content_type: Option<String>,
    /// Decoded body.
    pub body: Vec<u8>,
    pub elapsed: Duration,
    /// Every request made, the last one answered with this response.
    pub hops: Vec<Hop>,
}

impl Response {
    /// The first value of a header (name in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

pub(crate) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A resolver that drops private addresses: a public name pointing at an internal service is
/// refused at connection time, on the first request and on every redirect.
struct GuardedResolver;

#[derive(Debug)]
struct PrivateAddress(String);

impl std::fmt::Display for PrivateAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} resolves only to private or local addresses", self.0)
    }
}

impl std::error::Error for PrivateAddress {}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| !urls::is_private(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(
                    Box::new(PrivateAddress(host)) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The crawler's HTTP client; cheap to clone.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    config: Arc<FetchConfig>,
}

/// What a fetch is for: which responses it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// HTML only (or no content type); redirects followed within the same host.
    Html,
    /// Anything (robots.txt, sitemaps); redirects followed to any host.
    Any,
}

impl Client {
    pub fn new(config: FetchConfig) -> Result<Client, String> {
        let mut headers = HeaderMap::new();
        headers.insert("accept-encoding", HeaderValue::from_static("gzip, deflate"));
        headers.insert(
            "accept",
            HeaderValue::from_static("text/html,application/xhtml+xml,*/*;q=0.8"),
        );
        headers.insert(
            "accept-language",
            HeaderValue::from_static("zh-CN,zh;q=0.9,zh-TW;q=0.8,en;q=0.5"),
        );
        let mut builder = reqwest::Client::builder()
            .user_agent(&config.user_agent)
            .default_headers(headers)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .timeout(config.timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(4);
        if !config.allow_private {
            builder = builder.dns_resolver(Arc::new(GuardedResolver));
        }
        let http = builder.build().map_err(|e| e.to_string())?;
        Ok(Client {
            http,
            config: Arc::new(config),
        })
    }

    pub fn config(&self) -> &FetchConfig {
        &self.config
    }

    /// Fetches `url`, following redirects for which `follow` says yes (up to the limit); a
    /// redirect not followed is returned as the response.
    pub async fn fetch(
        &self,
        url: &Url,
        want: Want,
        follow: &(dyn Fn(&Url) -> bool + Sync),
    ) -> Result<Response, FetchError> {
        let start = Instant::now();
        let mut current = url.clone();
        let mut hops = Vec::new();
        loop {
            if !self.config.allow_private
                && let Some(ip) = urls::literal_ip(&current)
                && urls::is_private(ip)
            {
                return Err(FetchError::new(
                    ErrorClass::PrivateAddress,
                    format!("{current}: {ip} is a private or local address"),
                ));
            }
            let request = self
                .http
                .get(current.clone())
                .build()
                .map_err(|e| FetchError::new(ErrorClass::InvalidUrl, e.to_string()))?;
            let request_headers = header_pairs(request.headers());
            let resp = self
                .http
                .execute(request)
                .await
                .map_err(|e| classify(&current, &e))?;
            let status = resp.status().as_u16();
            let headers = header_pairs(resp.headers());
            let version = match resp.version() {
                reqwest::Version::HTTP_10 => "HTTP/1.0",
                reqwest::Version::HTTP_2 => "HTTP/2",
                _ => "HTTP/1.1",
            };
            let peer = resp.remote_addr();
            let location = (300..400)
                .contains(&status)
                .then(|| header(&headers, "location"))
                .flatten()
                .and_then(|loc| current.join(loc).ok());
            let content_type = header(&headers, "content-type").map(str::to_string);
            let fail = |class, message: String, hops_headers: &[(String, String)]| FetchError {
                class,
                message,
                status: Some(status),
                final_url: Some(current.clone()),
                headers: hops_headers.to_vec(),
            };
            let html = content_type.as_deref().is_none_or(is_html);
            if want == Want::Html && (200..300).contains(&status) && !html {
                let ct = content_type.clone().unwrap_or_default();
                return Err(fail(
                    ErrorClass::ContentType,
                    format!("{current}: content type {ct} is not HTML"),
                    &headers,
                ));
            }
            let (body, raw) = read_body(resp, &self.config, &current)
                .await
                .map_err(|mut e| {
                    e.status = Some(status);
                    e.final_url = Some(current.clone());
                    e.headers = headers.clone();
                    e
                })?;
            hops.push(Hop {
                url: current.clone(),
                status,
                version,
                request_headers,
                headers: headers.clone(),
                raw,
                peer,
            });
            if let Some(next) = location {
                let same_host = urls::authority(&next) == urls::authority(&current)
                    && next.scheme() == current.scheme();
                let wanted = match want {
                    Want::Html => same_host,
                    Want::Any => matches!(next.scheme(), "http" | "https"),
                };
                if wanted && follow(&next) {
                    if hops.len() > self.config.max_redirects {
                        return Err(fail(
                            ErrorClass::TooManyRedirects,
                            format!("{url}: more than {} redirects", self.config.max_redirects),
                            &headers,
                        ));
                    }
                    current = next;
                    continue;
                }
            }
            return Ok(Response {
                final_url: current,
                status,
                headers,
                content_type,
                body,
                elapsed: start.elapsed(),
                hops,
            });
        }
    }
}

fn is_html(ct: &str) -> bool {
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime.is_empty() || mime == "text/html" || mime == "application/xhtml+xml"
}

fn header_pairs(h: &HeaderMap) -> Vec<(String, String)> {
    h.iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

fn classify(url: &Url, e: &reqwest::Error) -> FetchError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut text = String::new();
    while let Some(err) = source {
        if err.downcast_ref::<PrivateAddress>().is_some() {
            return FetchError::new(ErrorClass::PrivateAddress, format!("{url}: {err}"));
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&err.to_string());
        source = err.source();
    }
    let class = if e.is_timeout() {
        ErrorClass::Timeout
    } else if text.contains("dns error") || text.contains("failed to lookup") {
        ErrorClass::Dns
    } else if e.is_connect() {
        ErrorClass::Connect
    } else {
        ErrorClass::Network
    };
    FetchError::new(class, format!("{url}: {text}"))
}

/// A body sink that refuses to grow past its limit.
struct Limited {
    buf: Vec<u8>,
    max: usize,
}

impl Write for Limited {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + data.len() > self.max {
            return Err(std::io::Error::other(TooBig));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[derive(Debug)]
struct TooBig;

impl std::fmt::Display for TooBig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("body over the limit")
    }
}

impl std::error::Error for TooBig {}

enum Decoder {
    Identity(Limited),
    Gzip(flate2::write::MultiGzDecoder<Limited>),
    Zlib(flate2::write::ZlibDecoder<Limited>),
    Deflate(flate2::write::DeflateDecoder<Limited>),
}

impl Decoder {
    fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Decoder::Identity(w) => w.write_all(data),
            Decoder::Gzip(w) => w.write_all(data),
            Decoder::Zlib(w) => w.write_all(data),
            Decoder::Deflate(w) => w.write_all(data),
        }
    }

    fn decoded(&self) -> usize {
        match self {
            Decoder::Identity(w) => w.buf.len(),
            Decoder::Gzip(w) => w.get_ref().buf.len(),
            Decoder::Zlib(w) => w.get_ref().buf.len(),
            Decoder::Deflate(w) => w.get_ref().buf.len(),
        }
    }

    fn finish(self) -> std::io::Result<Vec<u8>> {
        Ok(match self {
            Decoder::Identity(w) => w.buf,
            Decoder::Gzip(w) => w.finish()?.buf,
            Decoder::Zlib(w) => w.finish()?.buf,
            Decoder::Deflate(w) => w.finish()?.buf,
        })
    }
}

/// Reads and decodes a body within the limits.
async fn read_body(
    mut resp: reqwest::Response,
    config: &FetchConfig,
    url: &Url,
) -> Result<(Vec<u8>, Option<Vec<u8>>), FetchError> {
    let encoding = resp
        .headers()
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    let sink = Limited {
        buf: Vec::new(),
        max: config.max_body,
    };
    let mut decoder = match encoding.as_str() {
        "" | "identity" => Decoder::Identity(sink),
        "gzip" | "x-gzip" => Decoder::Gzip(flate2::write::MultiGzDecoder::new(sink)),
        "deflate" => Decoder::Zlib(flate2::write::ZlibDecoder::new(sink)),
        other => {
            return Err(FetchError::new(
                ErrorClass::BadEncoding,
                format!("{url}: unsupported content encoding {other:?}"),
            ));
        }
    };
    let mut raw = config.keep_raw.then(Vec::new);
    let mut transferred = 0usize;
    let mut first = true;
    loop {
        let chunk = match resp.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => return Err(classify(url, &e)),
        };
        // "deflate" is zlib-wrapped by the standard, raw deflate on some servers
        if first
            && matches!(decoder, Decoder::Zlib(_))
            && chunk.first().is_some_and(|b| b & 0x0f != 8)
        {
            decoder = Decoder::Deflate(flate2::write::DeflateDecoder::new(Limited {
                buf: Vec::new(),
                max: config.max_body,
            }));
        }
        first = false;
        transferred += chunk.len();
        if let Some(raw) = raw.as_mut() {
            if raw.len() + chunk.len() > config.max_body {
                return Err(too_large(url, config));
            }
            raw.extend_from_slice(&chunk);
        }
        if let Err(e) = decoder.write_all(&chunk) {
            return Err(decode_error(url, config, &e));
        }
        let decoded = decoder.decoded();
        if decoded > (1 << 20) && decoded > transferred.saturating_mul(config.max_ratio) {
            return Err(FetchError::new(
                ErrorClass::CompressionBomb,
                format!(
                    "{url}: {decoded} bytes decoded from {transferred}, over the ratio {}",
                    config.max_ratio
                ),
            ));
        }
    }
    let body = decoder
        .finish()
        .map_err(|e| decode_error(url, config, &e))?;
    Ok((body, raw))
}

fn too_large(url: &Url, config: &FetchConfig) -> FetchError {
    FetchError::new(
        ErrorClass::TooLarge,
        format!("{url}: body over {} bytes", config.max_body),
    )
}

fn decode_error(url: &Url, config: &FetchConfig, e: &std::io::Error) -> FetchError {
    if e.get_ref().is_some_and(|inner| inner.is::<TooBig>()) {
        too_large(url, config)
    } else {
        FetchError::new(ErrorClass::BadEncoding, format!("{url}: {e}"))
    }
}

/// `Retry-After` as a duration: seconds, or an HTTP date.
pub fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate(value)?;
    let now = std::time::SystemTime::now();
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parses an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn httpdate(s: &str) -> Option<std::time::SystemTime> {
    httpdate::parse_http_date(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(
            httpdate("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(std::time::UNIX_EPOCH + Duration::from_secs(784_111_777))
        );
        assert_eq!(retry_after("soon"), None);
    }
}
