//! The per-viewer frequency cap.

use std::time::Duration;

use harness::{App, conformance};

use super::super::campaigns::{ads_post, campaign};
use super::super::user;
use super::*;

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
