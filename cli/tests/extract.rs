//! `zhcorpus extract` on files and over the pages stored in a database.

mod common;

use common::{ok, run, stderr};
use corpus::{NewPage, Selection, Store};

fn gbk(s: &str) -> Vec<u8> {
    encoding_rs::GBK.encode(s).0.into_owned()
}

const ARTICLE: &str = "<html><body><div class=nav><a href=/>首页</a><a href=/b>论坛</a></div>\
    <div class=post><h1>春天来了</h1><p>今年的春天来得比往年早一些，河边的柳树已经发芽了。</p>\
    <img data-src=\"/pic/willow.jpg\" alt=\"柳树\"><p>图为河边的柳树。</p>\
    <p>周末有不少市民带着孩子到河边放风筝，十分热闹。</p></div></body></html>";

#[test]
fn one_page_prints_one_json_object() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.html"), ARTICLE).unwrap();
    let out = ok(run(
        dir.path(),
        &[
            "extract",
            "a.html",
            "--url",
            "http://bbs.example.cn/t/1.html",
        ],
    ));
    assert_eq!(out.lines().count(), 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["title"], "春天来了");
    assert_eq!(
        v["text"],
        "今年的春天来得比往年早一些，河边的柳树已经发芽了。\n图为河边的柳树。\n周末有不少市民带着孩子到河边放风筝，十分热闹。"
    );
    assert_eq!(
        v["images"][0]["src"],
        "http://bbs.example.cn/pic/willow.jpg"
    );
    assert_eq!(v["images"][0]["caption"], "图为河边的柳树。");
    assert_eq!(v["charset"]["source"], "utf8_valid");
    assert!(v.get("file").is_none());

    std::fs::write(dir.path().join("b.html"), b"\xff\xfe\x00garbage<<<").unwrap();
    let out = ok(run(dir.path(), &["extract", "a.html", "b.html"]));
    let files: Vec<String> = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["file"].to_string())
        .collect();
    assert_eq!(files, ["\"a.html\"", "\"b.html\""]);

    let o = run(dir.path(), &["extract", "missing.html"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        "error: cannot read missing.html: No such file or directory (os error 2)\n"
    );
    let o = run(
        dir.path(),
        &["extract", "a.html", "b.html", "--url", "http://x.cn/"],
    );
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn stored_pages_become_documents_and_can_be_extracted_again() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("corpus.db");
    let mut store = Store::open(&db).unwrap();
    let page = |url: &str, status, ct: &str, body: Vec<u8>| NewPage {
        url: url.to_string(),
        status: Some(status),
        content_type: Some(ct.to_string()),
        body: Some(body),
        ..NewPage::default()
    };
    store
        .insert_page(&page(
            "http://a.example.cn/1.html",
            200,
            "text/html",
            ARTICLE.as_bytes().to_vec(),
        ))
        .unwrap();
    // GBK bytes, charset only in the HTTP header
    let gbk_page = "<html><body><div><p>这是一个国标码页面，编码只写在响应头里。</p><p>第二段文字，也有句号。</p></div></body></html>";
    store
        .insert_page(&page(
            "http://b.example.cn/2.html",
            200,
            "text/html; charset=GBK",
            gbk(gbk_page),
        ))
        .unwrap();
    // declares gb2312, is UTF-8
    let lying = "<html><head><meta charset=gb2312></head><body><p>声明了国标码，其实是统一码的页面。</p></body></html>";
    store
        .insert_page(&page(
            "http://c.example.cn/3.html",
            200,
            "text/html",
            lying.as_bytes().to_vec(),
        ))
        .unwrap();
    // a 404 and a page without text are not documents
    store
        .insert_page(&page(
            "http://a.example.cn/404.html",
            404,
            "text/html",
            b"<p>not found</p>".to_vec(),
        ))
        .unwrap();
    store
        .insert_page(&page(
            "http://a.example.cn/empty.html",
            200,
            "text/html",
            b"<html></html>".to_vec(),
        ))
        .unwrap();
    drop(store);

    let out = ok(run(dir.path(), &["extract", "--db", "corpus.db"]));
    assert!(
        out.starts_with("extracted 4 pages from corpus.db: 3 documents created, 0 replaced, 1 pages without main text"),
        "{out}"
    );
    let mut store = Store::open_existing(&db).unwrap();
    let docs: Vec<_> = store
        .documents(Selection::All)
        .map(|d| d.unwrap().doc)
        .collect();
    assert_eq!(docs.len(), 3);
    assert_eq!(
        docs[0].id,
        corpus::page_document_id("http://a.example.cn/1.html")
    );
    assert_eq!(docs[0].source.as_deref(), Some("a.example.cn"));
    assert_eq!(docs[0].title.as_deref(), Some("春天来了"));
    assert_eq!(
        docs[1].text,
        "这是一个国标码页面，编码只写在响应头里。\n第二段文字，也有句号。"
    );
    assert_eq!(docs[2].text, "声明了国标码，其实是统一码的页面。");
    let stats = store.stats().unwrap();
    assert_eq!(stats.image_text, 1);

    // the verdicts on the old texts are cleared when the pages are extracted again: the
    // documents are unjudged until clean runs again
    let r = store.begin_run("clean", &serde_json::json!({})).unwrap();
    let verdicts: Vec<corpus::CleanVerdict> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| corpus::CleanVerdict {
            doc: store.document_seq(&d.id).unwrap().unwrap(),
            keep: i != 0,
            rule: (i == 0).then(|| "test".into()),
            value: None,
            score: None,
            details: None,
            text: None,
        })
        .collect();
    store.record_clean_verdicts(r, &verdicts).unwrap();
    store.finish_run(r, corpus::RunStatus::Done, &()).unwrap();
    assert_eq!(store.documents(Selection::Kept).count(), 2);
    drop(store);
    let out = ok(run(dir.path(), &["extract", "--db", "corpus.db"]));
    assert!(out.contains("0 documents created, 3 replaced"), "{out}");
    let store = Store::open_existing(&db).unwrap();
    assert_eq!(store.documents(Selection::Kept).count(), 0);
    assert_eq!(store.unjudged().unwrap().clean, 3);
    assert_eq!(store.document_count().unwrap(), 3);
    let stats = store.stats().unwrap();
    assert_eq!(stats.image_text, 1);
    assert_eq!(stats.runs[0].stage, "extract");
    assert_eq!(stats.runs[0].counts.as_ref().unwrap()["empty"], 1);
}
