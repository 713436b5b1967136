//! A deterministic Chinese site farm served on loopback, for the crawler's tests, its benchmark
//! and the demo. All text is generated here.
//!
//! Each host is a real HTTP server (hyper) on its own 127.0.0.x port. A host has a home page,
//! list pages, articles wrapped in navigation, ads and comments, robots.txt with a disallowed
//! `/private/` and (host 0) a sitemap index pointing at a gzipped sitemap, and host 3 asks for
//! a Crawl-delay. Host 1 serves GBK and GB18030, declared, undeclared and falsely declared.
//! Host 2 reposts host 0's articles with small edits (near-duplicates across hosts). Host 0 also
//! carries the awkward cases: redirects, a redirect loop and an endless redirect chain,
//! 404, 500, 429 with Retry-After, a slow page, a hanging connection, an endless calendar, an
//! ever-deeper path, a gzip bomb, a huge page, an image, and a link to a host outside the scope
//! (127.0.0.2) that must never be asked. Every request is logged with its time.
//!
//! Every article knows its expected main text ([`Farm::articles`]).

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Frame};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
pub mod images;
pub mod text;

use text::Rng;
use tokio::net::TcpListener;

/// How to build the farm.
#[derive(Debug, Clone)]
pub struct FarmConfig {
    /// Hosts with articles (at least 4 for every case to exist).
    pub hosts: usize,
    pub articles_per_host: usize,
    /// Added before every response.
    pub latency: Duration,
    /// Crawl-delay written in host 3's robots.txt, seconds.
    pub crawl_delay: f64,
    /// Serve the awkward cases (traps, errors, bombs) on host 0.
    pub traps: bool,
    /// Hosts bind 127.0.0.1 on distinct ports (`false`), or 127.0.0.(10 + i) on one port
    /// (`true`), which tools keying politeness by host name alone need.
    pub distinct_ips: bool,
    /// Gallery pages (`/gallery/N.html`, linked from each home page) with every image case
    /// of [`images`]; images are served whether or not this is on.
    pub images: bool,
    pub seed: u64,
}

impl Default for FarmConfig {
    fn default() -> Self {
        FarmConfig {
            hosts: 4,
            articles_per_host: 30,
            latency: Duration::ZERO,
            crawl_delay: 0.3,
            traps: true,
            distinct_ips: false,
            images: false,
            seed: 7,
        }
    }
}

/// An article and what an extractor should find in it.
#[derive(Debug, Clone)]
pub struct Article {
    pub url: String,
    pub title: String,
    /// Paragraphs joined by `\n`.
    pub text: String,
    /// Linked from nowhere: only the sitemap names it.
    pub sitemap_only: bool,
}

/// One logged request.
#[derive(Debug, Clone)]
pub struct Logged {
    pub host: usize,
    pub path: String,
    pub user_agent: String,
    /// Since the farm started.
    pub at: Duration,
}

#[derive(Default)]
struct Shared {
    log: Vec<Logged>,
    /// Requests in flight per host, and the most seen at once.
    in_flight: HashMap<usize, usize>,
    max_in_flight: HashMap<usize, usize>,
    /// Requests per path, for answers that change (429 then 200).
    counts: HashMap<String, usize>,
}

/// A running farm; the servers stop when it is dropped.
pub struct Farm {
    /// Base URL of each host, `http://127.0.0.1:PORT`.
    pub hosts: Vec<String>,
    /// The out-of-scope host's base URL.
    pub outside: String,
    config: FarmConfig,
    sites: Arc<Vec<Site>>,
    shared: Arc<Mutex<Shared>>,
    _runtime: tokio::runtime::Runtime,
}

struct Site {
    index: usize,
    base: String,
    /// (title, paragraphs) per article id
    articles: Vec<(String, Vec<String>)>,
    others: Vec<String>,
    outside: String,
}

/// A sentence of `min..=max` common characters, a comma every nine, ending `。` or `！`.
fn sentence(rng: &mut Rng, min: usize, max: usize) -> String {
    let han: Vec<char> = text::HAN.chars().collect();
    let n = min + rng.below(max - min + 1);
    let mut s = String::new();
    for i in 0..n {
        s.push(han[rng.below(han.len())]);
        if i + 1 < n && i % 9 == 8 {
            s.push('，');
        }
    }
    s.push(if rng.below(6) == 0 { '！' } else { '。' });
    s
}

fn paragraph(rng: &mut Rng) -> String {
    (0..2 + rng.below(3))
        .map(|_| sentence(rng, 12, 30))
        .collect()
}

impl Farm {
    /// Starts every host on loopback, each on a port of its own.
    pub fn start(config: FarmConfig) -> std::io::Result<Farm> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let started = Instant::now();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let made = Arc::new(Mutex::new(HashMap::new()));
        let n = config.hosts.max(4);
        let listeners: Vec<std::net::TcpListener> = if config.distinct_ips {
            let first = std::net::TcpListener::bind("127.0.0.10:0")?;
            let port = first.local_addr()?.port();
            let mut all = vec![first];
            for i in 1..n {
                all.push(std::net::TcpListener::bind(format!(
                    "127.0.0.{}:{port}",
                    10 + i
                ))?);
            }
            all
        } else {
            (0..n)
                .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
                .collect::<std::io::Result<_>>()?
        };
        let outside_listener = std::net::TcpListener::bind("127.0.0.2:0")?;
        let base = |l: &std::net::TcpListener| -> std::io::Result<String> {
            Ok(format!("http://{}", l.local_addr()?))
        };
        let hosts: Vec<String> = listeners.iter().map(base).collect::<std::io::Result<_>>()?;
        let outside = base(&outside_listener)?;
        let sites: Arc<Vec<Site>> = Arc::new(
            (0..n)
                .map(|i| build_site(i, &hosts, &outside, &config))
                .collect(),
        );
        for (i, l) in listeners.into_iter().enumerate() {
            l.set_nonblocking(true)?;
            let serve = Serve {
                host: i,
                sites: sites.clone(),
                shared: shared.clone(),
                started,
                latency: config.latency,
                crawl_delay: config.crawl_delay,
                traps: config.traps,
                images: config.images,
                made: made.clone(),
            };
            let _guard = runtime.enter();
            let listener = TcpListener::from_std(l)?;
            runtime.spawn(accept_loop(listener, serve));
        }
        outside_listener.set_nonblocking(true)?;
        {
            let _guard = runtime.enter();
            let listener = TcpListener::from_std(outside_listener)?;
            let serve = Serve {
                host: usize::MAX,
                sites: sites.clone(),
                shared: shared.clone(),
                started,
                latency: Duration::ZERO,
                crawl_delay: 0.0,
                traps: false,
                images: false,
                made: made.clone(),
            };
            runtime.spawn(accept_loop(listener, serve));
        }
        Ok(Farm {
            hosts,
            outside,
            config,
            sites,
            shared,
            _runtime: runtime,
        })
    }

    /// Every host's home page.
    pub fn seeds(&self) -> Vec<String> {
        self.hosts.iter().map(|h| format!("{h}/")).collect()
    }

    /// Every article a complete crawl stores, with its expected text.
    pub fn articles(&self) -> Vec<Article> {
        let mut out = Vec::new();
        for site in self.sites.iter() {
            for (id, (title, paras)) in site.articles.iter().enumerate() {
                out.push(Article {
                    url: format!("{}/a/{id}.html", site.base),
                    title: title.clone(),
                    text: paras.join("\n"),
                    sitemap_only: site.index == 0 && id + 1 == site.articles.len(),
                });
            }
        }
        if self.config.traps {
            let busy = &self.sites[0].articles[0];
            out.push(Article {
                url: format!("{}/busy.html", self.hosts[0]),
                title: busy.0.clone(),
                text: busy.1.join("\n"),
                sitemap_only: false,
            });
        }
        out
    }

    /// Every HTML page a complete crawl fetches with status 200: articles, home and list pages.
    pub fn html_pages(&self) -> Vec<String> {
        let mut out: Vec<String> = self.articles().into_iter().map(|a| a.url).collect();
        for site in self.sites.iter() {
            out.push(format!("{}/", site.base));
            for l in 0..lists(site.articles.len()) {
                out.push(format!("{}/list/{l}.html", site.base));
            }
            if self.config.images {
                for g in 0..images::GALLERIES {
                    out.push(format!("{}/gallery/{g}.html", site.base));
                }
            }
        }
        out
    }

    /// Requests received so far, in arrival order.
    pub fn requests(&self) -> Vec<Logged> {
        self.shared
            .lock()
            .map(|s| s.log.clone())
            .unwrap_or_default()
    }

    /// The most requests one host had in flight at once.
    pub fn max_in_flight(&self, host: usize) -> usize {
        self.shared
            .lock()
            .map(|s| s.max_in_flight.get(&host).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    pub fn config(&self) -> &FarmConfig {
        &self.config
    }
}

const PER_LIST: usize = 10;

fn lists(articles: usize) -> usize {
    // the last article of host 0 is left to the sitemap; the same count for every host
    (articles.saturating_sub(1)).div_ceil(PER_LIST).max(1)
}

fn build_site(i: usize, hosts: &[String], outside: &str, config: &FarmConfig) -> Site {
    let mut rng = Rng::new(config.seed ^ (i as u64 + 1).wrapping_mul(0x5851_f42d_4c95_7f2d));
    let mut articles: Vec<(String, Vec<String>)> = (0..config.articles_per_host)
        .map(|_| {
            let title: String = sentence(&mut rng, 6, 14)
                .trim_end_matches(['。', '！'])
                .to_string();
            let paras = (0..3 + rng.below(4)).map(|_| paragraph(&mut rng)).collect();
            (title, paras)
        })
        .collect();
    if i == 2 {
        // reposts of host 0's articles: same seed stream, one paragraph edited
        let original = build_site(0, hosts, outside, config);
        for (id, a) in articles.iter_mut().enumerate() {
            if id % 3 == 0
                && let Some(src) = original.articles.get(id)
            {
                *a = src.clone();
                a.1[0] = format!("（转载）{}", a.1[0]);
            }
        }
    }
    Site {
        index: i,
        base: hosts[i].clone(),
        articles,
        others: hosts.to_vec(),
        outside: outside.to_string(),
    }
}

#[derive(Clone)]
struct Serve {
    host: usize,
    sites: Arc<Vec<Site>>,
    shared: Arc<Mutex<Shared>>,
    started: Instant,
    latency: Duration,
    crawl_delay: f64,
    traps: bool,
    images: bool,
    /// Image bodies made so far, by host and path.
    made: Made,
}

type ImageAnswer = images::Answer;

/// Image answers made so far, by host and path.
type Made = Arc<Mutex<HashMap<(usize, String), Arc<ImageAnswer>>>>;

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

async fn accept_loop(listener: TcpListener, serve: Serve) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let serve = serve.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let serve = serve.clone();
                async move { Ok::<_, Infallible>(serve.answer(req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into()).boxed()
}

fn html(status: StatusCode, body: Vec<u8>, content_type: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(full(body))
        .expect("static response parts")
}

fn redirect(status: StatusCode, to: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("location", to)
        .body(full(Vec::new()))
        .expect("static response parts")
}

impl Serve {
    async fn answer(&self, req: Request<hyper::body::Incoming>) -> Response<Body> {
        let path = req
            .uri()
            .path_and_query()
            .map_or("/".to_string(), |p| p.as_str().to_string());
        let user_agent = req
            .headers()
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let count = {
            let mut s = self.shared.lock().expect("farm lock");
            s.log.push(Logged {
                host: self.host,
                path: path.clone(),
                user_agent,
                at: self.started.elapsed(),
            });
            let n = s.in_flight.entry(self.host).or_default();
            *n += 1;
            let n = *n;
            let max = s.max_in_flight.entry(self.host).or_default();
            *max = (*max).max(n);
            let c = s.counts.entry(format!("{}{path}", self.host)).or_default();
            *c += 1;
            *c
        };
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let resp = self.route(&path, count).await;
        if let Ok(mut s) = self.shared.lock()
            && let Some(n) = s.in_flight.get_mut(&self.host)
        {
            *n -= 1;
        }
        resp
    }

    async fn route(&self, path: &str, count: usize) -> Response<Body> {
        if self.host == usize::MAX {
            return html(StatusCode::OK, b"<p>outside</p>".to_vec(), "text/html");
        }
        let site = &self.sites[self.host];
        let utf8 = "text/html; charset=utf-8";
        let (route, query) = path.split_once('?').unwrap_or((path, ""));
        if images::is_image_route(route)
            && let Some(answer) = self.image(path).await
        {
            let mut b = Response::builder()
                .status(StatusCode::OK)
                .header("content-type", answer.0);
            for (k, v) in &answer.1 {
                b = b.header(*k, v.as_str());
            }
            return b
                .body(full(answer.2.clone()))
                .expect("static response parts");
        }
        match route {
            "/robots.txt" => {
                let mut r = String::from("User-agent: *\nDisallow: /private/\n");
                if self.host == 3 {
                    r.push_str(&format!("Crawl-delay: {}\n", self.crawl_delay));
                }
                r.push_str("\nUser-agent: BadBot\nDisallow: /\n");
                if self.host == 0 {
                    r.push_str(&format!("\nSitemap: {}/sitemap_index.xml\n", site.base));
                }
                html(StatusCode::OK, r.into_bytes(), "text/plain")
            }
            "/sitemap_index.xml" if self.host == 0 => {
                let x = format!(
                    "<?xml version=\"1.0\"?><sitemapindex xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\
                     <sitemap><loc>{}/sitemap-1.xml.gz</loc></sitemap></sitemapindex>",
                    site.base
                );
                html(StatusCode::OK, x.into_bytes(), "application/xml")
            }
            "/sitemap-1.xml.gz" if self.host == 0 => {
                let mut x = String::from(
                    "<?xml version=\"1.0\"?><urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">",
                );
                for id in (0..site.articles.len()).rev().take(5) {
                    x.push_str(&format!("<url><loc>{}/a/{id}.html</loc></url>", site.base));
                }
                x.push_str("</urlset>");
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                let _ = gz.write_all(x.as_bytes());
                html(
                    StatusCode::OK,
                    gz.finish().unwrap_or_default(),
                    "application/gzip",
                )
            }
            "/" => html(StatusCode::OK, self.home(site).into_bytes(), utf8),
            _ if route.starts_with("/gallery/") && self.images => {
                let n: usize = route[9..]
                    .trim_end_matches(".html")
                    .parse()
                    .unwrap_or(usize::MAX);
                if n >= images::GALLERIES {
                    return html(StatusCode::NOT_FOUND, b"not found".to_vec(), "text/plain");
                }
                html(StatusCode::OK, self.gallery(site, n).into_bytes(), utf8)
            }
            _ if route.starts_with("/list/") => {
                let n: usize = route[6..]
                    .trim_end_matches(".html")
                    .parse()
                    .unwrap_or(usize::MAX);
                if n >= lists(site.articles.len()) {
                    return html(StatusCode::NOT_FOUND, b"not found".to_vec(), "text/plain");
                }
                html(StatusCode::OK, self.list(site, n).into_bytes(), utf8)
            }
            _ if route.starts_with("/a/") => {
                let id: usize = route[3..]
                    .trim_end_matches(".html")
                    .parse()
                    .unwrap_or(usize::MAX);
                match site.articles.get(id) {
                    Some(_) => self.article_response(site, id),
                    None => html(StatusCode::NOT_FOUND, b"not found".to_vec(), "text/plain"),
                }
            }
            _ if route.starts_with("/private/") => {
                html(StatusCode::OK, b"<p>secret</p>".to_vec(), utf8)
            }
            _ if self.traps && self.host == 0 => self.trap(site, route, query, count).await,
            _ => html(StatusCode::NOT_FOUND, b"not found".to_vec(), "text/plain"),
        }
    }

    async fn trap(&self, site: &Site, route: &str, query: &str, count: usize) -> Response<Body> {
        let utf8 = "text/html; charset=utf-8";
        match route {
            "/moved" => redirect(StatusCode::MOVED_PERMANENTLY, "/a/1.html"),
            "/loop/a" => redirect(StatusCode::FOUND, "/loop/b"),
            "/loop/b" => redirect(StatusCode::FOUND, "/loop/a"),
            _ if route.starts_with("/chain/") => {
                let n: u64 = route[7..].parse().unwrap_or(0);
                redirect(StatusCode::FOUND, &format!("/chain/{}", n + 1))
            }
            "/gone" => html(StatusCode::NOT_FOUND, b"<p>not here</p>".to_vec(), utf8),
            "/broken" => html(
                StatusCode::INTERNAL_SERVER_ERROR,
                b"oops".to_vec(),
                "text/plain",
            ),
            "/busy.html" if count == 1 => Response::builder()
                .status(StatusCode::TOO_MANY_REQUESTS)
                .header("retry-after", "1")
                .body(full(Vec::new()))
                .expect("static response parts"),
            "/busy.html" => self.article_response(site, 0),
            "/slow.html" => {
                // the head at once, then a trickle that outlasts any sane timeout
                let stream =
                    futures_stream(Duration::from_millis(500), 60, b"<p>slow</p>".to_vec());
                Response::builder()
                    .status(StatusCode::OK)
                    .header("content-type", utf8)
                    .body(stream)
                    .expect("static response parts")
            }
            "/hang.html" => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                html(StatusCode::OK, Vec::new(), utf8)
            }
            "/calendar" => {
                let day: i64 = query
                    .strip_prefix("day=")
                    .and_then(|d| d.parse().ok())
                    .unwrap_or(0);
                let body = format!(
                    "<html><body><h1>日历</h1><a href=\"/calendar?day={}\">前一天</a> \
                     <a href=\"/calendar?day={}\">后一天</a><p>第{day}天没有文章。</p></body></html>",
                    day - 1,
                    day + 1
                );
                html(StatusCode::OK, body.into_bytes(), utf8)
            }
            _ if route.starts_with("/deep/") => {
                let body = "<html><body><a href=\"deep/\">更深</a><p>目录页。</p></body></html>";
                html(StatusCode::OK, body.as_bytes().to_vec(), utf8)
            }
            "/bomb.html" => {
                // 64 MiB of spaces in about 64 KiB of gzip
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                let block = vec![b' '; 1 << 20];
                for _ in 0..64 {
                    let _ = gz.write_all(&block);
                }
                Response::builder()
                    .status(StatusCode::OK)
                    .header("content-type", utf8)
                    .header("content-encoding", "gzip")
                    .body(full(gz.finish().unwrap_or_default()))
                    .expect("static response parts")
            }
            "/huge.html" => {
                let mut body = b"<html><body><p>".to_vec();
                body.resize(24 << 20, b'x');
                html(StatusCode::OK, body, utf8)
            }
            "/photo.jpg" => html(
                StatusCode::OK,
                vec![0xff, 0xd8, 0xff, 0xe0, 0, 0],
                "image/jpeg",
            ),
            _ => html(StatusCode::NOT_FOUND, b"not found".to_vec(), "text/plain"),
        }
    }

    /// A generated image, made once per host and path, off the server's threads (so that
    /// the request log's times stay true while an image is being drawn).
    async fn image(&self, path: &str) -> Option<Arc<ImageAnswer>> {
        let key = (
            self.host,
            path.split('?').next().unwrap_or(path).to_string(),
        );
        if let Some(a) = self.made.lock().ok()?.get(&key) {
            return Some(a.clone());
        }
        let (host, owned) = (self.host, path.to_string());
        let answer = Arc::new(
            tokio::task::spawn_blocking(move || images::serve(host, &owned))
                .await
                .ok()??,
        );
        if let Ok(mut m) = self.made.lock() {
            m.insert(key, answer.clone());
        }
        Some(answer)
    }

    fn gallery(&self, site: &Site, n: usize) -> String {
        let (title, paras) = &site.articles[n % site.articles.len()];
        format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>图集{n}：{title}_站点{}</title></head><body>{}{}<div class=\"footer\">关于我们 | 联系方式 | 版权所有 © 2024</div></body></html>",
            site.index,
            self.nav(site),
            images::gallery(site.index, n, title, paras)
        )
    }

    fn nav(&self, site: &Site) -> String {
        let mut s = String::from("<div class=\"nav\"><a href=\"/\">首页</a>");
        for (i, other) in site.others.iter().enumerate() {
            s.push_str(&format!(" | <a href=\"{other}/\">站点{i}</a>"));
        }
        s.push_str(" | <a href=\"/private/admin.html\">管理</a>");
        s.push_str(&format!(" | <a href=\"{}/\">外站</a></div>", site.outside));
        s
    }

    fn home(&self, site: &Site) -> String {
        let mut s = format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>站点{}首页</title></head><body>{}<ul>",
            site.index,
            self.nav(site)
        );
        for l in 0..lists(site.articles.len()) {
            s.push_str(&format!("<li><a href=\"/list/{l}.html\">第{l}页</a></li>"));
        }
        s.push_str("</ul>");
        if self.images {
            for g in 0..images::GALLERIES {
                s.push_str(&format!("<a href=\"/gallery/{g}.html\">图集{g}</a> "));
            }
        }
        if self.traps && site.index == 0 {
            for t in [
                "/moved",
                "/loop/a",
                "/chain/0",
                "/gone",
                "/broken",
                "/busy.html",
                "/slow.html",
                "/hang.html",
                "/calendar?day=0",
                "/deep/",
                "/bomb.html",
                "/huge.html",
                "/photo.jpg",
            ] {
                s.push_str(&format!("<a href=\"{t}\">{t}</a> "));
            }
        }
        s.push_str("</body></html>");
        s
    }

    fn list(&self, site: &Site, n: usize) -> String {
        let mut s = format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>列表{n}</title></head><body>{}<ul>",
            self.nav(site)
        );
        let linked = if site.index == 0 {
            site.articles.len() - 1
        } else {
            site.articles.len()
        };
        for id in (n * PER_LIST)..((n + 1) * PER_LIST).min(linked) {
            s.push_str(&format!(
                "<li><a href=\"/a/{id}.html?utm_source=list\">{}</a></li>",
                site.articles[id].0
            ));
        }
        s.push_str("</ul></body></html>");
        s
    }

    fn article_html(&self, site: &Site, id: usize, meta_charset: Option<&str>) -> String {
        let (title, paras) = &site.articles[id];
        let mut s = String::from("<!DOCTYPE html><html><head>");
        if let Some(cs) = meta_charset {
            s.push_str(&format!(
                "<meta http-equiv=\"Content-Type\" content=\"text/html; charset={cs}\">"
            ));
        }
        s.push_str(&format!(
            "<title>{title}_站点{}</title></head><body>",
            site.index
        ));
        s.push_str(&self.nav(site));
        s.push_str("<div class=\"ad\"><a href=\"/private/ad\">广告：点击领取优惠券</a></div>");
        s.push_str(&format!("<div class=\"article\"><h1>{title}</h1><div class=\"info\">2024-05-0{} 来源：站点{}</div>", 1 + id % 9, site.index));
        for (i, p) in paras.iter().enumerate() {
            s.push_str(&format!("<p>{p}</p>"));
            if i == 0 && id.is_multiple_of(4) {
                s.push_str(&format!(
                    "<figure><img src=\"/img/{id}.jpg\" alt=\"配图{id}\" width=\"600\" height=\"400\"><figcaption>图{id}：现场照片</figcaption></figure>"
                ));
            }
        }
        s.push_str("</div><div class=\"related\"><h3>相关文章</h3><ul>");
        let n = site.articles.len();
        for k in 1..=3 {
            let other = (id + k * 7) % n;
            if !(site.index == 0 && other + 1 == n) {
                s.push_str(&format!(
                    "<li><a href=\"/a/{other}.html#comments\">{}</a></li>",
                    site.articles[other].0
                ));
            }
        }
        let peer = &site.others[(site.index + 1) % site.others.len()];
        s.push_str(&format!(
            "<li><a href=\"{peer}/a/{}.html\">友站文章</a></li></ul></div>",
            id % n
        ));
        s.push_str("<div class=\"comments\" id=\"comments\"><h3>网友评论</h3>");
        s.push_str("<div class=\"comment\">沙发！</div><div class=\"comment\">说得好，支持一下。</div></div>");
        s.push_str(
            "<div class=\"footer\">关于我们 | 联系方式 | 版权所有 © 2024</div></body></html>",
        );
        s
    }

    fn article_response(&self, site: &Site, id: usize) -> Response<Body> {
        if site.index != 1 {
            let body = self.article_html(site, id, Some("utf-8"));
            return html(
                StatusCode::OK,
                body.into_bytes(),
                "text/html; charset=utf-8",
            );
        }
        // host 1: the Chinese web's charset habits, by article id
        let gbk = |s: &str| encoding_rs::GB18030.encode(s).0.into_owned();
        match id % 5 {
            // GBK in the header and the page
            0 => html(
                StatusCode::OK,
                gbk(&self.article_html(site, id, Some("gbk"))),
                "text/html; charset=GBK",
            ),
            // GB18030 declared only in the page
            1 => html(
                StatusCode::OK,
                gbk(&self.article_html(site, id, Some("gb18030"))),
                "text/html",
            ),
            // GBK declared nowhere
            2 => html(
                StatusCode::OK,
                gbk(&self.article_html(site, id, None)),
                "text/html",
            ),
            // the header lies: says UTF-8, sends GBK
            3 => html(
                StatusCode::OK,
                gbk(&self.article_html(site, id, Some("gbk"))),
                "text/html; charset=utf-8",
            ),
            // the page lies: says gb2312, is UTF-8
            _ => html(
                StatusCode::OK,
                self.article_html(site, id, Some("gb2312")).into_bytes(),
                "text/html",
            ),
        }
    }
}

/// A body that sends `chunk` every `every`, `times` times.
fn futures_stream(every: Duration, times: usize, chunk: Vec<u8>) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(1);
    tokio::spawn(async move {
        for _ in 0..times {
            if tx
                .send(Ok(Frame::data(Bytes::from(chunk.clone()))))
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep(every).await;
        }
    });
    StreamBody::new(ReceiverStream(rx)).boxed()
}

struct ReceiverStream<T>(tokio::sync::mpsc::Receiver<T>);

impl<T> futures_core_stream::Stream for ReceiverStream<T> {
    type Item = T;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<T>> {
        self.0.poll_recv(cx)
    }
}

mod futures_core_stream {
    pub use futures_core::Stream;
}

/// The address a host of the farm listens on.
pub fn addr_of(base: &str) -> Option<SocketAddr> {
    base.strip_prefix("http://")?.parse().ok()
}
