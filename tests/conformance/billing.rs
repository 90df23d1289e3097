//! Billing in batches answers exactly as billing one event at a time: the
//! same records, counters, ledger and balances, with repeats, refusals,
//! fractions and unknown campaigns mixed into one batch.

use harness::{App, conformance};
use walletctl_core::ads::model::PricingModel;
use walletctl_core::billing::Terms;
use walletctl_core::display::{AdEvent, AdEventKind};

use super::user;

fn event(n: usize, kind: AdEventKind, campaign: &str, user: &str) -> AdEvent {
    let decision = format!("d{n:04}");
    AdEvent {
        event_id: walletctl_core::display::event::event_id(kind, &decision),
        kind,
        campaign_id: campaign.to_owned(),
        user_id: user.to_owned(),
        slot: "s".into(),
        viewer: None,
        decision_id: decision,
        occurred_at_ms: 1,
    }
}

/// The batch: two advertisers, three campaigns, a wallet that runs dry in
/// the middle, CPM fractions, a repeat, a missing wallet, an unknown campaign.
fn batch(tag: &str, a: &str, b: &str) -> Vec<(AdEvent, Option<Terms>)> {
    let cpc = Some(Terms {
        model: PricingModel::Cpc,
        price: 1_000,
        lifetime: 1_000_000,
        daily: None,
        serving: Default::default(),
    });
    let cpm = Some(Terms {
        model: PricingModel::Cpm,
        price: 1_500,
        lifetime: 4,
        daily: None,
        serving: Default::default(),
    });
    let (c1, c2, c3) = (format!("{tag}-1"), format!("{tag}-2"), format!("{tag}-3"));
    let mut v = Vec::new();
    for n in 0..4 {
        v.push((event(n, AdEventKind::Click, &c1, a), cpc));
    }
    for n in 10..16 {
        v.push((event(n, AdEventKind::Impression, &c2, b), cpm));
    }
    v.push(v[0].clone());
    v.push((event(20, AdEventKind::Click, &c3, "nobody"), cpc));
    v.push((event(21, AdEventKind::Click, &c3, a), None));
    v
}

/// Two advertisers with 2,500 and 100.
async fn advertisers(app: &App) -> (String, String) {
    let (a, b) = (user(), user());
    app.wallet_with(&a, "SOUTH_EAST", 2_500).await;
    app.wallet_with(&b, "SOUTH_WEST", 100).await;
    (a, b)
}

conformance!(a_batch_bills_exactly_like_one_event_at_a_time, |env| {
    let app = env.spawn().await;
    let ((a, b), (a2, b2)) = (advertisers(&app).await, advertisers(&app).await);
    let backends = env.backends().await;
    let store = &backends.billing;
    let together = store.bill_batch(&batch("t", &a, &b)).await.unwrap();
    let mut apart = Vec::new();
    for (e, t) in batch("p", &a2, &b2) {
        let e = AdEvent {
            event_id: format!("{}-one", e.event_id),
            ..e
        };
        apart.push(store.bill(&e, t.as_ref()).await.unwrap());
    }
    let outcome = |b: &walletctl_core::billing::Billed| {
        (
            b.record.status,
            b.record.amount,
            b.record.reason,
            b.duplicate,
            b.counters,
            b.budget_spent,
        )
    };
    // The repeat: a duplicate within the batch, a fresh event when apart (renamed ids).
    let t: Vec<_> = together.iter().map(outcome).collect();
    let p: Vec<_> = apart.iter().map(outcome).collect();
    assert_eq!(t[..10], p[..10]);
    assert_eq!(t[11..], p[11..]);
    assert!(t[10].3, "the repeat is a duplicate");
    assert_eq!(together[10].record, together[0].record);
    // 2,500 pays two clicks of 1,000; the third and fourth are refused.
    let amounts: Vec<i64> = together[..4].iter().map(|b| b.record.amount).collect();
    assert_eq!(amounts, [1_000, 1_000, 0, 0]);
    assert_eq!(
        together[2].record.reason.map(|r| r.as_str()),
        Some("insufficient_funds")
    );
    // CPM 1,500 with a budget of 4: 1 + 2 + 1 = 4 after three; the rest refused.
    let amounts: Vec<i64> = together[4..10].iter().map(|b| b.record.amount).collect();
    assert_eq!(amounts, [1, 2, 1, 0, 0, 0]);
    assert!(together[6].budget_spent);
    assert_eq!(
        together[7].record.reason.map(|r| r.as_str()),
        Some("budget_exhausted")
    );
    assert_eq!(
        together[11].record.reason.map(|r| r.as_str()),
        Some("wallet_not_found")
    );
    assert_eq!(
        together[12].record.reason.map(|r| r.as_str()),
        Some("campaign_unknown")
    );
    // The ledger: each charge once, the same either way.
    for u in [&a, &a2] {
        assert_eq!(app.balance(u).await, 500);
    }
    for u in [&b, &b2] {
        let (sum, balance) = backends
            .wallets
            .ledger_sum(&walletctl_core::domain::UserId::parse(u).unwrap())
            .await
            .unwrap();
        assert_eq!((sum, balance), (96, 96));
    }
    // Billing the batch again changes nothing.
    let again = store.bill_batch(&batch("t", &a, &b)).await.unwrap();
    assert!(again.iter().all(|b| b.duplicate));
    assert_eq!(app.balance(&b).await, 96);
    app.stop().await;
});
