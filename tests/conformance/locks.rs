//! The per-user lock: exclusion, a TTL that frees a dead holder's lock,
//! release only by the owner, and a fencing token that only grows.

use std::time::Duration;

use harness::{Mode, TestEnv};
use walletctl_core::domain::UserId;
use walletctl_core::lock::{LockError, MemoryLocks, RedisLocks, UserLocks};
use walletctl_core::platform::redis::RedisHandle;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_redis_lock_excludes_expires_releases_by_owner_and_fences() {
    let env = TestEnv::new(Mode::Distributed).await;
    let redis = RedisHandle::new(env.config.redis.as_ref().unwrap()).unwrap();
    let locks = RedisLocks::new(
        redis.clone(),
        Duration::from_millis(400),
        Duration::from_millis(100),
    );
    let (u, v) = (
        UserId::parse("lock-u").unwrap(),
        UserId::parse("lock-v").unwrap(),
    );

    let a = locks.acquire(&u).await.unwrap();
    let mut conn = redis.conn().await.unwrap();
    let holder: Option<String> = redis::cmd("GET")
        .arg(redis.key("lock:user:lock-u"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        holder.is_some(),
        "the lock lives at {{prefix}}lock:user:{{userId}}"
    );
    assert!(
        matches!(locks.acquire(&u).await, Err(LockError::Timeout)),
        "held: a second caller waits, then gives up"
    );
    let other = locks
        .acquire(&v)
        .await
        .expect("another user's lock is independent");
    locks.release(other).await;

    // The holder "dies": the TTL frees the lock, with a larger fence.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let b = locks
        .acquire(&u)
        .await
        .expect("the TTL freed a dead holder's lock");
    assert!(
        b.fence > a.fence,
        "fences grow: {} then {}",
        a.fence,
        b.fence
    );
    let b_fence = b.fence;

    // The old holder wakes up and releases: that must not free b's lock.
    locks.release(a).await;
    assert!(
        matches!(locks.acquire(&u).await, Err(LockError::Timeout)),
        "only the owner releases"
    );
    locks.release(b).await;
    let c = locks.acquire(&u).await.expect("released by its owner");
    assert!(c.fence > b_fence);
    locks.release(c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_lock_with_redis_down_says_unavailable() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config = walletctl_core::config::RedisConfig {
        url: walletctl_core::config::SecretUrl::new(format!("redis://{dead}")),
        key_prefix: String::new(),
    };
    let locks = RedisLocks::new(
        RedisHandle::new(&config).unwrap(),
        Duration::from_secs(1),
        Duration::from_secs(1),
    );
    let res = locks.acquire(&UserId::parse("x").unwrap()).await;
    assert!(
        matches!(res, Err(LockError::Unavailable(_))),
        "{:?}",
        res.err()
    );
}

#[tokio::test]
async fn the_in_process_lock_excludes_and_fences() {
    let locks = MemoryLocks::new(Duration::from_millis(50));
    let u = UserId::parse("m").unwrap();
    let a = locks.acquire(&u).await.unwrap();
    assert!(matches!(locks.acquire(&u).await, Err(LockError::Timeout)));
    let a_fence = a.fence;
    locks.release(a).await;
    let b = locks.acquire(&u).await.unwrap();
    assert!(b.fence > a_fence);
    locks.release(b).await;
}
