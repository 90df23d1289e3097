//! The wallet's model: wallets, ledger entries, money commands and what they
//! come to. No I/O here.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::{IdempotencyKey, UserId};

/// What a ledger entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A top-up.
    Credit,
    /// A deduction by a client.
    Deduct,
    /// An operator adjustment, either sign.
    Adjust,
    /// A charge for ad impressions or clicks.
    AdCharge,
}

impl EntryKind {
    /// The name stored in the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Credit => "credit",
            EntryKind::Deduct => "deduct",
            EntryKind::Adjust => "adjust",
            EntryKind::AdCharge => "ad_charge",
        }
    }

    pub(crate) fn parse(raw: &str) -> Result<Self, sqlx::Error> {
        Ok(match raw {
            "credit" => EntryKind::Credit,
            "deduct" => EntryKind::Deduct,
            "adjust" => EntryKind::Adjust,
            "ad_charge" => EntryKind::AdCharge,
            other => {
                return Err(sqlx::Error::Decode(
                    format!("unknown ledger kind {other:?}").into(),
                ));
            }
        })
    }
}

/// A wallet as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wallet {
    /// The owner.
    pub user_id: String,
    /// The shard key.
    pub region: String,
    /// Minor units; never negative.
    pub balance: i64,
    /// Bumped by every change; events carry it so consumers can drop stale ones.
    pub version: i64,
    /// Milliseconds since the epoch.
    pub created_at_ms: i64,
    /// Milliseconds since the epoch.
    pub updated_at_ms: i64,
}

/// A wallet and where it was read.
#[derive(Debug, Clone)]
pub struct WalletRead {
    /// The wallet.
    pub wallet: Wallet,
    /// `embedded`, `primary` or `replica:NAME`.
    pub source: String,
}

/// One immutable ledger entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LedgerEntry {
    /// Increasing id; the history cursor.
    pub id: i64,
    /// The wallet's owner.
    pub user_id: String,
    /// What happened.
    pub kind: EntryKind,
    /// The signed change in minor units.
    pub amount: i64,
    /// The balance right after this entry.
    pub balance_after: i64,
    /// The wallet version this entry produced.
    pub version: i64,
    /// Why, in the caller's words.
    pub reason: Option<String>,
    /// The caller's reference, e.g. an order id.
    pub reference: Option<String>,
    /// Who did it: the token's name.
    pub actor: String,
    /// Milliseconds since the epoch.
    pub created_at_ms: i64,
}

/// A movement of money refused by the rules, with nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Refusal {
    /// The balance is smaller than the deduction.
    InsufficientFunds {
        /// The balance when refused.
        balance: i64,
        /// The amount asked for.
        requested: i64,
    },
    /// The credit would take the balance above the maximum.
    BalanceLimitExceeded {
        /// The balance when refused.
        balance: i64,
        /// The amount asked for.
        requested: i64,
    },
}

/// What a money command came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The new entry, or why nothing changed.
    pub result: Result<LedgerEntry, Refusal>,
    /// Whether this is the stored answer to an earlier request with the same key.
    pub replayed: bool,
}

/// A request to move money.
#[derive(Debug, Clone)]
pub struct MoneyCommand {
    /// Whose wallet.
    pub user: UserId,
    /// What kind of entry to write.
    pub kind: EntryKind,
    /// Signed change in minor units (negative for deductions).
    pub delta: i64,
    /// Why.
    pub reason: Option<String>,
    /// The caller's reference.
    pub reference: Option<String>,
    /// The caller's idempotency key.
    pub key: IdempotencyKey,
    /// Who: the token's name. Also the namespace of `key`: two callers'
    /// equal keys are different keys.
    pub actor: String,
    /// The fencing token of the per-user lock, if one was held.
    pub fence: Option<i64>,
}

impl MoneyCommand {
    /// A digest of everything that makes two requests "the same request",
    /// the caller included.
    pub(crate) fn request_hash(&self) -> String {
        let canonical = serde_json::json!([
            "v2",
            self.actor,
            self.kind.as_str(),
            self.user.as_str(),
            self.delta,
            self.reason,
            self.reference
        ]);
        hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
    }
}

/// The answer stored with an idempotency key, in an explicit, versioned
/// format that does not borrow the API's field names: renaming a field of
/// [`LedgerEntry`] cannot break the replay of an answer stored before.
/// `walletctl_apply_group` (PostgreSQL) writes the same JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "format")]
pub enum StoredAnswer {
    /// Version 1.
    #[serde(rename = "answer.v1")]
    V1(AnswerV1),
}

/// Version 1 of the stored answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case", deny_unknown_fields)]
pub enum AnswerV1 {
    /// The command was applied and wrote this entry.
    Applied {
        /// The entry.
        entry: StoredEntryV1,
    },
    /// The command was refused; nothing changed.
    Refused {
        /// Why.
        refusal: StoredRefusalV1,
    },
}

/// A ledger entry as version 1 of the stored answer spells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredEntryV1 {
    id: i64,
    user_id: String,
    kind: EntryKind,
    amount: i64,
    balance_after: i64,
    version: i64,
    reason: Option<String>,
    reference: Option<String>,
    actor: String,
    created_at_ms: i64,
}

/// A refusal as version 1 of the stored answer spells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredRefusalV1 {
    code: String,
    balance: i64,
    requested: i64,
}

/// Answers stored before the versioned format: serde's default encoding of
/// `Result<LedgerEntry, Refusal>`. Read only, never written.
#[derive(Deserialize)]
enum LegacyAnswer {
    Ok(LedgerEntry),
    Err(Refusal),
}

impl StoredAnswer {
    /// The stored form of a decision.
    pub fn new(result: &Result<LedgerEntry, Refusal>) -> StoredAnswer {
        StoredAnswer::V1(match result {
            Ok(e) => AnswerV1::Applied {
                entry: StoredEntryV1 {
                    id: e.id,
                    user_id: e.user_id.clone(),
                    kind: e.kind,
                    amount: e.amount,
                    balance_after: e.balance_after,
                    version: e.version,
                    reason: e.reason.clone(),
                    reference: e.reference.clone(),
                    actor: e.actor.clone(),
                    created_at_ms: e.created_at_ms,
                },
            },
            Err(r) => {
                let (code, balance, requested) = match *r {
                    Refusal::InsufficientFunds { balance, requested } => {
                        ("insufficient_funds", balance, requested)
                    }
                    Refusal::BalanceLimitExceeded { balance, requested } => {
                        ("balance_limit_exceeded", balance, requested)
                    }
                };
                AnswerV1::Refused {
                    refusal: StoredRefusalV1 {
                        code: code.into(),
                        balance,
                        requested,
                    },
                }
            }
        })
    }

    /// Reads a stored answer: the versioned format, or the legacy one.
    pub fn decode(text: &str) -> Result<Result<LedgerEntry, Refusal>, String> {
        match serde_json::from_str::<StoredAnswer>(text) {
            Ok(StoredAnswer::V1(a)) => a.into_result(),
            Err(e) => match serde_json::from_str::<LegacyAnswer>(text) {
                Ok(LegacyAnswer::Ok(entry)) => Ok(Ok(entry)),
                Ok(LegacyAnswer::Err(refusal)) => Ok(Err(refusal)),
                Err(_) => Err(format!("unreadable stored answer: {e}")),
            },
        }
    }

    /// The JSON text stored.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl AnswerV1 {
    fn into_result(self) -> Result<Result<LedgerEntry, Refusal>, String> {
        Ok(match self {
            AnswerV1::Applied { entry: e } => Ok(LedgerEntry {
                id: e.id,
                user_id: e.user_id,
                kind: e.kind,
                amount: e.amount,
                balance_after: e.balance_after,
                version: e.version,
                reason: e.reason,
                reference: e.reference,
                actor: e.actor,
                created_at_ms: e.created_at_ms,
            }),
            AnswerV1::Refused { refusal: r } => {
                let (balance, requested) = (r.balance, r.requested);
                Err(match r.code.as_str() {
                    "insufficient_funds" => Refusal::InsufficientFunds { balance, requested },
                    "balance_limit_exceeded" => {
                        Refusal::BalanceLimitExceeded { balance, requested }
                    }
                    other => return Err(format!("unknown refusal code {other:?}")),
                })
            }
        })
    }
}

/// A page of history, newest first.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HistoryPage {
    /// The entries.
    pub entries: Vec<LedgerEntry>,
    /// Pass as `before` to get the next page; absent on the last page.
    pub next_before: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> LedgerEntry {
        LedgerEntry {
            id: 7,
            user_id: "alice".into(),
            kind: EntryKind::Deduct,
            amount: -250,
            balance_after: 750,
            version: 3,
            reason: Some("r".into()),
            reference: None,
            actor: "shop".into(),
            created_at_ms: 1,
        }
    }

    #[test]
    fn stored_answers_round_trip() {
        for result in [
            Ok(entry()),
            Err(Refusal::InsufficientFunds {
                balance: 1,
                requested: 2,
            }),
            Err(Refusal::BalanceLimitExceeded {
                balance: 3,
                requested: 4,
            }),
        ] {
            let text = StoredAnswer::new(&result).encode();
            assert_eq!(StoredAnswer::decode(&text), Ok(result));
        }
    }

    #[test]
    fn the_stored_format_is_fixed() {
        // This exact text is what walletctl_apply_group writes too; changing
        // it breaks every replay stored before the change.
        let text = StoredAnswer::new(&Ok(entry())).encode();
        assert_eq!(
            text,
            r#"{"format":"answer.v1","outcome":"applied","entry":{"id":7,"user_id":"alice","kind":"deduct","amount":-250,"balance_after":750,"version":3,"reason":"r","reference":null,"actor":"shop","created_at_ms":1}}"#
        );
        // The server's jsonb orders keys differently: still the same answer.
        let from_pg = r#"{"entry": {"id": 7, "kind": "deduct", "actor": "shop", "amount": -250, "reason": "r", "user_id": "alice", "version": 3, "reference": null, "balance_after": 750, "created_at_ms": 1}, "format": "answer.v1", "outcome": "applied"}"#;
        assert_eq!(StoredAnswer::decode(from_pg), Ok(Ok(entry())));
    }

    #[test]
    fn legacy_answers_still_replay() {
        let legacy = serde_json::json!({"Err": {"code": "insufficient_funds", "balance": 5, "requested": 9}}).to_string();
        assert_eq!(
            StoredAnswer::decode(&legacy),
            Ok(Err(Refusal::InsufficientFunds {
                balance: 5,
                requested: 9
            }))
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let text = r#"{"format":"answer.v1","outcome":"refused","refusal":{"code":"insufficient_funds","balance":1,"requested":2,"extra":1}}"#;
        assert!(StoredAnswer::decode(text).is_err());
    }

    #[test]
    fn the_caller_is_part_of_the_fingerprint() {
        let cmd = |actor: &str| MoneyCommand {
            user: UserId::parse("alice").unwrap(),
            kind: EntryKind::Deduct,
            delta: -1,
            reason: None,
            reference: None,
            key: IdempotencyKey::parse("k").unwrap(),
            actor: actor.into(),
            fence: None,
        };
        assert_ne!(cmd("a").request_hash(), cmd("b").request_hash());
        assert_eq!(cmd("a").request_hash(), cmd("a").request_hash());
    }
}
