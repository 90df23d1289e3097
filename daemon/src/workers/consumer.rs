//! The loop every consumer runs: join a consumer group, apply each message
//! (retrying a failing one, with backoff, before the next, so a key's
//! events are never applied out of order), and commit its offset only once
//! it is applied. There is no polling: the loop waits on the log.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use walletctl_core::events::{EventLog, Message};

/// Consumes `topic` in `group` until `stop`, applying each message with
/// `handle` (`Err` for what a retry can fix).
pub async fn consume<F, Fut>(
    events: &dyn EventLog,
    stop: &CancellationToken,
    group: &str,
    topic: &'static str,
    mut handle: F,
) where
    F: FnMut(Message) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    consume_batches(events, stop, group, topic, 1, |mut batch| {
        handle(batch.pop().expect("a batch of one"))
    })
    .await
}

/// [`consume`], applying up to `max` messages at a time: the first waits,
/// the rest are those already delivered. Messages keep their order within
/// a batch, and a failing batch is retried whole before the next.
pub async fn consume_batches<F, Fut>(
    events: &dyn EventLog,
    stop: &CancellationToken,
    group: &str,
    topic: &'static str,
    max: usize,
    mut handle: F,
) where
    F: FnMut(Vec<Message>) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut failures: u32 = 0;
    while !stop.is_cancelled() {
        // Topics are not created on demand (Kafka here, tansu): make sure they exist.
        let sub = match events.ensure_topics().await {
            Ok(()) => events.subscribe(group, topic).await,
            Err(e) => Err(e),
        };
        let mut sub = match sub {
            Ok(sub) => sub,
            Err(e) => {
                tracing::warn!(error = %e, topic, "cannot join the consumer group yet");
                if pause(stop, &mut failures).await {
                    return;
                }
                continue;
            }
        };
        loop {
            let message = tokio::select! {
                _ = stop.cancelled() => return,
                m = sub.next() => m,
            };
            let message = match message {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, topic, "reading failed; rejoining");
                    break;
                }
            };
            let mut batch = vec![message];
            while batch.len() < max {
                match tokio::time::timeout(Duration::from_millis(1), sub.next()).await {
                    Ok(Ok(m)) => batch.push(m),
                    _ => break, // nothing more delivered yet (or an error the next read meets)
                }
            }
            // The same batch until it is applied: a key's later events wait for it.
            loop {
                let span = tracing::info_span!(
                    "consume",
                    topic,
                    partition = batch[0].partition,
                    offset = batch[0].offset,
                    messages = batch.len()
                );
                match handle(batch.clone()).instrument(span).await {
                    Ok(()) => {
                        failures = 0;
                        break;
                    }
                    Err(e) => {
                        metrics::counter!("consumer_retries_total", "topic" => topic).increment(1);
                        tracing::warn!(error = %e, topic, offset = batch[0].offset, "applying failed; retrying");
                        if pause(stop, &mut failures).await {
                            return;
                        }
                    }
                }
            }
            // The last message of each partition carries the batch's offsets.
            let mut last: Vec<&Message> = Vec::new();
            for m in batch.iter().rev() {
                if !last.iter().any(|l| l.partition == m.partition) {
                    last.push(m);
                }
            }
            for m in last {
                if let Err(e) = sub.commit(m).await {
                    // Not fatal: the effect is stored, and a redelivery is recognised.
                    tracing::warn!(error = %e, topic, "committing the offset failed");
                }
            }
        }
        if pause(stop, &mut failures).await {
            return;
        }
    }
}

/// Waits a growing while (at most 5 s); `true` if stopped meanwhile.
async fn pause(stop: &CancellationToken, failures: &mut u32) -> bool {
    *failures = failures.saturating_add(1);
    let wait = (Duration::from_millis(100) * 2u32.saturating_pow((*failures).min(6)))
        .min(Duration::from_secs(5));
    tokio::select! {
        _ = stop.cancelled() => true,
        _ = tokio::time::sleep(wait) => false,
    }
}
