//! Any bytes, any declared charset: extraction returns, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // the first byte picks a declared charset, as a server's header would
    let labels = [None, Some("gbk"), Some("utf-8"), Some("big5"), Some("x-bogus")];
    let (head, body) = data.split_first().map_or((0, data), |(h, b)| (*h, b));
    let options = extract::Options {
        url: Some("http://fuzz.example.cn/a/b.html".to_string()),
        http_charset: labels[head as usize % labels.len()].map(str::to_string),
        skip_links: false,
    };
    let page = extract::extract(body, &options);
    assert!(page.text.len() <= body.len() * 3 + 3);
});
