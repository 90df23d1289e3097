use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use harness::proxy::{Proxy, url_addr};
use harness::{App, Mode, TestEnv, conformance};
use walletctl_core::config::SecretUrl;
use walletctl_core::domain::UserId;

use super::{amount, key, user};

const TASKS: usize = 50;
const START: i64 = 1_000;

/// `TASKS` tasks deduct 1 at a time, spread over `apps`, until refused.
/// Returns (successes, refusals); panics on any other answer.
async fn race(
    apps: &[Arc<App>],
    u: &str,
    after_each: Option<Arc<dyn Fn(usize) + Send + Sync>>,
) -> (usize, usize) {
    let ok = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| {
            let app = apps[i % apps.len()].clone();
            let (u, ok, refused, hook) = (
                u.to_owned(),
                ok.clone(),
                refused.clone(),
                after_each.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let (s, b) = app
                        .post(&format!("/wallet/{u}/deduct"), amount(1), Some(&key()))
                        .await;
                    match s {
                        200 => {
                            let n = ok.fetch_add(1, Ordering::SeqCst) + 1;
                            if let Some(h) = &hook {
                                h(n);
                            }
                        }
                        409 => {
                            assert_eq!(b["error"]["code"], "insufficient_funds", "{b}");
                            refused.fetch_add(1, Ordering::SeqCst);
                            break;
                        }
                        other => panic!("unexpected {other}: {b}"),
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    (ok.load(Ordering::SeqCst), refused.load(Ordering::SeqCst))
}

async fn assert_drained(env: &TestEnv, app: &App, u: &str) {
    assert_eq!(app.balance(u).await, 0);
    let (sum, balance) = env
        .backends()
        .await
        .wallets
        .ledger_sum(&UserId::parse(u).unwrap())
        .await
        .unwrap();
    assert_eq!((sum, balance), (0, 0), "the ledger sums to the balance");
}

conformance!(fifty_tasks_never_overdraw_one_wallet, |env| {
    let app = Arc::new(env.spawn().await);
    let u = user();
    app.wallet_with(&u, "SOUTH_EAST", START).await;
    let (ok, refused) = race(std::slice::from_ref(&app), &u, None).await;
    assert_eq!((ok, refused), (START as usize, TASKS));
    assert_drained(&env, &app, &u).await;
});

/// Two instances race one wallet of `region` dry; gives back one of them
/// and the user.
async fn two_instances_drain(env: &TestEnv, region: &str) -> (Arc<App>, String) {
    let a = Arc::new(env.spawn().await);
    let b = Arc::new(App::start(env.config.clone()).await);
    let u = user();
    a.wallet_with(&u, region, START).await;
    let (ok, refused) = race(&[a.clone(), b.clone()], &u, None).await;
    assert_eq!((ok, refused), (START as usize, TASKS));
    assert_drained(env, &b, &u).await;
    (a, u)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_one_stack_never_overdraw() {
    let env = TestEnv::new(Mode::Distributed).await;
    two_instances_drain(&env, "SOUTH_WEST").await;
}

/// Group commits on sessions of the primary itself (`postgres.commit_url`):
/// each group commits as its call returns, and two instances still never
/// overdraw.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_committing_on_primary_sessions_never_overdraw() {
    let mut env = TestEnv::new(Mode::Distributed).await;
    env.commit_on_primary_sessions();
    let (a, u) = two_instances_drain(&env, "SOUTH_EAST").await;
    // Read-your-writes on the synchronous standby: the function's
    // remote_apply held for the implicit transaction too.
    let (s, d) = a
        .post(&format!("/wallet/{u}/credit"), amount(7), Some(&key()))
        .await;
    assert_eq!(s, 200, "{d}");
    let (_, r) = a.get(&format!("/wallet/{u}/balance")).await;
    assert_eq!(r["source"], "replica:se1");
    assert_eq!(
        r["balance"], 7,
        "a read after the commit on se1 was stale: {r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_dying_mid_run_neither_overdraws_nor_stops_service() {
    let mut env = TestEnv::new(Mode::Distributed).await;
    let redis = env.config.redis.as_mut().expect("the stack has Redis");
    let upstream = url_addr(redis.url.expose());
    let proxy = Arc::new(Proxy::start(upstream).await);
    redis.url = SecretUrl::new(proxy.rewrite(redis.url.expose(), upstream));
    let app = Arc::new(env.spawn().await);
    let u = user();
    app.wallet_with(&u, "SOUTH_EAST", START).await;
    let p = proxy.clone();
    let cut_at_300: Arc<dyn Fn(usize) + Send + Sync> = Arc::new(move |n| {
        if n == 300 {
            p.cut();
        }
    });
    let (ok, refused) = race(std::slice::from_ref(&app), &u, Some(cut_at_300)).await;
    assert_eq!((ok, refused), (START as usize, TASKS));
    assert_drained(&env, &app, &u).await;
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("wallet_lock_bypassed_total"),
        "the bypass is counted"
    );
}
