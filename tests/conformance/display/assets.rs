//! Uploaded assets served immutable through the CDN base.

use futures::future::join_all;
use harness::{App, conformance};

use super::super::campaigns::{ads_get, ads_post, campaign};
use super::super::user;
use super::*;

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

conformance!(concurrent_uploads_of_one_image_keep_it_whole, |env| {
    let backends = env.backends().await;
    backends.campaigns.migrate().await.unwrap();
    let app = env.spawn().await;
    for round in 0..6u8 {
        // A distinct image each round, large enough to span several GridFS
        // chunks (bytes after a PNG's end are ignored by viewers).
        let mut bytes = CREATIVE_PNG.to_vec();
        bytes.extend(std::iter::repeat_n(round, 700 * 1024));
        bytes.extend(uuid::Uuid::new_v4().as_bytes());
        let asset =
            walletctl_core::ads::assets::Asset::parse(Some("image/png"), bytes.clone()).unwrap();
        let uploads: Vec<_> = (0..8)
            .map(|_| {
                let (store, asset) = (backends.campaigns.clone(), asset.clone());
                tokio::spawn(async move { store.put_asset(&asset).await })
            })
            .collect();
        for u in join_all(uploads).await {
            u.unwrap()
                .expect("every concurrent upload of the same bytes succeeds");
        }
        let stored = backends.campaigns.get_asset(&asset.id).await.unwrap();
        let stored = stored.unwrap_or_else(|| panic!("round {round}: the asset is gone"));
        assert!(
            stored.bytes == bytes,
            "round {round}: {} of {} bytes kept",
            stored.bytes.len(),
            bytes.len()
        );
        let served = app
            .http
            .get(format!("{}/assets/{}", app.display, asset.id))
            .send()
            .await
            .unwrap();
        assert_eq!(served.status().as_u16(), 200, "round {round}");
        assert!(
            served.bytes().await.unwrap().as_ref() == bytes.as_slice(),
            "round {round}: served whole"
        );
    }
    app.stop().await;
});
