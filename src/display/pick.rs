//! Choosing one ad among candidates: only campaigns that are active, inside
//! their schedule and allowed by the caller's filter (the frequency cap),
//! weighted by what they pay per thousand impressions.

use rand::Rng;

use crate::ads::model::{Campaign, PricingModel, Status};

/// The click-through rate assumed to put a CPC price on the CPM scale.
pub const ASSUMED_CTR_PERCENT: i64 = 1;

/// What a campaign pays per thousand impressions, as a weight: the CPM, or
/// the CPC times the clicks a thousand impressions bring at
/// [`ASSUMED_CTR_PERCENT`].
pub fn weight(c: &Campaign) -> u128 {
    let ecpm = match c.pricing.model {
        PricingModel::Cpm => c.pricing.price,
        PricingModel::Cpc => c.pricing.price.saturating_mul(10 * ASSUMED_CTR_PERCENT),
    };
    ecpm.max(1) as u128
}

/// Whether `c` may be shown at `now_ms`: active and inside its schedule.
pub fn servable(c: &Campaign, now_ms: i64) -> bool {
    if c.status != Status::Active {
        return false;
    }
    match &c.schedule {
        None => true,
        Some(s) => s.start_ms.is_none_or(|t| now_ms >= t) && s.end_ms.is_none_or(|t| now_ms < t),
    }
}

/// Picks one servable candidate `allow` accepts, with probability
/// proportional to its [`weight`]; `None` if there is none.
pub fn pick<'a, C: AsRef<Campaign>>(
    candidates: &'a [C],
    now_ms: i64,
    rng: &mut impl Rng,
    allow: impl Fn(&Campaign) -> bool,
) -> Option<&'a Campaign> {
    let eligible: Vec<&Campaign> = candidates
        .iter()
        .map(AsRef::as_ref)
        .filter(|c| servable(c, now_ms) && allow(c))
        .collect();
    let total: u128 = eligible.iter().map(|c| weight(c)).sum();
    if total == 0 {
        return None;
    }
    let mut at = rng.random_range(0..total);
    for c in eligible {
        let w = weight(c);
        if at < w {
            return Some(c);
        }
        at -= w;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ads::model::{Budget, Creative, Pricing, Schedule};
    use rand::SeedableRng;

    fn campaign(id: &str, model: PricingModel, price: i64) -> Campaign {
        Campaign {
            campaign_id: id.into(),
            user_id: "u".into(),
            name: id.into(),
            pricing: Pricing { model, price },
            budget: Budget {
                lifetime: 1_000_000,
                daily: None,
            },
            creative: Creative {
                title: "t".into(),
                asset_url: "https://a.example/x.png".into(),
                landing_url: "https://b.example/".into(),
                asset_id: None,
            },
            targeting: serde_json::json!({}),
            metadata: serde_json::json!({}),
            schedule: None,
            status: Status::Active,
            status_reason: None,
            spent: 0,
            version: 1,
            status_wallet_version: None,
            status_since_ms: None,
        }
    }

    #[test]
    fn picks_follow_the_price_and_skip_what_cannot_be_served() {
        let mut paused = campaign("paused", PricingModel::Cpm, 1_000_000);
        paused.status = Status::Paused;
        let mut later = campaign("later", PricingModel::Cpm, 1_000_000);
        later.schedule = Some(Schedule {
            start_ms: Some(2_000),
            end_ms: None,
        });
        let capped = campaign("capped", PricingModel::Cpm, 1_000_000);
        let cands = vec![
            campaign("cheap", PricingModel::Cpm, 1_000),
            campaign("dear", PricingModel::Cpc, 300), // eCPM 3,000
            paused,
            later,
            capped,
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut counts = std::collections::HashMap::new();
        for _ in 0..4_000 {
            let c = pick(&cands, 1_000, &mut rng, |c| c.campaign_id != "capped").unwrap();
            *counts.entry(c.campaign_id.clone()).or_insert(0) += 1;
        }
        assert_eq!(counts.len(), 2, "{counts:?}");
        let (cheap, dear) = (counts["cheap"] as f64, counts["dear"] as f64);
        assert!((2.5..3.5).contains(&(dear / cheap)), "{counts:?}");
        assert!(pick(&cands[2..4], 1_000, &mut rng, |_| true).is_none());
        assert!(pick(&cands[3..4], 2_000, &mut rng, |_| true).is_some());
    }
}
