//! The extractor on small pages written here: what it keeps, what it drops, and what it
//! reports. Every page is hand-written; no third-party text.

use extract::{CharsetSource, Options, extract};

fn gbk(s: &str) -> Vec<u8> {
    encoding_rs::GB18030.encode(s).0.into_owned()
}

/// A news page: navigation, the article, a share bar, related links, comments and a footer.
const NEWS: &str = r#"<html><head><meta charset="utf-8"><title>城市公园改造完成_示例新闻网</title>
<meta name="author" content="王小明"></head><body>
<div id="topnav"><a href="/">首页</a> <a href="/news">新闻</a> <a href="/sports">体育</a> <a href="/ent">娱乐</a></div>
<div class="main">
  <div class="article">
    <h1>城市公园改造完成</h1>
    <div class="info">2024年3月15日 09:30 来源：示例新闻网</div>
    <p>经过一年的施工，城南公园的改造工程于本周全部完成，市民可以重新进入园内休闲散步。</p>
    <p>改造后的公园新增了儿童游乐区和健身步道，原有的湖面也进行了清淤，水质明显改善。</p>
    <figure><img data-src="/img/park.jpg" src="/img/blank.gif" alt="公园湖面"><figcaption>改造后的湖面</figcaption></figure>
    <p>园方表示，今后将定期组织志愿者维护园内设施，欢迎市民提出意见和建议。</p>
    <div class="share-bar">分享到：微博 微信 QQ空间</div>
  </div>
  <div class="related"><h3>相关阅读</h3><ul>
    <li><a href="/a/1">城北公园下月开放，市民可以提前预约参观</a></li>
    <li><a href="/a/2">本市新建十个口袋公园，方便居民就近休息</a></li></ul></div>
  <div id="comments"><div class="comment">网友甲：这个公园我去过，环境确实好了很多，值得一去！</div>
    <div class="comment">网友乙：希望停车位能多一些，周末人太多了。</div></div>
</div>
<div class="footer">版权所有 © 2024 示例新闻网 京ICP备00000000号</div>
</body></html>"#;

#[test]
fn news_page_keeps_the_article_only() {
    let page = extract(
        NEWS.as_bytes(),
        &Options {
            url: Some("http://news.example.cn/2024/03/park.html".into()),
            http_charset: None,
            skip_links: false,
        },
    );
    insta::assert_json_snapshot!(page, @r#"
    {
      "title": "城市公园改造完成",
      "text": "经过一年的施工，城南公园的改造工程于本周全部完成，市民可以重新进入园内休闲散步。\n改造后的公园新增了儿童游乐区和健身步道，原有的湖面也进行了清淤，水质明显改善。\n改造后的湖面\n园方表示，今后将定期组织志愿者维护园内设施，欢迎市民提出意见和建议。",
      "author": "王小明",
      "published": "2024-03-15 09:30",
      "charset": {
        "name": "UTF-8",
        "source": "utf8_valid",
        "declared": "utf-8",
        "errors": 0
      },
      "images": [
        {
          "src": "http://news.example.cn/img/park.jpg",
          "alt": "公园湖面",
          "title": null,
          "caption": "改造后的湖面",
          "caption_source": "figcaption",
          "context": "改造后的公园新增了儿童游乐区和健身步道，原有的湖面也进行了清淤，水质明显改善。"
        }
      ],
      "fallback": false
    }
    "#);
}

/// Extracts `html` (UTF-8) and returns the text.
fn text(html: &str) -> String {
    extract(html.as_bytes(), &Options::default()).text
}

#[test]
fn boilerplate_is_dropped() {
    let article = "<p>这是一段正文，讲述了一件普通的事情，长度足够。</p><p>第二段正文也在这里，同样有标点。</p>";
    let cases = [
        // comments under the article
        format!(
            r#"<body><div class=post>{article}</div><div class="comment-list"><p>评论：说得很好，我完全同意作者的看法。</p></div></body>"#
        ),
        // a footer element
        format!(
            r#"<body><article>{article}</article><footer><p>本站所有内容，未经许可，不得转载。</p></footer></body>"#
        ),
        // a hidden block
        format!(
            r#"<body><div>{article}<div style="display: none">隐藏的文字，不应该出现在正文里。</div></div></body>"#
        ),
        // scripts and styles
        format!(
            r#"<body><div>{article}<script>var s = "脚本里的字，不是正文。";</script><style>p{{color:red}}</style></div></body>"#
        ),
        // a list of links with punctuation
        format!(
            r#"<body><div>{article}</div><ul><li><a href=/1>链接一，这是另一篇文章的标题。</a></li><li><a href=/2>链接二，也是别的文章。</a></li></ul></body>"#
        ),
    ];
    for html in cases {
        assert_eq!(
            text(&html),
            "这是一段正文，讲述了一件普通的事情，长度足够。\n第二段正文也在这里，同样有标点。",
            "{html}"
        );
    }
}

/// Regression: an article wrapped in `class="js_img_share_area"` was taken for a share bar and
/// the page came out empty.
#[test]
fn a_widget_class_on_the_article_wrapper_is_ignored() {
    let html = r#"<body><div class=nav><a href=/>首页</a></div><div class="js_img_share_area">
        <p>这是文章的第一段，讲的是城市的新变化。</p><p>第二段继续介绍，内容很长。</p></div>
        <div class="share-bar">分享到：微博</div></body>"#;
    assert_eq!(
        text(html),
        "这是文章的第一段，讲的是城市的新变化。\n第二段继续介绍，内容很长。"
    );
}

/// A comment thread longer than the post stays out: comments are a section, not a widget.
#[test]
fn comments_longer_than_the_post_stay_out() {
    let comment = "<div class=reply>网友留言：写得很好，我也有同样的经历，谢谢分享这些经验。</div>";
    let html = format!(
        "<body><div class=post><p>博主的短文，只有一句话。</p></div><div id=comments>{}</div></body>",
        comment.repeat(20)
    );
    assert_eq!(text(&html), "博主的短文，只有一句话。");
}

#[test]
fn paragraph_breaks_are_kept() {
    assert_eq!(
        text(
            "<div><p>第一段，有标点。</p>第二段，直接写在div里。<br>换行以后，第三段。<p>第四段。</p></div>"
        ),
        "第一段，有标点。\n第二段，直接写在div里。\n换行以后，第三段。\n第四段。"
    );
}

#[test]
fn unclosed_anchor_is_not_a_link() {
    // an <a name> left open wraps the rest of the page after parsing; it is not a link
    let html = "<body><div><a name=top>楼层 1</div><div><p>帖子正文的第一句话，说明了问题。</p><p>第二句话，补充了细节。</p></div></body>";
    assert_eq!(
        text(html),
        "帖子正文的第一句话，说明了问题。\n第二句话，补充了细节。"
    );
}

#[test]
fn gbk_pages_with_and_without_honest_declarations() {
    let body = "<body><div><p>这是用国标码写的网页正文，内容是关于天气的，今天晴转多云。</p><p>明天可能会下雨，出门请带伞。</p></div></body>";
    let expected =
        "这是用国标码写的网页正文，内容是关于天气的，今天晴转多云。\n明天可能会下雨，出门请带伞。";
    let cases: [(Vec<u8>, Option<&str>, &str, CharsetSource); 5] = [
        (
            gbk(&format!("<meta charset=gb2312>{body}")),
            None,
            "gb18030",
            CharsetSource::Meta,
        ),
        (gbk(body), Some("GBK"), "gb18030", CharsetSource::Http),
        (gbk(body), None, "gb18030", CharsetSource::Detected),
        // declared UTF-8 but GBK
        (
            gbk(&format!("<meta charset=utf-8>{body}")),
            None,
            "gb18030",
            CharsetSource::Detected,
        ),
        // declared gb2312 but UTF-8
        (
            format!("<meta charset=gb2312>{body}").into_bytes(),
            None,
            "UTF-8",
            CharsetSource::Utf8Valid,
        ),
    ];
    for (bytes, http, name, source) in cases {
        let page = extract(
            &bytes,
            &Options {
                url: None,
                http_charset: http.map(str::to_string),
                skip_links: false,
            },
        );
        assert_eq!(page.text, expected);
        assert_eq!(
            (page.charset.name.as_str(), page.charset.source),
            (name, source)
        );
    }
    // a GBK page damaged in one place (a title cut mid-character) is still GBK
    let mut bytes = gbk(body);
    bytes.extend_from_slice(b"<p>\xd6</p>");
    let page = extract(&bytes, &Options::default());
    assert_eq!(page.charset.name, "gb18030");
    assert!(page.text.starts_with("这是用国标码写的网页正文"));
}

#[test]
fn lazy_images_and_srcset_resolve_against_the_page() {
    let html = r#"<html><head><base href="http://img.example.cn/base/"></head><body><div class=content>
        <p>正文第一段，介绍了这组照片的来历。</p>
        <img src="data:image/gif;base64,R0lGOD" data-original="photos/1.jpg" alt="第一张">
        <p>图为清晨的江边。</p>
        <img srcset="s.jpg 320w, l.jpg 1280w, m.jpg 640w" title="第二张">
        <img src="icon.png" width="16" height="16">
        <p>正文第二段，说明了拍摄的地点和时间。</p></div></body></html>"#;
    let page = extract(
        html.as_bytes(),
        &Options {
            url: Some("http://www.example.cn/a/b.html".into()),
            http_charset: None,
            skip_links: false,
        },
    );
    let got: Vec<_> = page
        .images
        .iter()
        .map(|i| {
            (
                i.src.as_str(),
                i.alt.as_deref(),
                i.title.as_deref(),
                i.caption.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            // a label of three characters gives way to a caption line after the image
            (
                "http://img.example.cn/base/photos/1.jpg",
                Some("第一张"),
                None,
                Some("图为清晨的江边。")
            ),
            // a body paragraph after an image is no caption: the short title is taken
            (
                "http://img.example.cn/base/l.jpg",
                None,
                Some("第二张"),
                Some("第二张")
            ),
        ]
    );
}

#[test]
fn list_page_without_an_article_falls_back_to_its_text() {
    let html = "<body><ul><li>苹果</li><li>香蕉</li><li>橘子</li></ul></body>";
    let page = extract(html.as_bytes(), &Options::default());
    assert!(page.fallback);
    assert_eq!(page.text, "");
    let html = "<body><div><a href=/1>首页</a><a href=/2>新闻</a></div><p>只有一句话的页面，没有别的内容。</p></body>";
    let page = extract(html.as_bytes(), &Options::default());
    assert_eq!(page.text, "只有一句话的页面，没有别的内容。");
}

#[test]
fn title_date_and_author_from_metadata() {
    let html = r#"<html><head><title>标题在这里 - 某某网</title>
        <meta property="article:published_time" content="2021-06-01T08:00:00+08:00">
        <script type="application/ld+json">{"@type":"NewsArticle","author":{"@type":"Person","name":"李华"}}</script>
        </head><body><p>正文内容，有一句完整的话。</p></body></html>"#;
    let page = extract(html.as_bytes(), &Options::default());
    assert_eq!(page.title.as_deref(), Some("标题在这里"));
    assert_eq!(page.published.as_deref(), Some("2021-06-01 08:00:00"));
    assert_eq!(page.author.as_deref(), Some("李华"));
    // <time datetime> beats a date in the text
    let html = r#"<body><p>旧闻，2001年1月1日的事。</p><time datetime="2020-02-29 10:00">二月底</time></body>"#;
    let page = extract(html.as_bytes(), &Options::default());
    assert_eq!(page.published.as_deref(), Some("2020-02-29 10:00"));
    // a byline in the text
    let html = "<body><div>作者：张三　发布时间：2019年10月2日</div><div><p>这是正文，讲了一个故事。</p></div></body>";
    let page = extract(html.as_bytes(), &Options::default());
    assert_eq!(page.author.as_deref(), Some("张三"));
    assert_eq!(page.published.as_deref(), Some("2019-10-02"));
}

#[test]
fn deep_nesting_does_not_overflow() {
    // deep enough to overflow a recursive walk on a 2 MiB test thread, and to take minutes if
    // any step of the parse or the walk searched the open elements once per tag
    let depth = 200_000;
    for (open, close) in [
        ("<div>", "</div>"),
        ("<span><p>", ""),
        ("<section><b>", "</b>"),
    ] {
        let html = format!(
            "{}<p>很深的正文，也能取出来。</p>{}",
            open.repeat(depth),
            close.repeat(depth)
        );
        let started = std::time::Instant::now();
        let page = extract(html.as_bytes(), &Options::default());
        assert!(page.text.contains("很深的正文"), "{open}: {:?}", page.text);
        // linear: well under a second here in a debug build
        let took = started.elapsed();
        assert!(took.as_secs() < 60, "{open} x {depth} took {took:?}");
    }
}

#[test]
fn hostile_markup_stays_linear() {
    // each stray end tag searches the open elements for one that is open far down: without
    // the bound on depth each case took 5 to 11 s at 50,000 in a release build
    let n = 50_000;
    let cases = [
        format!("<a href=x>{}{}", "<div>".repeat(n), "</a>".repeat(n)),
        format!("<div>{}{}", "<span>".repeat(n), "</em>".repeat(n)),
        format!("<p><button>{}{}", "<span>".repeat(n), "</p>".repeat(n)),
        format!(
            "<h1><table><tr><td>{}{}",
            "<span>".repeat(n),
            "</h2>".repeat(n)
        ),
        format!(
            "<div {}>正文在这里，属性很多。</div>",
            (0..n).map(|i| format!("a{i}=1 ")).collect::<String>()
        ),
    ];
    for html in cases {
        let started = std::time::Instant::now();
        extract(html.as_bytes(), &Options::default());
        let took = started.elapsed();
        assert!(took.as_secs() < 60, "{} took {took:?}", &html[..40]);
    }
}

proptest::proptest! {
    // debug builds parse slowly; 64 cases each keep this under a few seconds (the fuzz target
    // covers the rest)
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    #[test]
    fn decoding_never_panics(bytes: Vec<u8>, http in proptest::option::of("[a-zA-Z0-9_-]{0,12}")) {
        let (text, charset) = extract::charset::decode(&bytes, http.as_deref());
        proptest::prop_assert!(!charset.name.is_empty());
        proptest::prop_assert!(text.len() <= bytes.len() * 3 + 3);
    }

    #[test]
    fn extraction_never_panics(bytes: Vec<u8>) {
        let page = extract(&bytes, &Options { url: Some("http://x.cn/".into()), ..Options::default() });
        proptest::prop_assert!(page.text.len() <= bytes.len() * 3 + 3);
    }

    #[test]
    fn extraction_never_panics_on_tag_soup(parts in proptest::collection::vec(
        proptest::sample::select(vec!["<div>", "</div>", "<p>", "</p>", "<a href=x>", "</a>", "<a name=y>",
            "<table><tr><td>", "</td></tr></table>", "<br>", "<script>", "</script>", "<img data-src=1.jpg alt=图>",
            "<figure>", "<figcaption>", "</figure>", "正文，", "。", "<!--", "-->", "<meta charset=gbk>", "&amp;", "\u{0}"]),
        0..200)) {
        let html = parts.concat();
        let page = extract(html.as_bytes(), &Options::default());
        proptest::prop_assert!(page.text.chars().count() <= html.chars().count());
    }
}

#[test]
fn links_are_absolute_visible_and_followable() {
    let html = r#"<html><head><base href="/news/"></head><body>
        <a href="a.html#top">甲</a> <a href="a.html">甲again</a>
        <a href="//other.test/b?x=1">乙</a> <a href="mailto:x@y.cn">信</a>
        <a href="javascript:void(0)">无</a> <a rel="nofollow sponsored" href="/ad">广告</a>
        <div style="display:none"><a href="/trap">隐藏</a></div>
        <p>正文内容在这里，说明链接的处理方式。</p></body></html>"#;
    let opts = Options {
        url: Some("http://site.test/index.html".to_string()),
        http_charset: None,
        skip_links: false,
    };
    let page = extract::extract(html.as_bytes(), &opts);
    assert_eq!(
        page.links,
        ["http://site.test/news/a.html", "http://other.test/b?x=1"]
    );
    assert!(!page.noindex);
    // asked to skip them: the same page without links, the rest unchanged
    let skipped = extract::extract(
        html.as_bytes(),
        &Options {
            skip_links: true,
            ..opts.clone()
        },
    );
    assert!(skipped.links.is_empty());
    assert_eq!(skipped.text, page.text);
    let meta = r#"<html><head><meta name="ROBOTS" content="noindex, nofollow"></head>
        <body><a href="/x">x</a><p>正文。</p></body></html>"#;
    let page = extract::extract(meta.as_bytes(), &opts);
    assert!(page.links.is_empty());
    assert!(page.noindex);
}

#[test]
fn paragraphs_cut_by_line_breaks_are_not_a_list_of_records() {
    // an agenda: many <p> of short lines joined by <br>, each shaped like a record header
    let items: String = (1..=8)
        .map(|i| format!("<p>12月{i}日 会议<br>地 点：第{i}会议室<br>主持人：某教授</p>"))
        .collect();
    let html = format!(
        "<body><div class=nav><a href=/>首页</a></div><div><p>第四届年会的议程如下，请各位代表按时参加。</p>{items}<p>会议期间请保持手机静音，谢谢合作。</p></div></body>"
    );
    let t = text(&html);
    assert!(t.contains("第4会议室"), "{t}");
}

#[test]
fn a_one_line_promotion_beside_the_article_is_not_joined_to_it() {
    let html = "<body><div class=main><div class=promo>一张榜单尽显经济大势！年度人物评选火热进行中！</div>
        <div class=body><p>第一段正文讲述了事情的起因，内容足够长。</p><p>第二段正文讲述了事情的经过和结果。</p><p>第三段正文是有关部门的提醒。</p></div>
        <div class=more><a href=/1>城北公园下月开放市民可以预约</a><a href=/2>本市新建十个口袋公园方便休息</a></div></div></body>";
    let t = text(html);
    assert!(!t.contains("榜单"), "{t}");
    assert!(t.contains("第三段"), "{t}");
}

/// A page with the given head and a byline line before a two-paragraph article.
fn meta_page(head: &str, before: &str) -> extract::Extraction {
    let html = format!(
        "<html><head><meta charset=utf-8>{head}</head><body><div class=nav><a href=/>首页</a></div>
        <div class=art>{before}<p>这是正文的第一段，说明了事情的经过和原因。</p><p>这是第二段，补充了更多的细节。</p></div></body></html>"
    );
    extract(html.as_bytes(), &Options::default())
}

#[test]
fn titles_lose_the_site_name() {
    let cases = [
        // a bare hyphen before the site's name
        (
            "<title>法国全国大罢工再次严重影响交通-新华网</title>",
            "",
            "法国全国大罢工再次严重影响交通",
        ),
        (
            "<title>阿里发布最强AI芯片：性能吊打同行-EDN 电子技术设计</title>",
            "",
            "阿里发布最强AI芯片：性能吊打同行",
        ),
        // og:title with the suffix
        (
            "<meta property=og:title content=\"某市地铁三号线开通-示例网\">",
            "",
            "某市地铁三号线开通",
        ),
        // a number after a hyphen is part of the title
        (
            "<title>COVID-19疫苗接种指南</title>",
            "",
            "COVID-19疫苗接种指南",
        ),
        // the <title> names the site's section; the heading before the article is the title
        (
            "<title>新闻动态--中国某某学会官网</title>",
            "<h5>2019年学术年会在重庆成功举行！</h5><div>发布时间：2019-05-18</div>",
            "2019年学术年会在重庆成功举行！",
        ),
        // a heading that the <title> contains
        (
            "<title>苹果回应劳动法指控：大多数指控错误_示例网</title>",
            "<h3>苹果回应劳动法指控：大多数指控错误</h3>",
            "苹果回应劳动法指控：大多数指控错误",
        ),
    ];
    for (head, before, want) in cases {
        assert_eq!(
            meta_page(head, before).title.as_deref(),
            Some(want),
            "{head}"
        );
    }
}

#[test]
fn authors_must_read_as_names() {
    let cases = [
        // a template's placeholder, a user number, the site's own name
        (
            "<meta name=author content=\"name, email@gmail.com\">",
            "",
            None,
        ),
        ("<meta name=author content=\"104363\">", "", None),
        (
            "<title>城市公园改造完成_网易新闻</title><meta name=author content=\"网易\">",
            "",
            None,
        ),
        // a verb or a relative after 记者 / 作者 in a sentence
        ("", "<p>记者获悉，该项目已于昨日开工。</p>", None),
        ("", "<p>原作者女儿表示，改成这样不合适。</p>", None),
        // real bylines
        (
            "",
            "<p>新京报快讯（记者 裴剑飞）今日有网友爆料。</p>",
            Some("裴剑飞"),
        ),
        (
            "",
            "<p>长江网10月4日讯（记者陈智 整合）国庆长假过半。</p>",
            Some("陈智"),
        ),
        ("", "<div>作者：张三</div>", Some("张三")),
        (
            "<meta name=author content=\"kingname\">",
            "",
            Some("kingname"),
        ),
        // a bad meta value falls through to the byline
        (
            "<meta name=author content=\"104363\">",
            "<div>记者 李四</div>",
            Some("李四"),
        ),
    ];
    for (head, before, want) in cases {
        assert_eq!(
            meta_page(head, before).author.as_deref(),
            want,
            "{head} {before}"
        );
    }
}

#[test]
fn captions_come_only_from_caption_places() {
    let page = |after: &str| {
        let html = format!(
            "<body><div class=art><p>这是正文的第一段，说明了事情的经过和原因。</p><img src=/a.jpg>{after}<p>这是第二段，补充了更多的细节。</p><p>第三段。</p></div></body>"
        );
        extract(html.as_bytes(), &Options::default()).images[0]
            .caption
            .clone()
    };
    let cases = [
        ("<p>为你推荐</p>", None),
        ("<p>（责任编辑：王五）</p>", None),
        ("<p>这是一段正文，紧跟在图片后面。</p>", None),
        ("<p class=pic-text>江边的清晨</p>", Some("江边的清晨")),
        ("<div class=img_desc>江边的清晨</div>", Some("江边的清晨")),
        ("<p>图为清晨的江边。</p>", Some("图为清晨的江边。")),
        ("<p>沙坪坝区公安分局供图</p>", Some("沙坪坝区公安分局供图")),
        (
            "<p>江边的清晨。（记者 张三 摄）</p>",
            Some("江边的清晨。（记者 张三 摄）"),
        ),
    ];
    for (after, want) in cases {
        assert_eq!(page(after).as_deref(), want, "{after}");
    }
}
