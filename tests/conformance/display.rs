//! Ad display and billing, end to end: ads served by two display
//! instances, impressions and clicks logged to `ad_events`, each charged
//! exactly once, and the campaign stopped when its wallet or budget runs
//! out; in both modes.

use std::time::Duration;

use futures::future::join_all;
use harness::{App, conformance};
use serde_json::{Value, json};
use walletctl_core::display::AdEvent;
use walletctl_core::events::{Record, topic};

use super::campaigns::{ads_get, ads_post, campaign, campaign_until};
use super::user;

/// A client that shows redirects instead of following them.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Asks `app`'s display service for an ad until it answers `want` (its
/// candidates are refreshed in the background): the ad, or `Null` for 204.
async fn ads_until(app: &App, query: &str, want: u16) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let res = app
            .http
            .get(format!("{}/ads?{query}", app.display))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        assert!(matches!(status, 200 | 204), "an ad or nothing: {status}");
        if status == want {
            return res.json().await.unwrap_or(Value::Null);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{query} never answered {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The next ad `app` serves for `query`.
pub(crate) async fn ad_from(app: &App, query: &str) -> Value {
    ads_until(app, query, 200).await
}

/// Waits until `app` serves nothing for `query`.
async fn no_ad_from(app: &App, query: &str) {
    ads_until(app, query, 204).await;
}

/// The campaign's billing once `n` distinct events are recorded.
pub(crate) async fn billing_with(app: &App, id: &str, n: usize) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (s, b) = ads_get(app, &format!("/campaign/{id}/billing?limit=1000")).await;
        assert_eq!(s, 200, "{b}");
        let got = b["events"].as_array().unwrap().len();
        if got >= n {
            assert_eq!(got, n, "more events recorded than sent: {b}");
            return b;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {got} of {n} events billed: {b}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn count(billing: &Value, f: impl Fn(&Value) -> bool) -> usize {
    billing["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| f(e))
        .count()
}

/// Publishes `events` to `ad_events` again, then one fresh impression of
/// the same campaign (the same partition, so billed after them), and waits
/// for that one: everything republished has been consumed by then.
async fn redeliver(env: &harness::TestEnv, app: &App, id: &str, events: &[AdEvent], known: usize) {
    let backends = env.backends().await;
    let mut sentinel = events[0].clone();
    sentinel.kind = walletctl_core::display::AdEventKind::Impression;
    sentinel.decision_id = format!("sentinel{}", user());
    sentinel.event_id = format!("imp:{}", sentinel.decision_id);
    let payloads: Vec<String> = events
        .iter()
        .chain(std::iter::once(&sentinel))
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    let records: Vec<Record> = payloads
        .iter()
        .map(|p| Record {
            topic: topic::AD_EVENTS,
            key: id,
            payload: p,
        })
        .collect();
    backends.events.publish(&records).await.unwrap();
    billing_with(app, id, known + 1).await;
}

/// The ledger's sum equals the balance; the `ad_charge` entries are listed.
async fn ad_charges(app: &App, u: &str) -> Vec<Value> {
    let (s, h) = app
        .get(&format!("/wallet/{u}/history?limit=500&consistency=strong"))
        .await;
    assert_eq!(s, 200, "{h}");
    let entries = h["entries"].as_array().unwrap();
    let sum: i64 = entries.iter().map(|e| e["amount"].as_i64().unwrap()).sum();
    assert_eq!(sum, app.balance(u).await, "the ledger sums to the balance");
    entries
        .iter()
        .filter(|e| e["kind"] == "ad_charge")
        .cloned()
        .collect()
}

fn events_of(billing: &Value) -> Vec<AdEvent> {
    billing["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let id = e["event_id"].as_str().unwrap();
            AdEvent {
                event_id: id.to_owned(),
                kind: serde_json::from_value(e["kind"].clone()).unwrap(),
                campaign_id: e["campaign_id"].as_str().unwrap().to_owned(),
                user_id: e["user_id"].as_str().unwrap().to_owned(),
                slot: "top".into(),
                viewer: None,
                decision_id: id.split_once(':').unwrap().1.to_owned(),
                occurred_at_ms: e["occurred_at_ms"].as_i64().unwrap(),
            }
        })
        .collect()
}

conformance!(clicks_are_charged_once_until_the_wallet_is_empty, |env| {
    let a = env.spawn().await;
    let b = App::start_display(env.config.clone(), &a).await;
    let u = user();
    let id = format!("loop-{u}");
    a.wallet_with(&u, "SOUTH_EAST", 10_000).await;
    let mut body = campaign(&id, &u, 1_000);
    body["budget"] = json!({"lifetime": 1_000_000, "daily": null});
    let (s, c, _) = ads_post(&a, "/campaigns", body).await;
    assert_eq!((s, c["status"].as_str()), (201, Some("active")), "{c}");

    // 15 ads, from both instances.
    let query = format!("slot=top&advertiser={u}");
    let mut ads = Vec::new();
    for i in 0..15_usize {
        ads.push(ad_from(if i.is_multiple_of(2) { &a } else { &b }, &query).await);
    }
    assert!(ads.iter().all(|ad| ad["campaign_id"] == id.as_str()));
    assert_eq!(ads[0]["creative"]["title"], "Boots");

    // Every click at once, each through the other instance than served it,
    // and the first five twice more (a double click, a reload).
    let http = no_redirects();
    let display = |i: usize| {
        if i.is_multiple_of(2) {
            &b.display
        } else {
            &a.display
        }
    };
    let mut clicks = Vec::new();
    for (i, ad) in ads.iter().enumerate() {
        let url = ad["click_url"].as_str().unwrap().to_owned();
        // Any instance accepts a token another signed: send it to the other one.
        let path = url.split_once("/c/").unwrap().1.to_owned();
        let repeats = if i < 5 { 3 } else { 1 };
        for r in 0..repeats {
            clicks.push(http.get(format!("{}/c/{path}", display(i + r))).send());
        }
    }
    for res in join_all(clicks).await {
        let res = res.unwrap();
        assert_eq!(res.status(), 302);
        assert_eq!(
            res.headers()["location"].to_str().unwrap(),
            "https://shop.example/boots"
        );
    }

    // Exactly 10 charged; 5 recorded unbilled with their reason.
    let billing = billing_with(&a, &id, 15).await;
    assert_eq!(
        count(&billing, |e| e["status"] == "billed"
            && e["amount"] == 1_000),
        10,
        "{billing}"
    );
    assert_eq!(
        count(&billing, |e| e["status"] == "unbilled"
            && e["reason"] == "insufficient_funds"),
        5,
        "{billing}"
    );
    assert_eq!(billing["totals"]["clicks"], 10);
    assert_eq!(billing["totals"]["spent"], 10_000);
    assert_eq!(a.balance(&u).await, 0);
    let charges = ad_charges(&a, &u).await;
    assert_eq!(charges.len(), 10);

    // The campaign pauses for its wallet and is no longer served.
    let c = campaign_until(&a, &id, "paused", |c| c["status"] == "paused").await;
    assert_eq!(c["status_reason"], "wallet_empty", "{c}");
    no_ad_from(&a, &query).await;
    no_ad_from(&b, &query).await;
    let c = campaign_until(&a, &id, "given its spend", |c| c["spent"] == 10_000).await;
    assert_eq!(c["spent"], 10_000);

    // Redelivering every event changes nothing, nor does billing them again.
    let events = events_of(&billing);
    redeliver(&env, &a, &id, &events, 15).await;
    let backends = env.backends().await;
    for e in &events {
        let again = backends.store.bill(e, None).await.unwrap();
        assert!(again.duplicate, "{} billed twice", e.event_id);
    }
    assert_eq!(a.balance(&u).await, 0);
    assert_eq!(ad_charges(&a, &u).await, charges);
    let after = billing_with(&a, &id, 16).await;
    assert_eq!(after["totals"]["spent"], 10_000);
    assert_eq!(after["totals"]["clicks"], 10);
    a.stop().await;
    b.stop().await;
});

conformance!(
    impressions_accrue_fractions_exactly_until_the_budget_stops_them,
    |env| {
        let a = env.spawn().await;
        let b = App::start_display(env.config.clone(), &a).await;
        let u = user();
        let id = format!("cpm-{u}");
        a.wallet_with(&u, "SOUTH_EAST", 10_000).await;
        let mut body = campaign(&id, &u, 1_234);
        body["pricing"] = json!({"model": "cpm", "price": 1_234});
        body["budget"] = json!({"lifetime": 500, "daily": null});
        let (s, c, _) = ads_post(&a, "/campaigns", body).await;
        assert_eq!((s, c["status"].as_str()), (201, Some("active")), "{c}");

        let query = format!("slot=side&advertiser={u}");
        let mut urls = Vec::new();
        for i in 0..450_usize {
            let ad = ad_from(if i.is_multiple_of(2) { &a } else { &b }, &query).await;
            urls.push(ad["impression_url"].as_str().unwrap().to_owned());
        }
        // Beacons 50 at a time, each fired twice (a pixel and a retry).
        for chunk in urls.chunks(50) {
            let sent = chunk
                .iter()
                .flat_map(|u| [u.clone(), u.clone()])
                .map(|u| a.http.get(u).send());
            for res in join_all(sent).await {
                assert_eq!(res.unwrap().status(), 204);
            }
        }
        // 1.234 per impression and a budget of 500: 405 impressions make
        // 499.77, charged 499; the 406th would pass the budget.
        let billing = billing_with(&a, &id, 450).await;
        assert_eq!(
            billing["totals"]["impressions"], 405,
            "{}",
            billing["totals"]
        );
        assert_eq!(billing["totals"]["spent"], 405 * 1_234 / 1_000);
        assert_eq!(billing["totals"]["remainder_milli"], 405 * 1_234 % 1_000);
        assert_eq!(
            count(&billing, |e| e["status"] == "unbilled"
                && e["reason"] == "budget_exhausted"),
            45
        );
        let charged: i64 = billing["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["amount"].as_i64().unwrap())
            .sum();
        assert_eq!(charged, 499);
        assert_eq!(a.balance(&u).await, 10_000 - 499);
        let charges = ad_charges(&a, &u).await;
        assert_eq!(
            charges
                .iter()
                .map(|e| -e["amount"].as_i64().unwrap())
                .sum::<i64>(),
            499
        );
        // The budget stopped it first: the wallet could still pay.
        let c = campaign_until(&a, &id, "paused", |c| c["status"] == "paused").await;
        assert_eq!(c["status_reason"], "budget_exhausted", "{c}");
        campaign_until(&a, &id, "given its spend", |c| c["spent"] == 499).await;
        no_ad_from(&b, &query).await;
        // A person cannot resume it until the budget is raised.
        let (s, body, _) = ads_post(
            &a,
            &format!("/campaigns/{id}/update"),
            json!({"action": "resume"}),
        )
        .await;
        assert_eq!(
            (s, body["error"]["code"].as_str()),
            (409, Some("budget_exhausted")),
            "{body}"
        );

        redeliver(&env, &a, &id, &events_of(&billing)[..20], 450).await;
        let after = billing_with(&a, &id, 451).await;
        assert_eq!(after["totals"]["spent"], 499);
        assert_eq!(a.balance(&u).await, 10_000 - 499);
        a.stop().await;
        b.stop().await;
    }
);

conformance!(
    forged_expired_and_malformed_tokens_produce_no_event,
    |env| {
        let app = env.spawn().await;
        let u = user();
        let id = format!("tok-{u}");
        app.wallet_with(&u, "SOUTH_EAST", 10_000).await;
        let (s, _, _) = ads_post(&app, "/campaigns", campaign(&id, &u, 1_000)).await;
        assert_eq!(s, 201);
        let ad = ad_from(&app, &format!("slot=top&advertiser={u}")).await;
        let click = ad["click_url"].as_str().unwrap();
        let (base, token) = click.split_once("/c/").unwrap();
        let http = no_redirects();
        let status = |path: String| {
            let http = http.clone();
            async move {
                let res = http.get(path).send().await.unwrap();
                let s = res.status().as_u16();
                (s, res.json::<Value>().await.unwrap_or(Value::Null))
            }
        };
        // Altered claims under the original signature.
        let mut parts: Vec<&str> = token.split('.').collect();
        let other = parts[1].replace('A', "B");
        parts[1] = &other;
        let (s, b) = status(format!("{base}/c/{}", parts.join("."))).await;
        assert!(matches!(s, 400 | 403), "{s} {b}");
        assert!(b["error"]["code"].is_string(), "the API's error shape: {b}");
        // Signed by a key this service does not hold.
        let foreign = walletctl_core::display::Signer::new(&[walletctl_core::config::SigningKey {
            id: token.split('.').next().unwrap().to_owned(),
            secret: walletctl_core::config::Secret::new("x".repeat(40)),
        }])
        .unwrap();
        let key_file = std::fs::read_to_string(env.config.display_key_path()).unwrap();
        let (kid, secret) = key_file.trim().split_once(':').unwrap();
        let ours = walletctl_core::display::Signer::new(&[walletctl_core::config::SigningKey {
            id: kid.to_owned(),
            secret: walletctl_core::config::Secret::new(secret),
        }])
        .unwrap();
        let mut claims = ours.verify(token, 0).unwrap();
        let (s, b) = status(format!("{base}/c/{}", foreign.sign(&claims))).await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (403, Some("forged_token"))
        );
        // Expired.
        claims.expires_at = walletctl_core::now_ms() / 1000 - 1;
        let (s, b) = status(format!("{base}/c/{}", ours.sign(&claims))).await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (410, Some("token_expired"))
        );
        // Malformed, and an impression token used as a click.
        let (s, _) = status(format!("{base}/c/not-a-token")).await;
        assert_eq!(s, 400);
        let imp = ad["impression_url"]
            .as_str()
            .unwrap()
            .split_once("/i/")
            .unwrap()
            .1;
        let (s, _) = status(format!("{base}/c/{imp}")).await;
        assert_eq!(s, 400);
        // Bad ad requests.
        let (s, b) = status(format!("{base}/ads")).await;
        assert_eq!(s, 400, "{b}");
        let (s, b) = status(format!("{base}/ads?slot=a%20b")).await;
        assert_eq!(
            (s, b["error"]["details"]["field"].as_str()),
            (400, Some("slot")),
            "{b}"
        );
        let (s, _) = status(format!("{base}/ads?slot=a&colour=red")).await;
        assert_eq!(s, 400);
        // None of that became an event: one real click shows the log is live.
        let (s, _) = status(click.to_owned()).await;
        assert_eq!(s, 302);
        let billing = billing_with(&app, &id, 1).await;
        assert_eq!(billing["events"][0]["kind"], "click");
        tokio::time::sleep(Duration::from_millis(500)).await;
        billing_with(&app, &id, 1).await;
        assert_eq!(app.balance(&u).await, 9_000);
        app.stop().await;
    }
);

/// The demo creative: a 240×120 PNG.
pub(crate) const CREATIVE_PNG: &[u8] = include_bytes!("../fixtures/creative.png");

/// Uploads `bytes` as `id`'s image: (status, body).
pub(crate) async fn upload(
    app: &App,
    id: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> (u16, Value) {
    app.send(
        app.http
            .post(format!("{}/campaigns/{id}/asset", app.ads))
            .bearer_auth(&app.token)
            .header("content-type", content_type)
            .body(bytes),
    )
    .await
}

conformance!(
    uploaded_assets_are_served_immutable_through_the_cdn_base,
    |env| {
        let mut config = env.config.clone();
        config.display.cdn_base_url = Some("https://cdn.example/".into());
        let app = App::start(config).await;
        let u = user();
        let id = format!("art-{u}");
        app.wallet_with(&u, "SOUTH_EAST", 10_000).await;
        let (s, _, _) = ads_post(&app, "/campaigns", campaign(&id, &u, 1_000)).await;
        assert_eq!(s, 201);

        // Not an image, a lie about its type, too large, unknown campaign: refused.
        let (s, b) = upload(
            &app,
            &id,
            "image/svg+xml",
            b"<svg onload=alert(1)/>".to_vec(),
        )
        .await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (400, Some("invalid_request")),
            "{b}"
        );
        let (s, _) = upload(&app, &id, "image/gif", CREATIVE_PNG.to_vec()).await;
        assert_eq!(s, 400);
        let mut big = CREATIVE_PNG.to_vec();
        big.resize(1024 * 1024 + 1, 0);
        let (s, _) = upload(&app, &id, "image/png", big).await;
        assert_eq!(s, 413);
        let (s, _) = upload(&app, "no-such-campaign", "image/png", CREATIVE_PNG.to_vec()).await;
        assert_eq!(s, 404);
        let (_, c) = ads_get(&app, &format!("/campaign/{id}")).await;
        assert!(
            c["creative"].get("asset_id").is_none(),
            "nothing changed: {c}"
        );

        let (s, up) = upload(&app, &id, "image/png", CREATIVE_PNG.to_vec()).await;
        assert_eq!(s, 200, "{up}");
        let asset = up["asset_id"].as_str().unwrap().to_owned();
        assert_eq!(asset.len(), 64);
        assert_eq!(up["campaign"]["creative"]["asset_id"], asset.as_str());
        // The same bytes again: the same name, nothing new.
        let (s, again) = upload(&app, &id, "image/png", CREATIVE_PNG.to_vec()).await;
        assert_eq!((s, again["asset_id"].as_str()), (200, Some(asset.as_str())));
        assert_eq!(again["campaign"]["version"], up["campaign"]["version"]);

        // Ads point at it through the CDN base; the display service is the origin.
        let ad = ad_until_asset(&app, &format!("slot=top&advertiser={u}"), &asset).await;
        assert_eq!(
            ad["creative"]["asset_url"],
            format!("https://cdn.example/assets/{asset}")
        );
        let res = app
            .http
            .get(format!("{}/assets/{asset}", app.display))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let h = res.headers().clone();
        assert_eq!(h["content-type"], "image/png");
        assert_eq!(h["cache-control"], "public, max-age=31536000, immutable");
        let etag = h["etag"].to_str().unwrap().to_owned();
        assert_eq!(etag, format!("\"{asset}\""));
        assert_eq!(res.bytes().await.unwrap().as_ref(), CREATIVE_PNG);
        let res = app
            .http
            .get(format!("{}/assets/{asset}", app.display))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 304);
        assert_eq!(res.headers()["etag"], etag.as_str());
        for missing in ["0".repeat(64), "not-a-hash".to_owned()] {
            let res = app
                .http
                .get(format!("{}/assets/{missing}", app.display))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 404);
        }
        app.stop().await;
    }
);

/// An ad whose creative shows `asset` (the candidates catch up with the upload).
async fn ad_until_asset(app: &App, query: &str, asset: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ad = ad_from(app, query).await;
        if ad["creative"]["asset_url"]
            .as_str()
            .is_some_and(|u| u.ends_with(asset))
        {
            return ad;
        }
        assert!(tokio::time::Instant::now() < deadline, "never shown: {ad}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

conformance!(
    a_viewer_sees_a_campaign_at_most_the_capped_number_of_times,
    |env| {
        let mut config = env.config.clone();
        config.display.frequency_cap = Some(2);
        let app = App::start(config).await;
        let u = user();
        app.wallet_with(&u, "SOUTH_EAST", 10_000).await;
        for n in 0..2 {
            let (s, _, _) = ads_post(
                &app,
                "/campaigns",
                campaign(&format!("cap{n}-{u}"), &u, 1_000),
            )
            .await;
            assert_eq!(s, 201);
        }
        // Both campaigns held before counting.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while app_pool_size(&app, &u).await < 2 {
            assert!(tokio::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let query = format!("slot=top&viewer=v-{u}&advertiser={u}");
        let mut seen = std::collections::HashMap::new();
        for _ in 0..4 {
            let ad = ad_from(&app, &query).await;
            *seen
                .entry(ad["campaign_id"].as_str().unwrap().to_owned())
                .or_insert(0) += 1;
        }
        assert_eq!(
            seen.values().copied().collect::<Vec<_>>(),
            vec![2, 2],
            "{seen:?}"
        );
        let res = app
            .http
            .get(format!("{}/ads?{query}", app.display))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 204, "capped out");
        // Another viewer is not capped.
        ad_from(&app, &format!("slot=top&viewer=w-{u}&advertiser={u}")).await;
        app.stop().await;
    }
);

/// How many of `u`'s campaigns the display service holds (it serves the
/// advertiser's list once read; before that, the pool).
async fn app_pool_size(app: &App, u: &str) -> usize {
    let mut ids = std::collections::HashSet::new();
    for _ in 0..20 {
        let res = app
            .http
            .get(format!("{}/ads?slot=probe&advertiser={u}", app.display))
            .send()
            .await
            .unwrap();
        if res.status() == 200 {
            let ad: Value = res.json().await.unwrap();
            ids.insert(ad["campaign_id"].as_str().unwrap().to_owned());
        }
    }
    ids.len()
}

conformance!(
    a_signing_key_rotates_without_breaking_tokens_already_out,
    |env| {
        let key = |id: &str, fill: char| walletctl_core::config::SigningKey {
            id: id.into(),
            secret: walletctl_core::config::Secret::new(fill.to_string().repeat(40)),
        };
        let with_keys = |keys: Vec<walletctl_core::config::SigningKey>| {
            let mut c = env.config.clone();
            c.display.signing_keys = keys;
            c
        };
        let http = no_redirects();
        let click = |base: String, url: &str| {
            let path = url.split_once("/c/").unwrap().1.to_owned();
            let http = http.clone();
            async move {
                http.get(format!("{base}/c/{path}"))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
        };
        // 1. Only k1: ads carry k1 tokens.
        let app = App::start(with_keys(vec![key("k1", 'a')])).await;
        let u = user();
        app.wallet_with(&u, "SOUTH_EAST", 10_000).await;
        let (s, _, _) = ads_post(&app, "/campaigns", campaign(&format!("rot-{u}"), &u, 100)).await;
        assert_eq!(s, 201);
        let query = format!("slot=s&advertiser={u}");
        let old = ad_from(&app, &query).await["click_url"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(old.split_once("/c/").unwrap().1.starts_with("k1."));
        app.stop().await;
        // 2. k2 first, k1 kept: new tokens are k2's, old ones still work.
        let app = App::start(with_keys(vec![key("k2", 'b'), key("k1", 'a')])).await;
        let new = ad_from(&app, &query).await["click_url"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(new.split_once("/c/").unwrap().1.starts_with("k2."));
        assert_eq!(click(app.display.clone(), &old).await, 302);
        app.stop().await;
        // 3. k1 removed: its tokens are refused, k2's accepted.
        let app = App::start(with_keys(vec![key("k2", 'b')])).await;
        assert_eq!(click(app.display.clone(), &old).await, 403);
        assert_eq!(click(app.display.clone(), &new).await, 302);
        app.stop().await;
    }
);

conformance!(
    a_daily_budget_pauses_the_campaign_until_the_next_day,
    |env| {
        let app = env.spawn().await;
        let u = user();
        let id = format!("daily-{u}");
        app.wallet_with(&u, "SOUTH_EAST", 10_000).await;
        let mut body = campaign(&id, &u, 1_000);
        body["budget"] = json!({"lifetime": 50_000, "daily": 2_000});
        let (s, _, _) = ads_post(&app, "/campaigns", body).await;
        assert_eq!(s, 201);
        let query = format!("slot=s&advertiser={u}");
        let http = no_redirects();
        for _ in 0..3 {
            let ad = ad_from(&app, &query).await;
            let res = http
                .get(ad["click_url"].as_str().unwrap())
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 302);
        }
        let billing = billing_with(&app, &id, 3).await;
        assert_eq!(billing["totals"]["spent"], 2_000);
        assert_eq!(
            count(&billing, |e| e["reason"] == "daily_budget_exhausted"),
            1
        );
        let c = campaign_until(&app, &id, "paused", |c| c["status"] == "paused").await;
        assert_eq!(c["status_reason"], "budget_exhausted");
        app.stop().await;

        // The next UTC day (billing's counters say the spend was yesterday's).
        env.sql(&format!(
            "UPDATE ad_billing SET day = day - 1 WHERE campaign_id = '{id}'"
        ))
        .await;
        let backends = env.backends().await;
        let limits = walletctl_core::ops::reconcile::Limits {
            outbox_age_ms: 60_000,
            replica_lag_ms: 60_000,
        };
        let found =
            walletctl_core::ops::reconcile::reconcile(&backends, limits, false, &|_, _| {}).await;
        let status = found
            .checks
            .iter()
            .find(|c| c.check == "campaign_status")
            .unwrap();
        assert_eq!(status.found, 1, "{:?}", status.details);
        assert!(
            status.details[0].contains("can pay again"),
            "{:?}",
            status.details
        );
        // Billing settles budgets when it starts and at each new day: it resumes.
        let app = App::start(env.config.clone()).await;
        let c = campaign_until(&app, &id, "resumed", |c| c["status"] == "active").await;
        assert_eq!(c["status_reason"], serde_json::Value::Null);
        app.stop().await;
    }
);
