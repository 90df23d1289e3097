//! Background loops that run beside the HTTP services, one file per loop.

pub mod balance_updated;
pub mod billing;
pub mod campaign_cache;
pub mod campaign_created;
pub mod campaign_status;
pub mod consumer;
pub mod gc;
pub mod outbox_relay;
pub mod reconcile;

/// Runs `job` every `every` until `stop`, the first time after a random
/// part of it, so that instances started together spread out.
pub async fn on_schedule<F, Fut>(
    every: std::time::Duration,
    stop: &tokio_util::sync::CancellationToken,
    mut job: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut wait = every.mul_f64(rand::random_range(0.0..1.0));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = every;
        job().await;
    }
}
