//! Abuse and failure paths: keys belong to their caller, bad input changes
//! nothing, scopes do not leak, limits degrade cleanly, and the database
//! itself refuses what the code promises never to do.
//!
//! One file per behaviour: `callers.rs` (tokens and what they may learn),
//! `input.rs` (hostile requests), `load.rs` (queues, deadlines, the relay
//! lease) and `money_path.rs` (batches and groups decided per command).

mod callers;
mod input;
mod load;
mod money_path;

use harness::TestEnv;
use serde_json::Value;
use walletctl_core::platform::auth::Scopes;

/// A second token with `scopes`, created as an operator would.
pub(crate) async fn token(env: &TestEnv, name: &str, scopes: &str) -> String {
    env.backends()
        .await
        .tokens
        .create_token(name, &Scopes::parse(scopes).unwrap(), "test")
        .await
        .unwrap()
        .secret
}

pub(crate) async fn post_as(
    app: &harness::App,
    token: &str,
    path: &str,
    body: Value,
    key: &str,
) -> (u16, Value) {
    app.send(
        app.http
            .post(format!("{}{path}", app.wallet))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&body),
    )
    .await
}

pub(crate) fn money(
    user: &str,
    delta: i64,
    key: &str,
    actor: &str,
    reason: &str,
) -> walletctl_core::wallet::MoneyCommand {
    walletctl_core::wallet::MoneyCommand {
        user: walletctl_core::domain::UserId::parse(user).unwrap(),
        kind: if delta < 0 {
            walletctl_core::wallet::EntryKind::Deduct
        } else {
            walletctl_core::wallet::EntryKind::Credit
        },
        delta,
        reason: Some(reason.to_owned()),
        reference: None,
        key: walletctl_core::domain::IdempotencyKey::parse(key).unwrap(),
        actor: actor.to_owned(),
        fence: None,
    }
}
