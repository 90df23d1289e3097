//! The HTML the display service writes: the frame a publisher embeds and
//! the demo publisher page around it.

use walletctl_core::display::AdAnswer;

/// Escapes text for HTML content and double-quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The frame around one ad: the creative, linked to the click URL (which
/// opens in the top window), and the impression pixel. An empty frame when
/// there is no ad.
pub fn frame(ad: Option<&AdAnswer>) -> String {
    let body = match ad {
        None => "<!-- no ad -->".to_owned(),
        Some(ad) => format!(
            r#"<a id="ad" href="{click}" target="_top" rel="noopener"><img id="creative" src="{asset}" alt="{title}"><span id="title">{title}</span><small id="label">Ad</small></a><img id="pixel" src="{imp}" width="1" height="1" alt="">"#,
            click = escape(&ad.click_url),
            asset = escape(&ad.creative.asset_url),
            title = escape(&ad.creative.title),
            imp = escape(&ad.impression_url),
        ),
    };
    format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><meta name="robots" content="noindex"><title>ad</title><style>body{{margin:0;font:14px system-ui,sans-serif}}#ad{{display:flex;gap:8px;align-items:center;color:inherit;text-decoration:none}}#creative{{max-width:300px;max-height:250px}}#pixel{{position:absolute;left:-9999px}}</style></head><body>{body}</body></html>"#
    )
}

/// A publisher's page with one ad slot, framed from this service.
pub fn demo(frame_src: &str) -> String {
    format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>walletctl demo publisher</title><style>body{{font:16px system-ui,sans-serif;max-width:720px;margin:2em auto}}iframe{{border:1px solid #ddd;width:320px;height:270px}}</style></head><body><h1>The Daily Example</h1><p>An article a publisher wrote. The ad below is one iframe; the publisher wrote no code for it.</p><iframe id="slot" src="{src}" title="advertisement" sandbox="allow-scripts allow-popups allow-top-navigation-by-user-activation allow-same-origin"></iframe><p>More of the article.</p></body></html>"#,
        src = escape(frame_src)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            super::escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
