use harness::conformance;

conformance!(every_service_is_live_ready_and_measured, |env| {
    let app = env.spawn().await;
    for base in [&app.wallet, &app.ads, &app.display] {
        let (s, b) = app.send(app.http.get(format!("{base}/healthz"))).await;
        assert_eq!((s, b["status"].as_str()), (200, Some("ok")), "{base}");
        let (s, b) = app.send(app.http.get(format!("{base}/readyz"))).await;
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
