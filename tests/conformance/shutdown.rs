//! Graceful shutdown: requests in flight when the signal comes are finished
//! and answered; nothing is applied that was not acknowledged.

use harness::conformance;

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
