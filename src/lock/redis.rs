use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{Lease, LeaseGuard, LockError, UserLocks, backoff};
use crate::domain::UserId;
use crate::platform::redis::RedisHandle;

/// `SET NX PX` and, only if that took, `INCR` of the fencing counter: one round trip.
const ACQUIRE: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
return 0";

/// Deletes the lock only if this owner still holds it.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

/// `lock:user:{userId}` in Redis, with a TTL, owner-only release and a fencing token.
pub struct RedisLocks {
    redis: RedisHandle,
    ttl: Duration,
    wait: Duration,
    acquire: redis::Script,
    release: redis::Script,
}

impl RedisLocks {
    /// Locks that expire after `ttl` and wait at most `wait`.
    pub fn new(redis: RedisHandle, ttl: Duration, wait: Duration) -> Self {
        RedisLocks {
            redis,
            ttl,
            wait,
            acquire: redis::Script::new(ACQUIRE),
            release: redis::Script::new(RELEASE),
        }
    }
}

fn unavailable(e: redis::RedisError) -> LockError {
    LockError::Unavailable(e.to_string())
}

#[async_trait]
impl UserLocks for RedisLocks {
    async fn acquire(&self, user: &UserId) -> Result<Lease, LockError> {
        let key = self.redis.key(&format!("lock:user:{user}"));
        let fence_key = format!("{key}:fence");
        let token = uuid::Uuid::new_v4().to_string();
        let deadline = Instant::now() + self.wait;
        let mut conn = self.redis.conn().await.map_err(unavailable)?;
        for attempt in 0.. {
            let fence: i64 = self
                .acquire
                .key(&key)
                .key(&fence_key)
                .arg(&token)
                .arg(self.ttl.as_millis() as u64)
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?;
            if fence > 0 {
                return Ok(Lease {
                    fence,
                    guard: LeaseGuard::Redis { key, token },
                });
            }
            let pause = backoff(attempt);
            if Instant::now() + pause >= deadline {
                break;
            }
            tokio::time::sleep(pause).await;
        }
        Err(LockError::Timeout)
    }

    async fn release(&self, lease: Lease) {
        let LeaseGuard::Redis { key, token } = lease.guard else {
            return;
        };
        let res = async {
            let mut conn = self.redis.conn().await?;
            self.release
                .key(&key)
                .arg(&token)
                .invoke_async::<i64>(&mut conn)
                .await
        }
        .await;
        if let Err(e) = res {
            // The TTL frees it anyway.
            tracing::warn!(error = %e, %key, "could not release a lock; it will expire");
        }
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}
