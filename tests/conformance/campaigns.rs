//! Advertising management: campaigns created idempotently, kept exactly,
//! listed, paused and resumed by the rules, changed under a version guard;
//! in MongoDB (distributed) and the embedded store alike.

use harness::{App, conformance};
use serde_json::{Value, json};

use super::{amount, key, user};

fn campaign(id: &str, user: &str, price: i64) -> Value {
    json!({
        "campaign_id": id, "user_id": user, "name": "Winter sale",
        "pricing": {"model": "cpc", "price": price},
        "budget": {"lifetime": 50000, "daily": null},
        "creative": {"title": "Boots", "asset_url": "https://cdn.example/boots.png", "landing_url": "https://shop.example/boots"},
        "targeting": {"geo": ["IR-07"], "x-vendor": {"score": 0.75, "tags": [null, true, "ü"], "n": 12345678901_i64}},
        "metadata": {"owner": "team-a"},
        "schedule": null
    })
}

async fn ads_post(app: &App, path: &str, body: Value) -> (u16, Value, bool) {
    let res = app
        .http
        .post(format!("{}{path}", app.ads))
        .bearer_auth(&app.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let replayed = res.headers().get("idempotent-replayed").is_some();
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
        replayed,
    )
}

async fn ads_get(app: &App, path: &str) -> (u16, Value) {
    app.send(
        app.http
            .get(format!("{}{path}", app.ads))
            .bearer_auth(&app.token),
    )
    .await
}

fn ids(list: &Value) -> Vec<String> {
    list["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["campaign_id"].as_str().unwrap().to_owned())
        .collect()
}

conformance!(campaigns_are_created_once_and_kept_exactly, |env| {
    let app = env.spawn().await;
    let (u, id) = (user(), format!("c-{}", user()));
    let body = campaign(&id, &u, 1000);
    let (s, created, _) = ads_post(&app, "/campaigns", body.clone()).await;
    assert_eq!(s, 201, "{created}");
    assert_eq!(
        (
            created["status"].as_str(),
            created["version"].as_i64(),
            created["spent"].as_i64()
        ),
        (Some("active"), Some(1), Some(0))
    );
    assert_eq!(created["status_reason"], Value::Null);
    // The same definition again: the stored campaign, not a second one.
    let (s, again, replayed) = ads_post(&app, "/campaigns", body.clone()).await;
    assert_eq!((s, replayed), (200, true));
    assert_eq!(again, created);
    // The same id with another definition: refused, nothing changed.
    let (s, b, _) = ads_post(&app, "/campaigns", campaign(&id, &u, 999)).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (409, Some("campaign_exists"))
    );
    // Free-form fields come back exactly, unknown keys and all.
    let (s, one) = ads_get(&app, &format!("/campaign/{id}")).await;
    assert_eq!(s, 200);
    assert_eq!(one["targeting"], body["targeting"]);
    assert_eq!(one["metadata"], body["metadata"]);
    assert_eq!(one["pricing"]["price"], 1000);
    let (s, list) = ads_get(&app, &format!("/campaigns/{u}")).await;
    assert_eq!((s, ids(&list)), (200, vec![id.clone()]));
    let (s, b) = ads_get(&app, "/campaign/no-such-campaign").await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (404, Some("campaign_not_found"))
    );
    app.stop().await;
});

conformance!(
    a_bad_campaign_is_refused_by_field_and_nothing_is_stored,
    |env| {
        let app = env.spawn().await;
        let u = user();
        let cases = [
            (
                "pricing.price",
                json!({"pricing": {"model": "cpc", "price": -5}}),
            ),
            (
                "budget.daily",
                json!({"budget": {"lifetime": 10, "daily": 20}}),
            ),
            (
                "creative.landing_url",
                json!({"creative": {"title": "t", "asset_url": "https://a.example/x", "landing_url": "javascript:alert(1)"}}),
            ),
            ("user_id", json!({"user_id": "has space"})),
            ("targeting", json!({"targeting": [1, 2]})),
        ];
        for (field, change) in cases {
            let mut body = campaign(&format!("bad-{}", user()), &u, 10);
            for (k, v) in change.as_object().unwrap() {
                body[k] = v.clone();
            }
            let (s, b, _) = ads_post(&app, "/campaigns", body).await;
            assert_eq!(
                (s, b["error"]["details"]["field"].as_str()),
                (422, Some(field)),
                "{b}"
            );
        }
        let mut unknown = campaign("c-unknown", &u, 10);
        unknown["budgett"] = json!(1);
        let (s, _, _) = ads_post(&app, "/campaigns", unknown).await;
        assert_eq!(s, 422, "unknown fields are refused");
        let (_, list) = ads_get(&app, &format!("/campaigns/{u}?status=all")).await;
        assert!(ids(&list).is_empty(), "nothing was stored: {list}");
        app.stop().await;
    }
);

conformance!(
    a_paused_campaign_resumes_only_when_its_wallet_can_pay,
    |env| {
        let app = env.spawn().await;
        let u = user();
        app.wallet_with(&u, "SOUTH_EAST", 5_000).await;
        let id = format!("c-{}", user());
        ads_post(&app, "/campaigns", campaign(&id, &u, 1_000)).await;
        let update = format!("/campaigns/{id}/update");

        let (s, paused, _) = ads_post(&app, &update, json!({"action": "pause"})).await;
        assert_eq!(s, 200, "{paused}");
        assert_eq!(
            (
                paused["status"].as_str(),
                paused["status_reason"].as_str(),
                paused["version"].as_i64()
            ),
            (Some("paused"), Some("manual"), Some(2))
        );
        let (_, active) = ads_get(&app, &format!("/campaigns/{u}")).await;
        assert!(
            ids(&active).is_empty(),
            "a paused campaign is not listed as active"
        );
        let (_, all) = ads_get(&app, &format!("/campaigns/{u}?status=all")).await;
        assert_eq!(ids(&all), vec![id.clone()]);
        // Pausing again changes nothing.
        let (_, again, _) = ads_post(&app, &update, json!({"action": "pause"})).await;
        assert_eq!(again["version"], 2);

        let (s, resumed, _) = ads_post(&app, &update, json!({"action": "resume"})).await;
        assert_eq!(
            (s, resumed["status"].as_str(), resumed["version"].as_i64()),
            (200, Some("active"), Some(3))
        );

        // Drain the wallet below one click: a resume is refused and nothing changes.
        let (s, _) = app
            .post(&format!("/wallet/{u}/deduct"), amount(4_500), Some(&key()))
            .await;
        assert_eq!(s, 200);
        ads_post(&app, &update, json!({"action": "pause"})).await;
        let (s, b, _) = ads_post(&app, &update, json!({"action": "resume"})).await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (409, Some("wallet_cannot_pay")),
            "{b}"
        );
        assert_eq!(
            (
                b["error"]["details"]["needed"].as_i64(),
                b["error"]["details"]["balance"].as_i64()
            ),
            (Some(1_000), Some(500))
        );
        let (_, one) = ads_get(&app, &format!("/campaign/{id}")).await;
        assert_eq!(
            (one["status"].as_str(), one["status_reason"].as_str()),
            (Some("paused"), Some("manual"))
        );

        // An advertiser with no wallet at all cannot resume either.
        let orphan = format!("c-{}", user());
        ads_post(&app, "/campaigns", campaign(&orphan, &user(), 1)).await;
        ads_post(
            &app,
            &format!("/campaigns/{orphan}/update"),
            json!({"action": "pause"}),
        )
        .await;
        let (s, b, _) = ads_post(
            &app,
            &format!("/campaigns/{orphan}/update"),
            json!({"action": "resume"}),
        )
        .await;
        assert_eq!(
            (s, b["error"]["details"]["balance"].clone()),
            (409, Value::Null)
        );
        app.stop().await;
    }
);

conformance!(
    changes_are_checked_and_none_is_lost_under_concurrency,
    |env| {
        let app = env.spawn().await;
        let u = user();
        let id = format!("c-{}", user());
        ads_post(&app, "/campaigns", campaign(&id, &u, 10)).await;
        let update = format!("/campaigns/{id}/update");
        let (s, b, _) = ads_post(
            &app,
            &update,
            json!({"pricing": {"model": "cpm", "price": 0}}),
        )
        .await;
        assert_eq!(
            (s, b["error"]["details"]["field"].as_str()),
            (422, Some("pricing.price"))
        );
        let (s, _, _) = ads_post(&app, &update, json!({"action": "pause", "name": "x"})).await;
        assert_eq!(s, 422, "an action or fields, not both");
        let (s, _, _) = ads_post(&app, &update, json!({})).await;
        assert_eq!(s, 422, "nothing to do");
        // Ten concurrent changes, each different: each applied exactly once.
        let tasks: Vec<_> = (0..10)
            .map(|i| {
                let req = app
                    .http
                    .post(format!("{}{update}", app.ads))
                    .bearer_auth(&app.token)
                    .json(&json!({"metadata": {"rev": i}}));
                tokio::spawn(async move { req.send().await.unwrap().status().as_u16() })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), 200);
        }
        let (_, one) = ads_get(&app, &format!("/campaign/{id}")).await;
        assert_eq!(
            one["version"], 11,
            "ten changes after version 1, none lost: {one}"
        );
        app.stop().await;
    }
);

conformance!(campaign_routes_need_campaign_scopes, |env| {
    let app = env.spawn().await;
    let store = env.backends().await.store;
    let scopes = |s: &str| walletctl_core::platform::auth::Scopes::parse(s).unwrap();
    let reader = store
        .create_token("wallet-reader", &scopes("read"), "test")
        .await
        .unwrap()
        .secret;
    let viewer = store
        .create_token("campaign-viewer", &scopes("campaigns_read"), "test")
        .await
        .unwrap()
        .secret;
    let u = user();
    let (s, _) = app
        .send(
            app.http
                .get(format!("{}/campaigns/{u}", app.ads))
                .bearer_auth(&reader),
        )
        .await;
    assert_eq!(s, 403);
    let (s, _) = app
        .send(
            app.http
                .get(format!("{}/campaigns/{u}", app.ads))
                .bearer_auth(&viewer),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = app
        .send(
            app.http
                .post(format!("{}/campaigns", app.ads))
                .bearer_auth(&viewer)
                .json(&campaign("c-x", &u, 1)),
        )
        .await;
    assert_eq!(s, 403);
    let (s, _) = app
        .send(app.http.get(format!("{}/campaigns/{u}", app.ads)))
        .await;
    assert_eq!(s, 401);
    app.stop().await;
});
