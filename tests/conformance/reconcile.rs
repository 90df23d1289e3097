//! Reconciliation finds each kind of planted inconsistency, `--fix`
//! repairs what it claims to (and only that), and a clean system is clean.

use harness::conformance;
use walletctl_core::ads::model::PricingModel;
use walletctl_core::billing::Terms;
use walletctl_core::display::{AdEvent, AdEventKind};
use walletctl_core::domain::{IdempotencyKey, UserId};
use walletctl_core::ops::reconcile::{Limits, Outcome, Report, reconcile};
use walletctl_core::wallet::{EntryKind, MoneyCommand};

use super::campaigns::{ads_post, campaign, campaign_until};
use super::user;

fn check<'a>(r: &'a Report, name: &str) -> &'a walletctl_core::ops::reconcile::CheckReport {
    r.checks.iter().find(|c| c.check == name).unwrap()
}

/// (found, fixed) of each check, by name.
fn counts(r: &Report) -> Vec<(&'static str, u64, u64)> {
    r.checks
        .iter()
        .map(|c| (c.check, c.found, c.fixed))
        .collect()
}

const LIMITS: Limits = Limits {
    outbox_age_ms: 0,
    replica_lag_ms: 60_000,
};

fn command(user: &str, kind: EntryKind, delta: i64, key: &str) -> MoneyCommand {
    MoneyCommand {
        user: UserId::parse(user).unwrap(),
        kind,
        delta,
        reason: None,
        reference: None,
        key: IdempotencyKey::parse(key).unwrap(),
        actor: "planted".into(),
        fence: None,
    }
}

conformance!(
    reconcile_finds_what_was_planted_and_fixes_what_is_safe,
    |env| {
        let app = env.spawn().await;
        let (rich, poor) = (user(), user());
        app.wallet_with(&rich, "SOUTH_EAST", 5_000).await;
        app.wallet_with(&poor, "SOUTH_WEST", 1_000).await;
        let (c_rich, c_poor) = (format!("r-{rich}"), format!("p-{poor}"));
        for (id, u) in [(&c_rich, &rich), (&c_poor, &poor)] {
            let (s, c, _) = ads_post(&app, "/campaigns", campaign(id, u, 1_000)).await;
            assert_eq!((s, c["status"].as_str()), (201, Some("active")), "{c}");
        }
        campaign_until(&app, &c_poor, "settled", |c| c["status"] == "active").await;
        let backends = env.backends().await;
        // The outbox drains within moments; then the system is clean.
        let mut clean = reconcile(&backends, LIMITS, false, &|_, _| {}).await;
        for _ in 0..100 {
            if clean.clean() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            clean = reconcile(&backends, LIMITS, false, &|_, _| {}).await;
        }
        assert!(clean.clean(), "{:?}", clean.checks);
        assert_eq!(check(&clean, "ledger").checked, 2);
        let replicas = check(&clean, "replicas").outcome;
        assert_eq!(
            replicas,
            if env.mode == harness::Mode::Embedded {
                Outcome::Skipped
            } else {
                Outcome::Ok
            }
        );
        app.stop().await;

        // With no service running, plant one of each:
        let store = &backends.wallets;
        // a balance its ledger does not explain;
        env.sql(&format!(
            "UPDATE wallets SET balance = balance + 7 WHERE user_id = '{rich}'"
        ))
        .await;
        // an unpublished event, and a campaign its wallet can no longer pay;
        store
            .apply(&command(&poor, EntryKind::Deduct, -1_000, "drain"))
            .await
            .unwrap();
        // a charge billed (consistently) but not copied to the campaign's spend;
        let click = AdEvent {
            event_id: "clk:planted".into(),
            kind: AdEventKind::Click,
            campaign_id: c_rich.clone(),
            user_id: rich.clone(),
            slot: "s".into(),
            viewer: None,
            decision_id: "planted".into(),
            occurred_at_ms: 1,
        };
        let terms = Terms {
            model: PricingModel::Cpc,
            price: 1_000,
            lifetime: 50_000,
            daily: None,
            serving: Default::default(),
        };
        backends.billing.bill(&click, Some(&terms)).await.unwrap();
        // an ad charge with no event, and an event billed with no charge;
        store
            .apply(&command(&rich, EntryKind::AdCharge, -5, "stray"))
            .await
            .unwrap();
        env.sql(&format!(
        "INSERT INTO ad_events (event_id, campaign_id, user_id, kind, status, amount, reason, entry_id, occurred_at_ms, billed_at_ms) \
         VALUES ('clk:ghost', '{c_rich}', '{rich}', 'click', 'billed', 3, NULL, NULL, 1, 1)"
    ))
    .await;
        // and, where the cache is Redis, a campaign cached that is not in the store.
        if let Some(rc) = &env.config.redis {
            let mut r = redis::Client::open(rc.url.expose())
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap();
            let _: () = redis::cmd("SADD")
                .arg(format!("{}campaigns:active", rc.key_prefix))
                .arg("ghost-campaign")
                .query_async(&mut r)
                .await
                .unwrap();
        }

        let found = reconcile(&backends, LIMITS, false, &|_, _| {}).await;
        assert!(!found.clean() && !found.failed());
        let cache = if env.config.redis.is_some() { 1 } else { 0 };
        assert_eq!(
            counts(&found),
            vec![
                ("ledger", 1, 0),
                ("outbox", 3, 0), // the drain, the click and the stray charge
                ("cache", cache, 0),
                ("campaign_status", 2, 0), // poor's campaign active, rich's spend
                ("billing", 2, 0),
                ("replicas", 0, 0),
            ],
            "{:#?}",
            found.checks
        );
        assert!(check(&found, "ledger").details[0].contains(&rich));

        // --fix repairs what is safe: the outbox, the cache, statuses and spend.
        let fixed = reconcile(&backends, LIMITS, true, &|_, _| {}).await;
        assert_eq!(
            counts(&fixed),
            vec![
                ("ledger", 1, 0),
                ("outbox", 3, 3),
                ("cache", cache, cache),
                ("campaign_status", 2, 2),
                ("billing", 2, 0),
                ("replicas", 0, 0),
            ],
            "{:#?}",
            fixed.checks
        );
        // What it claimed, it did; money is left to a person.
        let again = reconcile(&backends, LIMITS, false, &|_, _| {}).await;
        let left: Vec<_> = counts(&again)
            .into_iter()
            .filter(|(_, found, _)| *found > 0)
            .collect();
        assert_eq!(
            left,
            vec![("ledger", 1, 0), ("billing", 2, 0)],
            "{:#?}",
            again.checks
        );
        let poor_campaign = backends
            .campaigns
            .get(&walletctl_core::domain::CampaignId::parse(&c_poor).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (poor_campaign.status.as_str(), poor_campaign.status_reason),
            (
                "paused",
                Some(walletctl_core::ads::StatusReason::WalletEmpty)
            )
        );
        let rich_campaign = backends
            .campaigns
            .get(&walletctl_core::domain::CampaignId::parse(&c_rich).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rich_campaign.spent, 1_000);
    }
);

conformance!(serve_reconciles_on_a_schedule_when_configured, |env| {
    let mut config = env.config.clone();
    config.reconcile.interval_secs = 1;
    config.reconcile.fix = true;
    let app = harness::App::start(config).await;
    let u = user();
    app.wallet_with(&u, "SOUTH_EAST", 5_000).await;
    let id = format!("sched-{u}");
    let (s, _, _) = ads_post(&app, "/campaigns", campaign(&id, &u, 1_000)).await;
    assert_eq!(s, 201);
    // A charge billed behind the billing worker's back: only reconcile copies its spend.
    let click = AdEvent {
        event_id: "clk:scheduled".into(),
        kind: AdEventKind::Click,
        campaign_id: id.clone(),
        user_id: u.clone(),
        slot: "s".into(),
        viewer: None,
        decision_id: "scheduled".into(),
        occurred_at_ms: 1,
    };
    let terms = Terms {
        model: PricingModel::Cpc,
        price: 1_000,
        lifetime: 50_000,
        daily: None,
        serving: Default::default(),
    };
    env.backends()
        .await
        .billing
        .bill(&click, Some(&terms))
        .await
        .unwrap();
    let c = campaign_until(&app, &id, "given its spend by reconcile", |c| {
        c["spent"] == 1_000
    })
    .await;
    assert_eq!(c["status"], "active");
    app.stop().await;
});
