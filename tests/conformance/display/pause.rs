//! A pause stops serving: the display service consumes `campaign_paused`
//! and `campaign_resumed` and drops or restores the campaign in every list
//! it holds, and never decides from a list older than
//! `display.candidates_max_age_ms`, counted from when it was read.

use harness::{App, conformance};
use serde_json::json;

use super::super::campaigns::{ads_post, campaign};
use super::super::user;
use super::*;

/// A fresh advertiser with 100,000 in its wallet and one active CPC
/// campaign `{prefix}-{user}`: `(user, campaign id)`.
async fn funded_campaign(app: &App, prefix: &str) -> (String, String) {
    let u = user();
    let id = format!("{prefix}-{u}");
    app.wallet_with(&u, "SOUTH_EAST", 100_000).await;
    let (s, c, _) = ads_post(app, "/campaigns", campaign(&id, &u, 100)).await;
    assert_eq!(s, 201, "{c}");
    (u, id)
}

conformance!(a_pause_stops_serving_before_any_refresh_would, |env| {
    // Lists are refreshed only every 10 minutes here: only the events can
    // stop or restore the campaign within the test.
    let mut config = env.config.clone();
    config.display.candidates_ttl_ms = 600_000;
    config.display.candidates_max_age_ms = 1_200_000;
    let app = App::start(config).await;
    let (u, id) = funded_campaign(&app, "pz").await;
    let query = format!("slot=s&advertiser={u}");
    let ad = ad_from(&app, &query).await;
    assert_eq!(ad["campaign_id"], id.as_str());

    let (s, b, _) = ads_post(
        &app,
        &format!("/campaigns/{id}/update"),
        json!({"action": "pause"}),
    )
    .await;
    assert_eq!((s, b["status"].as_str()), (200, Some("paused")), "{b}");
    no_ad_from(&app, &query).await;

    let (s, b, _) = ads_post(
        &app,
        &format!("/campaigns/{id}/update"),
        json!({"action": "resume"}),
    )
    .await;
    assert_eq!((s, b["status"].as_str()), (200, Some("active")), "{b}");
    let ad = ad_from(&app, &query).await;
    assert_eq!(
        ad["campaign_id"],
        id.as_str(),
        "served again after the resume"
    );
    app.stop().await;
});

conformance!(a_display_cut_off_from_its_lists_stops_serving, |env| {
    let management = env.spawn().await;
    let (u, id) = funded_campaign(&management, "cut").await;
    let mut config = env.config.clone();
    config.display.candidates_ttl_ms = 100;
    config.display.candidates_max_age_ms = 1_000;
    let display = App::start_display(config, &management).await;
    for query in ["slot=s".to_owned(), format!("slot=s&advertiser={u}")] {
        let ad = ad_from(&display, &query).await;
        assert_eq!(ad["campaign_id"], id.as_str(), "{query}");
    }
    // The management service goes away: the lists can no longer be read,
    // and once what was read is older than the bound nothing is served
    // (it could have been paused meanwhile).
    management.stop().await;
    for query in ["slot=s".to_owned(), format!("slot=s&advertiser={u}")] {
        no_ad_from(&display, &query).await;
    }
    display.stop().await;
});

conformance!(a_click_after_a_persons_pause_is_recorded_unbilled, |env| {
    let app = env.spawn().await;
    let (u, id) = funded_campaign(&app, "pzb").await;
    let query = format!("slot=s&advertiser={u}");
    let (before, after) = (ad_from(&app, &query).await, ad_from(&app, &query).await);
    let http = no_redirects();
    let click = |ad: &serde_json::Value| {
        http.get(ad["click_url"].as_str().unwrap().to_owned())
            .send()
    };
    assert_eq!(click(&before).await.unwrap().status(), 302);
    let billed = billing_with(&app, &id, 1).await;
    assert_eq!(billed["events"][0]["status"], "billed", "{billed}");

    // A person pauses it (as when they see fraud); a click URL handed out
    // before is still used afterwards. Billing reads a campaign's terms at
    // most a second old: wait that out.
    let (s, b, _) = ads_post(
        &app,
        &format!("/campaigns/{id}/update"),
        json!({"action": "pause"}),
    )
    .await;
    assert_eq!((s, b["status"].as_str()), (200, Some("paused")), "{b}");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        click(&after).await.unwrap().status(),
        302,
        "the viewer still lands"
    );
    let billing = billing_with(&app, &id, 2).await;
    let late = billing["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "click" && e["event_id"] != billed["events"][0]["event_id"])
        .cloned()
        .unwrap();
    assert_eq!(
        (
            late["status"].as_str(),
            late["reason"].as_str(),
            late["amount"].as_i64()
        ),
        (Some("unbilled"), Some("campaign_paused"), Some(0)),
        "{billing}"
    );
    assert_eq!(
        app.balance(&u).await,
        100_000 - 100,
        "only the click before the pause was charged"
    );
    app.stop().await;
});
