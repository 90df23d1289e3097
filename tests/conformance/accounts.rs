//! Accounts: a token bound to advertiser accounts reaches only their wallets
//! and campaigns. Another advertiser's ids answer 404 exactly as ids that do
//! not exist, and nothing of theirs changes; a bound token never reads the
//! serving pool and never moves money; walletctl's own callers' names are
//! not for tokens.

use harness::{App, conformance};
use serde_json::{Value, json};
use walletctl_core::platform::auth::{Accounts, Grant, Scopes};

use super::campaigns::{ads_post, campaign};
use super::{key, user};

/// A token bound to `account` with the advertiser's scopes.
async fn advertiser_token(env: &harness::TestEnv, name: &str, account: &str) -> String {
    let grant = Grant::new(
        Scopes::parse("read,campaigns_read,campaigns_write").unwrap(),
        Accounts::parse(account).unwrap(),
    )
    .unwrap();
    env.backends()
        .await
        .tokens
        .create_token(name, grant, "test")
        .await
        .unwrap()
        .secret
}

/// `GET {base}{path}` as `token`.
async fn get_as(app: &App, token: &str, base: &str, path: &str) -> (u16, Value) {
    app.send(app.http.get(format!("{base}{path}")).bearer_auth(token))
        .await
}

/// `POST {ads}{path}` with `body` as `token`.
async fn post_ads_as(app: &App, token: &str, path: &str, body: Value) -> (u16, Value) {
    app.send(
        app.http
            .post(format!("{}{path}", app.ads))
            .bearer_auth(token)
            .json(&body),
    )
    .await
}

conformance!(a_bound_token_reaches_only_its_own_accounts, |env| {
    let app = env.spawn().await;
    let (acme, globex) = (user(), user());
    app.wallet_with(&acme, "SOUTH_EAST", 10_000).await;
    app.wallet_with(&globex, "SOUTH_WEST", 20_000).await;
    let (c_acme, c_globex) = (format!("c-{acme}"), format!("c-{globex}"));
    for (id, u) in [(&c_acme, &acme), (&c_globex, &globex)] {
        let (s, body, _) = ads_post(&app, "/campaigns", campaign(id, u, 100)).await;
        assert_eq!(s, 201, "{body}");
    }
    let t = advertiser_token(&env, &format!("acme-{acme}"), &acme).await;

    // Its own account: everything it has the scopes for.
    let (s, w) = get_as(&app, &t, &app.wallet, &format!("/wallet/{acme}/balance")).await;
    assert_eq!((s, w["balance"].as_i64()), (200, Some(10_000)), "{w}");
    let (s, _) = get_as(&app, &t, &app.wallet, &format!("/wallet/{acme}/history")).await;
    assert_eq!(s, 200);
    let (s, list) = get_as(&app, &t, &app.ads, &format!("/campaigns/{acme}")).await;
    assert_eq!(
        (s, list["campaigns"][0]["campaign_id"].as_str()),
        (200, Some(c_acme.as_str()))
    );
    let (s, _) = get_as(&app, &t, &app.ads, &format!("/campaign/{c_acme}")).await;
    assert_eq!(s, 200);
    let (s, _) = get_as(&app, &t, &app.ads, &format!("/campaign/{c_acme}/billing")).await;
    assert_eq!(s, 200);
    let (s, paused) = post_ads_as(
        &app,
        &t,
        &format!("/campaigns/{c_acme}/update"),
        json!({"action": "pause"}),
    )
    .await;
    assert_eq!(
        (s, paused["status"].as_str()),
        (200, Some("paused")),
        "{paused}"
    );
    let own = campaign(&format!("c2-{acme}"), &acme, 50);
    let (s, created) = post_ads_as(&app, &t, "/campaigns", own).await;
    assert_eq!(s, 201, "{created}");

    // Another advertiser's ids answer as ids that do not exist.
    let nobody = user();
    for (base, path, missing) in [
        (
            &app.wallet,
            format!("/wallet/{globex}/balance"),
            format!("/wallet/{nobody}/balance"),
        ),
        (
            &app.wallet,
            format!("/wallet/{globex}"),
            format!("/wallet/{nobody}"),
        ),
        (
            &app.wallet,
            format!("/wallet/{globex}/history"),
            format!("/wallet/{nobody}/history"),
        ),
        (
            &app.ads,
            format!("/campaign/{c_globex}"),
            format!("/campaign/c-{nobody}"),
        ),
        (
            &app.ads,
            format!("/campaign/{c_globex}/billing"),
            format!("/campaign/c-{nobody}/billing"),
        ),
    ] {
        let (s, foreign) = get_as(&app, &t, base, &path).await;
        let (s2, absent) = get_as(&app, &t, base, &missing).await;
        assert_eq!(s, 404, "{path}: {foreign}");
        assert_eq!(
            (s2, &foreign["error"]["code"]),
            (404, &absent["error"]["code"]),
            "{path}: {foreign} vs {absent}"
        );
    }
    let (s, foreign) = get_as(&app, &t, &app.ads, &format!("/campaigns/{globex}")).await;
    assert_eq!(s, 404, "another advertiser's list: {foreign}");
    // Changing, pausing, uploading to or creating for another advertiser changes nothing.
    for action in [json!({"action": "pause"}), json!({"name": "mine now"})] {
        let (s, body) =
            post_ads_as(&app, &t, &format!("/campaigns/{c_globex}/update"), action).await;
        assert_eq!(
            (s, body["error"]["code"].as_str()),
            (404, Some("campaign_not_found")),
            "{body}"
        );
    }
    let upload = app
        .http
        .post(format!("{}/campaigns/{c_globex}/asset", app.ads))
        .bearer_auth(&t)
        .header("content-type", "image/png")
        .body(crate::display::CREATIVE_PNG.to_vec());
    let (s, body) = app.send(upload).await;
    assert_eq!(s, 404, "{body}");
    let theirs = campaign(&format!("c3-{globex}"), &globex, 50);
    let (s, body) = post_ads_as(&app, &t, "/campaigns", theirs).await;
    assert_eq!(s, 404, "a campaign for another advertiser's wallet: {body}");
    let (s, body) = post_ads_as(&app, &t, "/campaigns", campaign(&c_globex, &acme, 100)).await;
    assert_eq!(
        (s, &body["error"]["details"]),
        (409, &Value::Null),
        "an id clash shows nothing of theirs: {body}"
    );
    let (_, g) = crate::campaigns::ads_get(&app, &format!("/campaign/{c_globex}")).await;
    assert_eq!(
        (
            g["status"].as_str(),
            g["name"].as_str(),
            g["creative"]["asset_id"].as_str()
        ),
        (Some("active"), Some("Winter sale"), None),
        "{g}"
    );
    let (_, l) = crate::campaigns::ads_get(&app, &format!("/campaigns/{globex}?status=all")).await;
    assert_eq!(l["campaigns"].as_array().map(Vec::len), Some(1), "{l}");

    // Never the serving pool, never money.
    let (s, body) = get_as(&app, &t, &app.ads, "/campaigns").await;
    assert_eq!(s, 404, "the serving pool: {body}");
    for (route, target) in [("deduct", &acme), ("credit", &acme), ("deduct", &globex)] {
        let res = app
            .http
            .post(format!("{}/wallet/{target}/{route}", app.wallet))
            .bearer_auth(&t)
            .header("Idempotency-Key", key())
            .json(&json!({"amount": 1}));
        let (s, body) = app.send(res).await;
        assert_eq!(s, 403, "{route} {target}: {body}");
    }
    assert_eq!(app.balance(&acme).await, 10_000);
    assert_eq!(app.balance(&globex).await, 20_000);
    app.stop().await;
});

conformance!(
    money_scopes_and_reserved_names_are_refused_to_tokens,
    |env| {
        let backends = env.backends().await;
        backends.db.migrate().await.unwrap();
        let u = user();
        for money in ["read,deduct", "credit", "adjust"] {
            let refused = Grant::new(Scopes::parse(money).unwrap(), Accounts::parse(&u).unwrap());
            assert!(refused.is_err(), "{money} on a bound token");
        }
        // billing's charges are keyed in its own namespace: no token may take
        // its name, nor the operator's or the services'.
        for name in ["billing", "operator", "ads-service-x", "display-service"] {
            let e = backends
                .tokens
                .create_token(name, &Scopes::parse("read").unwrap(), "test")
                .await
                .expect_err(name);
            assert!(e.to_string().contains("reserved"), "{name}: {e}");
        }
        // The audit trail records a bound token's accounts, and the list shows them.
        let name = format!("bound-{u}");
        let grant = Grant::new(
            Scopes::parse("campaigns_read").unwrap(),
            Accounts::parse(&u).unwrap(),
        )
        .unwrap();
        backends
            .tokens
            .create_token(&name, grant, "ops")
            .await
            .unwrap();
        let audit = backends.audit.audit_entries(Some(&name), 10).await.unwrap();
        let details: Value = serde_json::from_str(&audit[0].details).unwrap();
        assert_eq!(
            (details["accounts"].as_str(), details["scopes"].as_str()),
            (Some(u.as_str()), Some("campaigns_read"))
        );
        let listed = backends.tokens.list_tokens().await.unwrap();
        let t = listed.iter().find(|t| t.name == name).expect("listed");
        assert_eq!(
            (t.accounts.as_str(), t.scopes.as_str()),
            (u.as_str(), "campaigns_read")
        );
        backends.db.close().await;
    }
);
