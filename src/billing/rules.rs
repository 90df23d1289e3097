//! The price of one ad event and the budget rules, as pure functions.
//!
//! A click costs the campaign's CPC. An impression costs CPM/1000: the
//! thousandths of a minor unit accrue in `remainder_milli`, and each
//! impression charges the whole units its accrual completes, so after N
//! billed impressions at one CPM exactly floor(N × CPM / 1000) has been
//! charged. A charge that would take spend past the lifetime or the daily
//! budget is refused whole: spend never exceeds a budget.

use serde::{Deserialize, Serialize};

use crate::ads::model::{Campaign, PricingModel};
use crate::display::AdEventKind;

/// What a campaign charges and may spend, as billing reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terms {
    /// CPC or CPM.
    pub model: PricingModel,
    /// Minor units per click or per thousand impressions.
    pub price: i64,
    /// The lifetime budget.
    pub lifetime: i64,
    /// The daily budget, if any.
    pub daily: Option<i64>,
}

impl Terms {
    /// A campaign's terms.
    pub fn of(c: &Campaign) -> Terms {
        Terms {
            model: c.pricing.model,
            price: c.pricing.price,
            lifetime: c.budget.lifetime,
            daily: c.budget.daily,
        }
    }
}

/// A campaign's billing counters, as stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Impressions billed (including those whose charge was a fraction).
    pub impressions: i64,
    /// Clicks billed.
    pub clicks: i64,
    /// Minor units charged in all.
    pub spent: i64,
    /// Accrued thousandths of a minor unit not yet charged (`0..1000`).
    pub remainder_milli: i64,
    /// The UTC day `day_spent` counts.
    pub day: i64,
    /// Minor units charged on `day`.
    pub day_spent: i64,
}

/// Why an event was not billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnbilledReason {
    /// The advertiser's wallet could not pay it.
    InsufficientFunds,
    /// It would take spend past the lifetime budget.
    BudgetExhausted,
    /// It would take today's spend past the daily budget.
    DailyBudgetExhausted,
    /// The campaign does not exist.
    CampaignUnknown,
    /// The advertiser has no wallet.
    WalletNotFound,
}

impl UnbilledReason {
    /// Its stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            UnbilledReason::InsufficientFunds => "insufficient_funds",
            UnbilledReason::BudgetExhausted => "budget_exhausted",
            UnbilledReason::DailyBudgetExhausted => "daily_budget_exhausted",
            UnbilledReason::CampaignUnknown => "campaign_unknown",
            UnbilledReason::WalletNotFound => "wallet_not_found",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<UnbilledReason> {
        Some(match s {
            "insufficient_funds" => UnbilledReason::InsufficientFunds,
            "budget_exhausted" => UnbilledReason::BudgetExhausted,
            "daily_budget_exhausted" => UnbilledReason::DailyBudgetExhausted,
            "campaign_unknown" => UnbilledReason::CampaignUnknown,
            "wallet_not_found" => UnbilledReason::WalletNotFound,
            _ => return None,
        })
    }

    /// Whether the campaign's budget (not its wallet) refused it.
    pub fn is_budget(self) -> bool {
        matches!(
            self,
            UnbilledReason::BudgetExhausted | UnbilledReason::DailyBudgetExhausted
        )
    }
}

/// What an event comes to before the wallet is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Charge `amount` (possibly 0, a fraction accrued); the counters
    /// become `next` if the wallet pays.
    Charge {
        /// Minor units.
        amount: i64,
        /// The counters after it.
        next: Counters,
    },
    /// Not billed.
    Refuse(UnbilledReason),
}

/// The UTC day of a time, in days since the epoch.
pub fn day_of(ms: i64) -> i64 {
    ms.div_euclid(86_400_000)
}

/// What `kind` costs on `today` for a campaign with `terms` and `counters`.
pub fn decide(kind: AdEventKind, terms: &Terms, counters: &Counters, today: i64) -> Decision {
    let day_spent = if counters.day == today {
        counters.day_spent
    } else {
        0
    };
    let mut next = *counters;
    let amount = match (kind, terms.model) {
        (AdEventKind::Click, PricingModel::Cpc) => {
            next.clicks += 1;
            terms.price
        }
        (AdEventKind::Impression, PricingModel::Cpm) => {
            let accrued = counters.remainder_milli + terms.price;
            next.impressions += 1;
            next.remainder_milli = accrued % 1000;
            accrued / 1000
        }
        // What the pricing model does not charge for is counted, free.
        (AdEventKind::Click, PricingModel::Cpm) => {
            next.clicks += 1;
            0
        }
        (AdEventKind::Impression, PricingModel::Cpc) => {
            next.impressions += 1;
            0
        }
    };
    let charges = amount > 0 || terms.model == kind_model(kind);
    if charges && (counters.spent >= terms.lifetime || counters.spent + amount > terms.lifetime) {
        return Decision::Refuse(UnbilledReason::BudgetExhausted);
    }
    if let Some(daily) = terms.daily
        && charges
        && (day_spent >= daily || day_spent + amount > daily)
    {
        return Decision::Refuse(UnbilledReason::DailyBudgetExhausted);
    }
    next.spent += amount;
    next.day = today;
    next.day_spent = day_spent + amount;
    Decision::Charge { amount, next }
}

fn kind_model(kind: AdEventKind) -> PricingModel {
    match kind {
        AdEventKind::Click => PricingModel::Cpc,
        AdEventKind::Impression => PricingModel::Cpm,
    }
}

/// Whether the budgets left can pay the next event whatever it costs
/// (`max_charge`) on `today`: a campaign paused for its budget may then
/// resume (a new day for a daily budget, or a budget raised).
pub fn budget_can_pay(terms: &Terms, counters: &Counters, today: i64, max_charge: i64) -> bool {
    let day_spent = if counters.day == today {
        counters.day_spent
    } else {
        0
    };
    terms.lifetime - counters.spent >= max_charge
        && terms.daily.is_none_or(|d| d - day_spent >= max_charge)
}

/// Whether a campaign with `counters` has spent a budget: it then pauses.
pub fn exhausted(terms: &Terms, counters: &Counters, today: i64) -> bool {
    counters.spent >= terms.lifetime
        || terms
            .daily
            .is_some_and(|d| counters.day == today && counters.day_spent >= d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cpm(price: i64, lifetime: i64) -> Terms {
        Terms {
            model: PricingModel::Cpm,
            price,
            lifetime,
            daily: None,
        }
    }

    fn run(terms: &Terms, n: usize) -> (Counters, usize) {
        let mut c = Counters::default();
        let mut refused = 0;
        for _ in 0..n {
            match decide(AdEventKind::Impression, terms, &c, 0) {
                Decision::Charge { next, .. } => c = next,
                Decision::Refuse(_) => refused += 1,
            }
        }
        (c, refused)
    }

    proptest! {
        #[test]
        fn impressions_charge_exactly_the_floor_of_their_accrual(price in 1i64..5_000_000, n in 0usize..3_000) {
            let (c, refused) = run(&cpm(price, i64::MAX / 2), n);
            prop_assert_eq!(refused, 0);
            prop_assert_eq!(c.impressions as usize, n);
            prop_assert_eq!(i128::from(c.spent), i128::from(price) * n as i128 / 1000);
        }

        #[test]
        fn spend_never_passes_the_budget(price in 1i64..50_000, lifetime in 1i64..20_000, n in 0usize..2_000) {
            let terms = cpm(price, lifetime);
            let (c, _) = run(&terms, n);
            prop_assert!(c.spent <= lifetime);
            prop_assert_eq!(i128::from(c.spent), i128::from(price) * i128::from(c.impressions) / 1000);
        }
    }

    #[test]
    fn a_budget_refuses_the_charge_that_would_pass_it() {
        // 1.234 per impression, a budget of 500: 405 impressions make 499.77.
        let terms = cpm(1234, 500);
        let (c, refused) = run(&terms, 450);
        assert_eq!((c.impressions, c.spent, refused), (405, 499, 45));
        assert!(!exhausted(&terms, &c, 0));
        let clicks = Terms {
            model: PricingModel::Cpc,
            price: 1000,
            lifetime: 5000,
            daily: Some(2000),
        };
        let mut c = Counters::default();
        for _ in 0..2 {
            let Decision::Charge { next, .. } = decide(AdEventKind::Click, &clicks, &c, 7) else {
                panic!("charged")
            };
            c = next;
        }
        assert!(exhausted(&clicks, &c, 7));
        assert_eq!(
            decide(AdEventKind::Click, &clicks, &c, 7),
            Decision::Refuse(UnbilledReason::DailyBudgetExhausted)
        );
        // A new day starts a new daily budget.
        assert!(matches!(
            decide(AdEventKind::Click, &clicks, &c, 8),
            Decision::Charge { amount: 1000, .. }
        ));
        assert!(!exhausted(&clicks, &c, 8));
    }
}
