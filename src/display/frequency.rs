//! The per-viewer frequency cap: at most N ads of one campaign per viewer
//! per window. Counted in Redis (`freq:{viewer}:{campaign}`, expiring with
//! the window) so every display instance sees the same count, or in process
//! memory in the embedded default. A cap is not money: if Redis cannot
//! answer, ads are served uncapped rather than not at all.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::platform::redis::RedisHandle;

/// The cap and its counters. Cheap to clone.
#[derive(Clone)]
pub struct FrequencyCap {
    max: u32,
    window: Duration,
    counts: Counts,
}

#[derive(Clone)]
enum Counts {
    Redis(RedisHandle),
    Memory(moka::sync::Cache<(String, String), Arc<AtomicU32>>),
}

impl FrequencyCap {
    /// At most `max` ads per viewer and campaign per `window`.
    pub fn new(max: u32, window: Duration, redis: Option<RedisHandle>) -> FrequencyCap {
        let counts = match redis {
            Some(r) => Counts::Redis(r),
            None => Counts::Memory(
                moka::sync::Cache::builder()
                    .max_capacity(1_000_000)
                    .time_to_live(window)
                    .build(),
            ),
        };
        FrequencyCap {
            max,
            window,
            counts,
        }
    }

    fn key(viewer: &str, campaign: &str) -> String {
        format!("freq:{viewer}:{campaign}")
    }

    /// Of `campaigns`, those `viewer` has seen fewer than the cap times.
    pub async fn allowed(&self, viewer: &str, campaigns: &[&str]) -> Vec<bool> {
        match &self.counts {
            Counts::Memory(m) => campaigns
                .iter()
                .map(|c| {
                    m.get(&(viewer.to_owned(), (*c).to_owned()))
                        .is_none_or(|n| n.load(Ordering::Relaxed) < self.max)
                })
                .collect(),
            Counts::Redis(r) => {
                if campaigns.is_empty() {
                    return Vec::new();
                }
                let keys: Vec<String> = campaigns
                    .iter()
                    .map(|c| r.key(&Self::key(viewer, c)))
                    .collect();
                let counts: Result<Vec<Option<u32>>, _> = async {
                    let mut conn = r.conn().await?;
                    redis::cmd("MGET").arg(&keys).query_async(&mut conn).await
                }
                .await;
                match counts {
                    Ok(counts) => counts
                        .into_iter()
                        .map(|n| n.unwrap_or(0) < self.max)
                        .collect(),
                    Err(e) => {
                        metrics::counter!("display_frequency_cap_failures_total").increment(1);
                        tracing::debug!(error = %e, "frequency cap unreadable; serving uncapped");
                        vec![true; campaigns.len()]
                    }
                }
            }
        }
    }

    /// Counts one ad of `campaign` shown to `viewer`.
    pub async fn record(&self, viewer: &str, campaign: &str) {
        match &self.counts {
            Counts::Memory(m) => {
                m.get_with((viewer.to_owned(), campaign.to_owned()), Default::default)
                    .fetch_add(1, Ordering::Relaxed);
            }
            Counts::Redis(r) => {
                let key = r.key(&Self::key(viewer, campaign));
                let secs = self.window.as_secs().max(1);
                let done: Result<(), redis::RedisError> = async {
                    let mut conn = r.conn().await?;
                    // The window starts with the first ad: NX keeps it from sliding.
                    redis::pipe()
                        .incr(&key, 1)
                        .ignore()
                        .cmd("EXPIRE")
                        .arg(&key)
                        .arg(secs)
                        .arg("NX")
                        .ignore()
                        .query_async(&mut conn)
                        .await
                }
                .await;
                if let Err(e) = done {
                    metrics::counter!("display_frequency_cap_failures_total").increment(1);
                    tracing::debug!(error = %e, "frequency cap not counted");
                }
            }
        }
    }
}
