use harness::conformance;

conformance!(every_service_is_live_ready_and_measured, |env| {
    let app = env.spawn().await;
    for base in [&app.wallet, &app.ads, &app.display] {
        let (s, b) = app.send(app.http.get(format!("{base}/healthz"))).await;
        assert_eq!((s, b["status"].as_str()), (200, Some("ok")), "{base}");
        // Ready once its backends answer: the first probes of cold pools and
        // clients on a loaded machine can miss their 1 s deadline (ready
        // then reads not_ready or degraded), so poll as a load balancer does
        // (an answer is kept for 1 s).
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        let (s, b) = loop {
            let (s, b) = app.send(app.http.get(format!("{base}/readyz"))).await;
            if (s == 200 && b["status"] == "ready") || tokio::time::Instant::now() > deadline {
                break (s, b);
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        };
        assert_eq!(s, 200, "{base}/readyz: {b}");
        assert_eq!(b["status"], "ready", "{b}");
        assert!(b["checks"].as_array().is_some_and(|c| !c.is_empty()), "{b}");
    }
    let text = app.metrics().await;
    assert!(text.contains("http_requests_total"), "metrics: {text}");
    assert!(text.contains("service=\"wallet\""), "metrics: {text}");
    let (s, doc) = app.get("/openapi.json").await;
    assert_eq!(s, 200);
    assert!(
        doc["paths"]["/wallet/{user_id}/deduct"]["post"].is_object(),
        "{doc}"
    );
    let (s, b) = app.get("/no/such/route").await;
    assert_eq!((s, b["error"]["code"].as_str()), (404, Some("not_found")));
    app.stop().await;
});

conformance!(
    metrics_are_not_for_anonymous_callers_on_service_ports,
    |env| {
        let app = env.spawn().await;
        // Money totals are among the series: the public ports keep them.
        app.wallet_with(&crate::user(), "SOUTH_EAST", 100).await;
        for base in [&app.wallet, &app.ads, &app.display] {
            let res = app
                .http
                .get(format!("{base}/metrics"))
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let text = res.text().await.unwrap();
            assert_eq!(status, 401, "{base}/metrics anonymously: {text}");
            assert!(!text.contains("wallet_money_moves_total"), "{base}: {text}");
        }
        // A token without the metrics scope is refused; one with it reads them.
        let env_tokens = env.backends().await.tokens;
        let scopes = |s: &str| walletctl_core::platform::auth::Scopes::parse(s).unwrap();
        let reader = env_tokens
            .create_token("no-metrics", &scopes("read"), "test")
            .await
            .unwrap();
        let scraper = env_tokens
            .create_token("scraper", &scopes("metrics"), "test")
            .await
            .unwrap();
        let get = |base: &str, token: &str| {
            app.http
                .get(format!("{base}/metrics"))
                .bearer_auth(token.to_owned())
                .send()
        };
        assert_eq!(
            get(&app.display, &reader.secret)
                .await
                .unwrap()
                .status()
                .as_u16(),
            403
        );
        let res = get(&app.display, &scraper.secret).await.unwrap();
        assert_eq!(res.status().as_u16(), 200);
        assert!(
            res.text()
                .await
                .unwrap()
                .contains("wallet_money_moves_total")
        );
        // The admin listener (loopback by default) needs no token.
        let admin = app
            .http
            .get(format!("{}/metrics", app.admin))
            .send()
            .await
            .unwrap();
        assert_eq!(admin.status().as_u16(), 200);
        assert!(admin.text().await.unwrap().contains("http_requests_total"));
        app.stop().await;
    }
);
