//! What serving costs: clicks charged once, impressions accruing exactly,
//! budgets stopping a campaign.

use futures::future::join_all;
use harness::{App, conformance};
use serde_json::json;

use super::super::campaigns::{ads_post, campaign, campaign_until};
use super::super::user;
use super::*;

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
        let again = backends.billing.bill(e, None).await.unwrap();
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
