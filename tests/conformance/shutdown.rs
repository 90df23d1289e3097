//! Graceful shutdown: requests in flight when the signal comes are finished
//! and answered; nothing is applied that was not acknowledged.

use harness::{App, conformance};

use super::{amount, key, user};

conformance!(shutdown_finishes_in_flight_requests, |env| {
    let app = env.spawn().await;
    let u = user();
    app.wallet_with(&u, "SOUTH_EAST", 1_000).await;
    let (http, base, token) = (app.http.clone(), app.wallet.clone(), app.token.clone());
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let (http, url, token) = (
                http.clone(),
                format!("{base}/wallet/{u}/deduct"),
                token.clone(),
            );
            tokio::spawn(async move {
                let res = http
                    .post(url)
                    .bearer_auth(token)
                    .header("Idempotency-Key", key())
                    .json(&amount(1))
                    .send()
                    .await;
                match res {
                    Ok(r) => Some(r.status().as_u16()),
                    Err(_) => None, // not accepted: the listener had closed
                }
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    app.stop().await; // returns once serve has drained
    let mut acknowledged = 0;
    for t in tasks {
        match t.await.unwrap() {
            Some(200) => acknowledged += 1,
            Some(other) => panic!("an in-flight request got {other}"),
            None => {}
        }
    }
    let again = env.spawn().await;
    assert_eq!(
        again.balance(&u).await,
        1_000 - acknowledged,
        "exactly the acknowledged deductions were applied"
    );
    again.stop().await;
});

// A request the server has accepted and is still reading when shutdown
// begins is finished and answered, and applied exactly once: its body is
// sent in two halves, the second only after the listener has closed.
conformance!(shutdown_answers_a_request_it_is_still_reading, |env| {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = env.spawn().await;
    let u = user();
    app.wallet_with(&u, "SOUTH_EAST", 1_000).await;
    let addr = app.wallet.trim_start_matches("http://").to_owned();
    let body = br#"{"amount": 1}"#;
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /wallet/{u}/deduct HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nIdempotency-Key: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        app.token,
        key(),
        body.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(&body[..5]).await.unwrap();
    // Wait until the server holds it (the admin listener's /metrics is not a wallet request).
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let metrics = app.metrics().await;
        let in_flight = metrics
            .lines()
            .find(|l| l.starts_with("http_requests_in_flight{service=\"wallet\"}"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        if in_flight >= 1.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the request never reached the server"
        );
        tokio::task::yield_now().await;
    }
    let stopping = tokio::spawn(app.stop());
    // Shutdown has begun once the listener refuses new connections.
    while tokio::net::TcpStream::connect(&addr).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the listener never closed"
        );
        tokio::task::yield_now().await;
    }
    tcp.write_all(&body[5..]).await.unwrap();
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "the in-flight request was answered: {answer}"
    );
    stopping.await.unwrap();
    let again = env.spawn().await;
    assert_eq!(again.balance(&u).await, 999, "applied exactly once");
    again.stop().await;
});

/// `base`'s `/readyz` answer once it is a 503, or its last answer after about
/// two seconds: the stop signal reaches serve's stop task in a moment, not at
/// once.
async fn readyz_once_stopping(app: &App, base: &str) -> (u16, serde_json::Value) {
    let mut answer = (0, serde_json::Value::Null);
    for _ in 0..200 {
        answer = app.send(app.http.get(format!("{base}/readyz"))).await;
        if answer.0 == 503 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    answer
}

// On the stop signal `/readyz` answers `503 stopping` at once, so a load
// balancer takes the instance out, while the API still answers for
// `listen.drain_ms`; then serve stops. (The drain is long so that the
// checks below always fall inside it; stop() waits it out.)
conformance!(
    a_stopping_instance_says_so_and_keeps_answering_while_it_drains,
    |env| {
        let mut env = env;
        env.config.listen.drain_ms = 8_000;
        let mut app = env.spawn().await;
        let u = user();
        app.wallet_with(&u, "SOUTH_EAST", 500).await;
        let (s, b) = app
            .send(app.http.get(format!("{}/readyz", app.wallet)))
            .await;
        assert_eq!((s, b["status"].as_str()), (200, Some("ready")), "{b}");
        app.signal_stop();
        for base in [app.wallet.clone(), app.ads.clone(), app.display.clone()] {
            let (s, b) = readyz_once_stopping(&app, &base).await;
            assert_eq!(
                (s, b["status"].as_str()),
                (503, Some("stopping")),
                "{base}: {b}"
            );
        }
        assert_eq!(
            app.balance(&u).await,
            500,
            "reads still answered while draining"
        );
        let (s, b) = app
            .post(&format!("/wallet/{u}/deduct"), amount(7), Some(&key()))
            .await;
        assert_eq!(s, 200, "deductions still answered while draining: {b}");
        let (s, b) = app
            .send(app.http.get(format!("{}/healthz", app.wallet)))
            .await;
        assert_eq!(
            (s, b["status"].as_str()),
            (200, Some("ok")),
            "still live: {b}"
        );
        let wallet = app.wallet.clone();
        app.stop().await;
        assert!(
            reqwest::get(format!("{wallet}/healthz")).await.is_err(),
            "after the drain the listener is closed"
        );
        let again = env.spawn().await;
        assert_eq!(
            again.balance(&u).await,
            493,
            "the drained deduction was applied once"
        );
        again.stop().await;
    }
);

// An operator who does not want to wait: a second stop signal ends the
// drain at once, and serve stops (gracefully) without waiting out
// `listen.drain_ms`, here an hour.
conformance!(a_second_stop_signal_cuts_the_drain_short, |env| {
    let mut env = env;
    env.config.listen.drain_ms = 3_600_000;
    let mut app = env.spawn().await;
    let u = user();
    app.wallet_with(&u, "SOUTH_EAST", 500).await;
    app.signal_stop();
    let (status, _) = readyz_once_stopping(&app, &app.wallet).await;
    assert_eq!(status, 503, "the first signal starts the drain");
    assert_eq!(app.balance(&u).await, 500, "still answering while draining");
    app.signal_stop();
    let wallet = app.wallet.clone();
    // Generous: without the second signal this would wait an hour.
    tokio::time::timeout(std::time::Duration::from_secs(120), app.stopped())
        .await
        .expect("the second signal ended the drain and serve stopped");
    assert!(
        reqwest::get(format!("{wallet}/healthz")).await.is_err(),
        "the listener is closed"
    );
});
