//! The signed impression and click tokens: refused when forged, expired or
//! malformed; still valid across a key rotation.

use std::time::Duration;

use harness::{App, conformance};
use serde_json::Value;

use super::super::campaigns::{ads_post, campaign};
use super::super::user;
use super::*;

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
