//! Read coalescing: concurrent point reads that go to the same places (the
//! same replicas, in the same order) wait while one query for that lane is
//! in flight, then are answered together by the next query, one
//! `… WHERE key = ANY($1)` for all of them. This is group commit for reads:
//! PostgreSQL parses, plans and answers one statement instead of dozens, and
//! each read still starts after its request arrived and is answered from
//! the database, never from a cache. A lone read waits for no timer, only
//! for the tasks already runnable (see `wallet::store::reads`).
//!
//! This module holds only the queue: who waits in which lane, and who leads.
//! The caller (the wallet store) runs the query.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::oneshot;

use super::StoreError;

/// The most keys one coalesced query asks for.
pub(crate) const MAX_READ_BATCH: usize = 512;

/// A lane: reads bound for the same places, named by their replica indexes
/// in order (`None` is the primary).
pub(crate) type LaneKey = Vec<Option<usize>>;

/// What a read is answered with: the row, if any, and the node that answered.
pub(crate) type ReadAnswer<R> = Result<(Option<R>, String), StoreError>;

pub(crate) struct Waiter<R> {
    pub(crate) key: String,
    pub(crate) reply: oneshot::Sender<ReadAnswer<R>>,
}

struct Lane<R> {
    waiting: Vec<Waiter<R>>,
    leading: bool,
}

/// The lanes of one kind of read.
pub(crate) struct Lanes<R> {
    lanes: Mutex<HashMap<LaneKey, Lane<R>>>,
}

impl<R> Default for Lanes<R> {
    fn default() -> Self {
        Lanes {
            lanes: Mutex::new(HashMap::new()),
        }
    }
}

impl<R> Lanes<R> {
    /// Queues a read; true if the caller must start a leader for the lane
    /// (nobody leads it now).
    pub(crate) fn join(&self, lane: &LaneKey, waiter: Waiter<R>) -> bool {
        let mut lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        let l = lanes.entry(lane.clone()).or_insert_with(|| Lane {
            waiting: Vec::new(),
            leading: false,
        });
        l.waiting.push(waiter);
        !std::mem::replace(&mut l.leading, true)
    }

    /// The next reads for the leader of `lane`, up to [`MAX_READ_BATCH`];
    /// empty (and the lane left without a leader) when none wait.
    pub(crate) fn take(&self, lane: &LaneKey) -> Vec<Waiter<R>> {
        let mut lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        let Some(l) = lanes.get_mut(lane) else {
            return Vec::new();
        };
        if l.waiting.is_empty() {
            lanes.remove(lane);
            return Vec::new();
        }
        let n = l.waiting.len().min(MAX_READ_BATCH);
        l.waiting.drain(..n).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiter(key: &str) -> (Waiter<u8>, oneshot::Receiver<ReadAnswer<u8>>) {
        let (reply, rx) = oneshot::channel();
        (
            Waiter {
                key: key.into(),
                reply,
            },
            rx,
        )
    }

    #[test]
    fn the_first_read_of_an_idle_lane_leads_and_the_rest_wait_for_it() {
        let lanes = Lanes::<u8>::default();
        let (a, b) = (vec![Some(0)], vec![Some(1), None]);
        assert!(lanes.join(&a, waiter("u1").0), "an idle lane: lead");
        assert!(!lanes.join(&a, waiter("u2").0), "led already: wait");
        assert!(lanes.join(&b, waiter("u3").0), "another lane leads itself");
        let keys: Vec<String> = lanes.take(&a).into_iter().map(|w| w.key).collect();
        assert_eq!(keys, ["u1", "u2"]);
        assert!(
            !lanes.join(&a, waiter("u4").0),
            "still led while the query runs"
        );
        assert_eq!(lanes.take(&a).len(), 1);
        assert!(lanes.take(&a).is_empty(), "nothing waits: the leader stops");
        assert!(
            lanes.join(&a, waiter("u5").0),
            "and the next read leads again"
        );
    }

    #[test]
    fn a_query_asks_for_at_most_max_read_batch_keys() {
        let lanes = Lanes::<u8>::default();
        let lane = vec![None];
        for i in 0..MAX_READ_BATCH + 1 {
            lanes.join(&lane, waiter(&format!("u{i}")).0);
        }
        assert_eq!(lanes.take(&lane).len(), MAX_READ_BATCH);
        assert_eq!(lanes.take(&lane).len(), 1);
    }
}
