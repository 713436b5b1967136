//! Metadata checked against the page: publication dates, authors that are media outlets,
//! captions in inline elements. Every page is hand-written; no third-party text.

use extract::{Options, extract};

/// A page with `head`, then `top` (navigation, lists, a byline before the article), a
/// two-paragraph article and `bottom` (a footer).
fn page(head: &str, top: &str, bottom: &str) -> extract::Extraction {
    let html = format!(
        "<html><head><meta charset=utf-8><title>城市公园改造完成_示例网</title>{head}</head><body>
        <div class=nav><a href=/>首页</a> <a href=/news>新闻</a></div>{top}
        <div class=art><p>经过一年的施工，城南公园的改造工程于本周全部完成，市民可以重新进入园内。</p>
        <p>改造后的公园新增了儿童游乐区和健身步道，原有的湖面也进行了清淤。</p></div>{bottom}</body></html>"
    );
    extract(html.as_bytes(), &Options::default())
}

fn check_date(head: &str, top: &str, bottom: &str, want: Option<&str>) {
    assert_eq!(
        page(head, top, bottom).published.as_deref(),
        want,
        "head {head:?}, top {top:?}, bottom {bottom:?}"
    );
}

const BYLINE: &str = "<h1>城市公园改造完成</h1><div class=info>发布时间：2019-09-26 10:09</div>";

#[test]
fn a_meta_date_that_contradicts_the_byline_loses() {
    // the crawl date in a generic meta tag
    check_date(
        "<meta name=date content=\"2024-03-01 08:00\">",
        BYLINE,
        "",
        Some("2019-09-26 10:09"),
    );
    // a publication time in the future of the page's byline (a modification or a template's)
    check_date(
        "<meta property=article:published_time content=2031-01-01T00:00:00+08:00>",
        BYLINE,
        "",
        Some("2019-09-26 10:09"),
    );
    // JSON-LD that disagrees, and a <time> element that disagrees
    check_date(
        r#"<script type="application/ld+json">{"datePublished":"2020-02-02"}</script>"#,
        BYLINE,
        "",
        Some("2019-09-26 10:09"),
    );
    check_date(
        "",
        &format!("{BYLINE}<div class=when><time datetime=2022-12-12>去年</time></div>"),
        "",
        Some("2019-09-26 10:09"),
    );
}

#[test]
fn a_meta_date_that_agrees_with_the_byline_adds_its_time() {
    check_date(
        "<meta property=article:published_time content=2019-09-26T10:09:11+08:00>",
        "<h1>城市公园改造完成</h1><div class=info>2019年9月26日 来源：示例网</div>",
        "",
        Some("2019-09-26 10:09:11"),
    );
}

#[test]
fn dates_before_1990_are_no_publication_dates() {
    // a template's default: refused against a byline and without one
    check_date(
        "<meta property=article:published_time content=1970-01-01T00:00:00Z>",
        "<div class=info>2018-03-02</div>",
        "",
        Some("2018-03-02"),
    );
    check_date(
        "<meta property=article:published_time content=1970-01-01T00:00:00Z>",
        "",
        "",
        None,
    );
}

#[test]
fn of_several_meta_dates_the_earliest_is_the_publication() {
    check_date(
        "<meta property=og:release_date content=2021-06-01><meta name=dc.date.issued content=2021-05-03>",
        "",
        "",
        Some("2021-05-03"),
    );
}

#[test]
fn the_byline_nearest_the_article_wins_over_other_dates_above_it() {
    // a portal's "today is" bar, and a link to the previous story with a date in its title
    check_date(
        "",
        &format!(
            "<div class=top>今天是2024年3月1日 星期五</div>\
             <div class=prev>上一篇：<a href=/a/1.html>今日股市行情分析--2019年8月19日</a></div>{BYLINE}"
        ),
        "",
        Some("2019-09-26 10:09"),
    );
}

#[test]
fn an_update_line_is_no_byline() {
    check_date(
        "<meta name=pubdate content=2019-09-05>",
        "<h1>城市公园改造完成</h1><div class=info>最后更新：2019-09-07 15:14</div>",
        "",
        Some("2019-09-05"),
    );
}

#[test]
fn footer_copyright_and_related_link_dates_are_not_the_articles() {
    // a footer's date
    check_date(
        "",
        "",
        "<div id=footer>网站维护：示例网信息中心 2020.10.01</div>",
        None,
    );
    // a copyright line outside any footer element
    check_date(
        "",
        "",
        "<div class=bt>© 2005-2020 示例网 2020年5月1日</div>",
        None,
    );
    // a list of related links with dates, before and after the article
    let related = "<ul class=xglj><li><a href=/a/1.html>城北公园下月开放</a> 2019-08-19</li>\
        <li><a href=/a/2.html>本市新建十个口袋公园</a> 2019-08-20</li></ul>";
    check_date("", related, related, None);
    // the byline still wins over them
    check_date(
        "",
        &format!("{related}{BYLINE}"),
        related,
        Some("2019-09-26 10:09"),
    );
}

#[test]
fn a_date_in_a_sentence_of_the_article_is_no_byline() {
    let html = "<html><head><meta name=pubdate content=2021-03-04></head><body><div class=art>\
        <p>2001年1月1日，城南公园第一次向市民开放。</p><p>改造后的公园新增了儿童游乐区和健身步道。</p>\
        </div></body></html>";
    let page = extract(html.as_bytes(), &Options::default());
    assert_eq!(page.published.as_deref(), Some("2021-03-04"));
}

#[test]
fn media_outlets_are_sources_not_authors() {
    let author = |head: &str, top: &str| page(head, top, "").author;
    let cases = [
        // meta and JSON-LD values that name an outlet
        ("<meta property=article:author content=参考消息>", "", None),
        ("<meta name=author content=新华社>", "", None),
        (
            r#"<script type="application/ld+json">{"author":{"name":"人民日报"}}</script>"#,
            "",
            None,
        ),
        ("<meta name=author content=央视新闻>", "", None),
        ("<meta name=author content=中国新闻网>", "", None),
        ("<meta name=author content=某某晚报>", "", None),
        ("<meta name=author content=南方周刊>", "", None),
        ("<meta name=author content=某某杂志>", "", None),
        ("<meta name=author content=某某电视台>", "", None),
        (
            "<meta name=author content=\"www.example.cn,某某日报报业集团,某某网\">",
            "",
            None,
        ),
        // in a byline
        ("", "<div class=info>作者：中国新闻网</div>", None),
        ("", "<div class=info>文/新京报</div>", None),
        // an outlet in the meta tag falls through to the reporter in the byline
        (
            "<meta name=author content=新京报>",
            "<p>新京报快讯（记者 裴剑飞）今日有网友爆料。</p>",
            Some("裴剑飞"),
        ),
        // people keep their names, those ending in 社 or 台 included
        ("<meta name=author content=王建社>", "", Some("王建社")),
        ("<meta name=author content=李金台>", "", Some("李金台")),
        ("<meta name=author content=张网>", "", Some("张网")),
    ];
    for (head, top, want) in cases {
        assert_eq!(author(head, top).as_deref(), want, "{head} {top}");
    }
}

#[test]
fn captions_from_inline_caption_elements_and_credit_lines() {
    let caption = |after: &str| {
        let html = format!(
            "<body><div class=art><p>这是正文的第一段，说明了事情的经过和原因。</p>\
             <div class=img_wrapper><img src=/a.jpg>{after}</div>\
             <p>这是第二段，补充了更多的细节。</p><p>第三段。</p></div></body>"
        );
        extract(html.as_bytes(), &Options::default()).images[0]
            .caption
            .clone()
    };
    let cases = [
        // a caption class on an inline element inside the image's box
        (
            "<span class=img_descr>江边的清晨</span>",
            Some("江边的清晨"),
        ),
        ("<span class=pic-info>江边的清晨</span>", Some("江边的清晨")),
        // an inline element without a caption class is no caption
        ("<span class=tip>江边的清晨</span>", None),
        // credit lines and the caption marker
        (
            "<p>图片来源：某某大学官网</p>",
            Some("图片来源：某某大学官网"),
        ),
        ("<p>▲江边的清晨。</p>", Some("▲江边的清晨。")),
        (
            "<p>姚明场边支招。视频截图</p>",
            Some("姚明场边支招。视频截图"),
        ),
    ];
    for (after, want) in cases {
        assert_eq!(caption(after).as_deref(), want, "{after}");
    }
}

#[test]
fn an_images_caption_is_its_figcaption_then_real_alt_then_title_then_a_caption_line() {
    use extract::CaptionSource::*;
    let image = |img: &str| {
        let html = format!(
            "<body><div class=art><p>这是正文的第一段，说明了事情的经过和原因，也交代了时间。</p>{img}\
             <p>这是第二段，补充了更多的细节，还有记者在现场的所见所闻。</p><p>第三段。</p></div></body>"
        );
        let x = extract(html.as_bytes(), &Options::default());
        let i = x.images[0].clone();
        (i.caption, i.caption_source, i.context)
    };
    let cases = [
        (
            "<figure><img src=/a.jpg alt=古镇的石桥><figcaption>江边的清晨</figcaption></figure>",
            Some("江边的清晨"),
            Some(Figcaption),
        ),
        (
            "<img src=/a.jpg alt=古镇的石桥>",
            Some("古镇的石桥"),
            Some(Alt),
        ),
        (
            "<img src=/a.jpg alt=IMG_2034.JPG title=古镇的石桥>",
            Some("古镇的石桥"),
            Some(Title),
        ),
        (
            "<div class=pic><img src=/a.jpg alt=DSC01234><p class=pic-text>图为古镇的石桥</p></div>",
            Some("图为古镇的石桥"),
            Some(Nearby),
        ),
        (
            "<img src=/a.jpg alt=banner.png title=20231105142233>",
            None,
            None,
        ),
    ];
    for (img, caption, source) in cases {
        let (got, got_source, context) = image(img);
        assert_eq!(got.as_deref(), caption, "{img}");
        assert_eq!(got_source, source, "{img}");
        // the paragraph before the image
        assert_eq!(
            context.as_deref(),
            Some("这是正文的第一段，说明了事情的经过和原因，也交代了时间。"),
            "{img}"
        );
    }
}

#[test]
fn file_names_and_identifiers_are_no_descriptions() {
    for t in [
        "IMG_2034.JPG",
        "DSC01234",
        "20231105142233",
        "pic-3",
        "banner.png",
        "https://img.example.cn/a.jpg",
        "  ",
    ] {
        assert!(extract::is_file_name(t), "{t:?}");
    }
    for t in [
        "古镇的石桥",
        "江边 2023",
        "Sunset over the river",
        "图1：现场",
    ] {
        assert!(!extract::is_file_name(t), "{t:?}");
    }
}
