//! The campaign cache in Redis (see the port's module for the keys). Each
//! write is one Lua script, so the version check and the change are atomic.
//! The keys of one write live in different hash slots: use a single Redis
//! (or one primary with replicas), not Redis Cluster.

use async_trait::async_trait;
use redis::Script;

use super::{CacheError, CampaignCache, LOADED_TTL_SECS};
use crate::ads::model::{Campaign, Status};
use crate::domain::UserId;
use crate::platform::redis::RedisHandle;

/// Version-guarded write of one campaign's cached state.
const PUT: &str = r"
local cur = tonumber(redis.call('GET', KEYS[2]) or '-1')
local v = tonumber(ARGV[1])
if cur > v or (ARGV[11] ~= '1' and cur == v) then return 0 end
redis.call('SET', KEYS[2], ARGV[1])
if ARGV[2] == '1' then
  redis.call('HSET', KEYS[1], 'version', ARGV[1], 'doc', ARGV[4], 'budget', ARGV[5], 'spent', ARGV[6],
             'status', ARGV[7], 'price', ARGV[8], 'model', ARGV[9], 'min_charge', ARGV[10], 'user_id', ARGV[12])
  redis.call('SADD', KEYS[3], ARGV[3])
  redis.call('SADD', KEYS[4], ARGV[3])
else
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[3], ARGV[3])
  redis.call('SREM', KEYS[4], ARGV[3])
end
return 1";

/// Version-guarded eviction: nothing if the cache holds a newer version.
const EVICT: &str = r"
local cur = tonumber(redis.call('GET', KEYS[4]) or '-1')
if cur > tonumber(ARGV[2]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
return 1";

/// An advertiser's active campaigns, or nil if the list is not marked complete.
const ACTIVE_FOR: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local doc = redis.call('HGET', ARGV[1] .. id, 'doc')
  if doc then table.insert(out, doc) end
end
return out";

/// Version-guarded balance write with a TTL.
const PUT_BALANCE: &str = r"
local cur = tonumber(redis.call('HGET', KEYS[1], 'version') or '-1')
if cur >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'balance', ARGV[1], 'version', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1";

/// The Redis campaign cache.
#[derive(Clone)]
pub struct RedisCampaignCache {
    redis: RedisHandle,
}

fn err(e: redis::RedisError) -> CacheError {
    CacheError(e.to_string())
}

impl RedisCampaignCache {
    /// The cache in `redis` (its key prefix applies).
    pub fn new(redis: RedisHandle) -> RedisCampaignCache {
        RedisCampaignCache { redis }
    }

    fn decode(doc: &str) -> Result<Campaign, CacheError> {
        serde_json::from_str(doc)
            .map_err(|e| CacheError(format!("cached campaign unreadable: {e}")))
    }
}

#[async_trait]
impl CampaignCache for RedisCampaignCache {
    async fn put(&self, c: &Campaign, force: bool) -> Result<bool, CacheError> {
        let mut conn = self.redis.conn().await.map_err(err)?;
        let doc = serde_json::to_string(c).map_err(|e| CacheError(e.to_string()))?;
        let wrote: i64 = Script::new(PUT)
            .key(self.redis.key(&format!("campaign:{}", c.campaign_id)))
            .key(
                self.redis
                    .key(&format!("campaign_version:{}", c.campaign_id)),
            )
            .key(self.redis.key(&format!("campaigns:active:{}", c.user_id)))
            .key(self.redis.key("campaigns:active"))
            .arg(c.version)
            .arg(if c.status == Status::Active { "1" } else { "0" })
            .arg(&c.campaign_id)
            .arg(doc)
            .arg(c.budget.lifetime)
            .arg(c.spent)
            .arg(c.status.as_str())
            .arg(c.pricing.price)
            .arg(
                serde_json::to_string(&c.pricing.model)
                    .unwrap_or_default()
                    .trim_matches('"'),
            )
            .arg(c.min_charge())
            .arg(if force { "1" } else { "0" })
            .arg(&c.user_id)
            .invoke_async(&mut conn)
            .await
            .map_err(err)?;
        Ok(wrote == 1)
    }

    async fn active_for(&self, user: &UserId) -> Result<Option<Vec<Campaign>>, CacheError> {
        let mut conn = self.redis.conn().await.map_err(err)?;
        let docs: Option<Vec<String>> = Script::new(ACTIVE_FOR)
            .key(self.redis.key(&format!("campaigns:loaded:{user}")))
            .key(self.redis.key(&format!("campaigns:active:{user}")))
            .arg(self.redis.key("campaign:"))
            .invoke_async(&mut conn)
            .await
            .map_err(err)?;
        let Some(docs) = docs else { return Ok(None) };
        let mut out = docs
            .iter()
            .map(|d| Self::decode(d))
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_by(|a, b| a.campaign_id.cmp(&b.campaign_id));
        Ok(Some(out))
    }

    async fn mark_loaded(&self, user: &UserId) -> Result<(), CacheError> {
        let mut conn = self.redis.conn().await.map_err(err)?;
        redis::cmd("SET")
            .arg(self.redis.key(&format!("campaigns:loaded:{user}")))
            .arg(1)
            .arg("EX")
            .arg(LOADED_TTL_SECS)
            .query_async::<()>(&mut conn)
            .await
            .map_err(err)
    }

    async fn pool(&self) -> Result<Vec<String>, CacheError> {
        let mut conn = self.redis.conn().await.map_err(err)?;
        redis::cmd("SMEMBERS")
            .arg(self.redis.key("campaigns:active"))
            .query_async(&mut conn)
            .await
            .map_err(err)
    }

    async fn get(&self, id: &str) -> Result<Option<Campaign>, CacheError> {
        let mut conn = self.redis.conn().await.map_err(err)?;
        let doc: Option<String> = redis::cmd("HGET")
            .arg(self.redis.key(&format!("campaign:{id}")))
            .arg("doc")
            .query_async(&mut conn)
            .await
            .map_err(err)?;
        doc.as_deref().map(Self::decode).transpose()
    }

    async fn evict(&self, id: &str, user: &str, up_to_version: i64) -> Result<bool, CacheError> {
        let mut conn = self.redis.conn().await.map_err(err)?;
        let removed: i64 = Script::new(EVICT)
            .key(self.redis.key(&format!("campaign:{id}")))
            .key(self.redis.key(&format!("campaigns:active:{user}")))
            .key(self.redis.key("campaigns:active"))
            .key(self.redis.key(&format!("campaign_version:{id}")))
            .arg(id)
            .arg(up_to_version)
            .invoke_async(&mut conn)
            .await
            .map_err(err)?;
        Ok(removed == 1)
    }

    async fn forget_loaded(&self) -> Result<(), CacheError> {
        let mut conn = self.redis.conn().await.map_err(err)?;
        let pattern = self.redis.key("campaigns:loaded:*");
        // SCAN, not KEYS: never block Redis on a large keyspace.
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(500)
                .query_async(&mut conn)
                .await
                .map_err(err)?;
            if !keys.is_empty() {
                redis::cmd("DEL")
                    .arg(keys)
                    .query_async::<()>(&mut conn)
                    .await
                    .map_err(err)?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }

    async fn put_balance(
        &self,
        user: &UserId,
        balance: i64,
        version: i64,
        ttl_secs: u64,
    ) -> Result<(), CacheError> {
        let mut conn = self.redis.conn().await.map_err(err)?;
        Script::new(PUT_BALANCE)
            .key(self.redis.key(&format!("wallet:balance:{user}")))
            .arg(balance)
            .arg(version)
            .arg(ttl_secs.max(1))
            .invoke_async::<i64>(&mut conn)
            .await
            .map(|_| ())
            .map_err(err)
    }

    async fn balance(&self, user: &UserId) -> Result<Option<i64>, CacheError> {
        let mut conn = self.redis.conn().await.map_err(err)?;
        redis::cmd("HGET")
            .arg(self.redis.key(&format!("wallet:balance:{user}")))
            .arg("balance")
            .query_async(&mut conn)
            .await
            .map_err(err)
    }

    async fn ping(&self) -> Result<(), CacheError> {
        self.redis.ping().await.map_err(err)
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}
