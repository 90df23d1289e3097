//! The differential test: the same random sequences of money commands go to
//! the SQLite adapter (the rules in Rust, `wallet/rules.rs`) and to the
//! PostgreSQL adapter (the same rules in PL/pgSQL, `walletctl_apply_group`,
//! migration 0009),
//! and everything they produce is compared field by field: every answer, the
//! ledger rows (lock fence included), the outbox payloads (decoded strictly:
//! exactly the expected fields), the audit rows, the stored answers and the
//! wallets. Times and generated event ids are the only fields left out.
//!
//! A third of the rounds are group commits: several users' batches in one
//! transaction (`WalletStore::apply_group`).
//!
//! The sequences mix deductions, credits and adjustments; amounts that hit
//! zero and the balance limit; keys repeated inside one batch and across
//! batches, reused with another body, and shared by two callers; and a
//! wallet that does not exist. Each failure names its seed. Eight seeds run
//! by default; `DIFFERENTIAL_SEEDS=500` runs more.

use std::collections::BTreeSet;

use harness::{Mode, TestEnv};
use serde_json::Value;
use walletctl_core::Backends;
use walletctl_core::domain::{IdempotencyKey, MAX_BALANCE, Region, UserId};
use walletctl_core::platform::sql::StoreError;
use walletctl_core::wallet::{EntryKind, MoneyCommand, Outcome, StoredAnswer};

/// A small, seeded generator (SplitMix64): the same seed, the same sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const USERS: [&str; 3] = ["dalice", "dbob", "dcarol"];
const UNKNOWN: &str = "dnobody";
const ACTORS: [&str; 2] = ["shop-a", "shop-b"];

fn command(rng: &mut Rng, user: &str) -> MoneyCommand {
    let kind = *rng.pick(&[EntryKind::Deduct, EntryKind::Credit, EntryKind::Adjust]);
    let magnitude = *rng.pick(&[1, 7, 100, 2_500, 10_000, MAX_BALANCE / 2, MAX_BALANCE]);
    let delta = match kind {
        EntryKind::Deduct => -magnitude,
        EntryKind::Credit => magnitude,
        _ if rng.below(2) == 0 => -magnitude,
        _ => magnitude,
    };
    let reason = match (kind, rng.below(3)) {
        (EntryKind::Adjust, _) => Some(format!("fix {}", rng.below(3))),
        (_, 0) => None,
        (_, n) => Some(format!("r{n}")),
    };
    MoneyCommand {
        user: UserId::parse(user).unwrap(),
        kind,
        delta,
        reason,
        reference: rng.pick(&[None, Some("order-1".to_owned())]).clone(),
        // A small pool of keys, so that repeats and reuses happen.
        key: IdempotencyKey::parse(&format!("k{}", rng.below(12))).unwrap(),
        actor: (*rng.pick(&ACTORS)).to_owned(),
        fence: rng.pick(&[None, Some(7), Some(8)]).to_owned(),
    }
}

/// An answer with its times left out, comparable across engines.
fn comparable(r: &Result<Outcome, StoreError>) -> String {
    match r {
        Ok(o) => {
            let result = o.result.clone().map(|mut e| {
                e.created_at_ms = 0;
                e
            });
            format!("replayed={} {result:?}", o.replayed)
        }
        Err(StoreError::NotFound("wallet")) => "wallet_not_found".into(),
        Err(StoreError::IdempotencyKeyReused) => "idempotency_key_reused".into(),
        Err(e) => panic!("an engine failed: {e}"),
    }
}

type LedgerRow = (
    i64,
    String,
    String,
    i64,
    i64,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    Option<i64>,
);

/// Everything an engine wrote, times and generated ids left out.
#[derive(Debug, PartialEq)]
struct Written {
    ledger: Vec<LedgerRow>,
    outbox: Vec<(String, String, Value)>,
    audit: Vec<(String, String, String, Value)>,
    keys: Vec<(String, String, String, i64, String)>,
    wallets: Vec<(String, String, i64, i64)>,
}

const LEDGER: &str = "SELECT id, user_id, kind, amount, balance_after, version, reason, reference, idempotency_key, actor, lock_fence FROM ledger_entries ORDER BY id";
const OUTBOX: &str = "SELECT topic, key, payload FROM outbox ORDER BY id";
const AUDIT: &str =
    "SELECT actor, action, target, details FROM audit_log WHERE action LIKE 'wallet.%' ORDER BY id";
const KEYS: &str =
    "SELECT owner, key, request_hash, status, response FROM idempotency_keys ORDER BY owner, key";
const WALLETS: &str = "SELECT user_id, region, balance, version FROM wallets ORDER BY user_id";

/// The fields a `balance_updated` payload must have: no more, no fewer.
const EVENT_FIELDS: [&str; 10] = [
    "balance",
    "delta",
    "entry_id",
    "entry_kind",
    "event_id",
    "occurred_at_ms",
    "region",
    "type",
    "user_id",
    "version",
];

fn strict_event(payload: &str) -> Value {
    let mut v: Value = serde_json::from_str(payload).expect("the payload is JSON");
    let fields: BTreeSet<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let expected: BTreeSet<&str> = EVENT_FIELDS.into_iter().collect();
    assert_eq!(
        fields, expected,
        "balance_updated has exactly its fields: {payload}"
    );
    // The typed decoder agrees.
    serde_json::from_value::<walletctl_core::wallet::BalanceUpdated>(v.clone())
        .expect("decodes as BalanceUpdated");
    let o = v.as_object_mut().unwrap();
    o.remove("event_id");
    o.remove("occurred_at_ms");
    v
}

fn stored(response: &str) -> String {
    match StoredAnswer::decode(response).expect("a stored answer in a known format") {
        Ok(mut e) => {
            e.created_at_ms = 0;
            format!("{:?}", Ok::<_, ()>(e))
        }
        Err(r) => format!("{r:?}"),
    }
}

macro_rules! read_all {
    ($conn:expr) => {{
        let conn = $conn;
        Written {
            ledger: sqlx::query_as(LEDGER).fetch_all(&mut *conn).await.unwrap(),
            outbox: sqlx::query_as::<_, (String, String, String)>(OUTBOX)
                .fetch_all(&mut *conn)
                .await
                .unwrap()
                .into_iter()
                .map(|(t, k, p)| (t, k, strict_event(&p)))
                .collect(),
            audit: sqlx::query_as::<_, (String, String, String, String)>(AUDIT)
                .fetch_all(&mut *conn)
                .await
                .unwrap()
                .into_iter()
                .map(|(a, b, c, d)| (a, b, c, serde_json::from_str(&d).unwrap()))
                .collect(),
            keys: sqlx::query_as::<_, (String, String, String, i64, String)>(KEYS)
                .fetch_all(&mut *conn)
                .await
                .unwrap()
                .into_iter()
                .map(|(o, k, h, s, r)| (o, k, h, s, stored(&r)))
                .collect(),
            wallets: sqlx::query_as(WALLETS).fetch_all(&mut *conn).await.unwrap(),
        }
    }};
}

async fn prepared(env: &TestEnv) -> Backends {
    let b = env.backends().await;
    b.db.migrate().await.unwrap();
    for u in USERS {
        b.wallets
            .create_wallet(
                &UserId::parse(u).unwrap(),
                &Region::parse("SOUTH_EAST").unwrap(),
                "test",
            )
            .await
            .unwrap();
    }
    b
}

async fn run_seed(seed: u64) {
    use sqlx::Connection;
    let (sqlite_env, mut pg_env) = (
        TestEnv::new(Mode::Embedded).await,
        TestEnv::new(Mode::Distributed).await,
    );
    // Odd seeds commit on sessions of the primary itself (one round trip,
    // no explicit transaction); even seeds through PgBouncer.
    if seed % 2 == 1 {
        pg_env.commit_on_primary_sessions();
    }
    let (sqlite, pg) = (prepared(&sqlite_env).await, prepared(&pg_env).await);
    let mut rng = Rng(seed);
    for round in 0..25 {
        let pick_user = |rng: &mut Rng| {
            if rng.below(10) == 0 {
                UNKNOWN
            } else {
                *rng.pick(&USERS)
            }
        };
        // A third of the rounds are group commits: several users' batches
        // in one transaction, given in no particular order.
        let group: Vec<Vec<MoneyCommand>> = if rng.below(3) == 0 {
            let mut users: Vec<&str> = Vec::new();
            for _ in 0..2 + rng.below(2) {
                let u = pick_user(&mut rng);
                if !users.contains(&u) {
                    users.push(u);
                }
            }
            users
                .into_iter()
                .map(|u| {
                    (0..1 + rng.below(3))
                        .map(|_| command(&mut rng, u))
                        .collect()
                })
                .collect()
        } else {
            let user = pick_user(&mut rng);
            vec![
                (0..1 + rng.below(5))
                    .map(|_| command(&mut rng, user))
                    .collect(),
            ]
        };
        let (a, b) = if group.len() == 1 {
            (
                vec![sqlite.wallets.apply_batch(&group[0]).await.unwrap()],
                vec![pg.wallets.apply_batch(&group[0]).await.unwrap()],
            )
        } else {
            (
                sqlite.wallets.apply_group(&group).await.unwrap(),
                pg.wallets.apply_group(&group).await.unwrap(),
            )
        };
        let flat = |answers: Vec<Vec<Result<Outcome, StoreError>>>| -> Vec<String> {
            answers.iter().flatten().map(comparable).collect()
        };
        let (a, b) = (flat(a), flat(b));
        assert_eq!(
            a, b,
            "seed {seed}, round {round}: SQLite and PostgreSQL answered differently to {group:#?}"
        );
    }
    let mut lite = sqlx::SqliteConnection::connect(&format!(
        "sqlite://{}",
        sqlite_env.config.embedded_db_path().display()
    ))
    .await
    .unwrap();
    let direct = pg_env
        .config
        .postgres
        .as_ref()
        .unwrap()
        .direct_url
        .clone()
        .unwrap();
    let mut post = sqlx::PgConnection::connect(direct.expose()).await.unwrap();
    let (x, y) = (read_all!(&mut lite), read_all!(&mut post));
    assert_eq!(x.ledger, y.ledger, "seed {seed}: ledger rows differ");
    assert_eq!(x.outbox, y.outbox, "seed {seed}: outbox payloads differ");
    assert_eq!(x.audit, y.audit, "seed {seed}: audit rows differ");
    assert_eq!(x.keys, y.keys, "seed {seed}: stored answers differ");
    assert_eq!(x.wallets, y.wallets, "seed {seed}: wallets differ");
    assert!(
        !x.ledger.is_empty(),
        "seed {seed} moved no money: a vacuous run"
    );
    sqlite.db.close().await;
    pg.db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn both_adapters_follow_the_same_money_rules() {
    // DIFFERENTIAL_SEEDS=500 explores further after a change to either side.
    let seeds: u64 = std::env::var("DIFFERENTIAL_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    for seed in 1..=seeds {
        run_seed(seed).await;
    }
}
