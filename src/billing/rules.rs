//! The price of one ad event and the budget rules, as pure functions.
//!
//! A click costs the campaign's CPC. An impression costs CPM/1000: the
//! thousandths of a minor unit accrue in `remainder_milli`, and each
//! impression charges the whole units its accrual completes, so after N
//! billed impressions at one CPM exactly floor(N × CPM / 1000) has been
//! charged. A charge that would take spend past the lifetime or the daily
//! budget is refused whole: spend never exceeds a budget.

use serde::{Deserialize, Serialize};

use crate::ads::model::{Campaign, PricingModel, Status, StatusReason};
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
    /// When it may be served.
    pub serving: Serving,
}

/// When a campaign could be served, as billing reads it: an event that
/// arrived when it could not is recorded unbilled ([`not_servable`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Serving {
    /// Paused by a person since then (`i64::MIN` when not known).
    pub paused_since: Option<i64>,
    /// Ended since then (`i64::MIN` when not known).
    pub ended_since: Option<i64>,
    /// Its schedule's start, if any.
    pub start_ms: Option<i64>,
    /// Its schedule's end, if any (exclusive).
    pub end_ms: Option<i64>,
}

impl Terms {
    /// A campaign's terms.
    pub fn of(c: &Campaign) -> Terms {
        let since = c.status_since_ms.unwrap_or(i64::MIN);
        Terms {
            model: c.pricing.model,
            price: c.pricing.price,
            lifetime: c.budget.lifetime,
            daily: c.budget.daily,
            serving: Serving {
                paused_since: (c.status == Status::Paused
                    && c.status_reason == Some(StatusReason::Manual))
                .then_some(since),
                ended_since: (c.status == Status::Ended).then_some(since),
                start_ms: c.schedule.as_ref().and_then(|s| s.start_ms),
                end_ms: c.schedule.as_ref().and_then(|s| s.end_ms),
            },
        }
    }
}

/// Why an event that arrived at `at_ms` is not billed though it is priced:
/// the campaign could not be served then (paused by a person, ended, or
/// outside its schedule). A campaign paused because its wallet or budget
/// ran out is priced as any other: the wallet or the budget refuses it.
pub fn not_servable(terms: &Terms, at_ms: i64) -> Option<UnbilledReason> {
    let s = &terms.serving;
    if s.ended_since.is_some_and(|t| at_ms >= t) {
        Some(UnbilledReason::CampaignEnded)
    } else if s.paused_since.is_some_and(|t| at_ms >= t) {
        Some(UnbilledReason::CampaignPaused)
    } else if s.start_ms.is_some_and(|t| at_ms < t) || s.end_ms.is_some_and(|t| at_ms >= t) {
        Some(UnbilledReason::OutsideSchedule)
    } else {
        None
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
    /// A person had paused the campaign when the event arrived.
    CampaignPaused,
    /// The campaign had ended when the event arrived.
    CampaignEnded,
    /// The event arrived outside the campaign's schedule.
    OutsideSchedule,
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
            UnbilledReason::CampaignPaused => "campaign_paused",
            UnbilledReason::CampaignEnded => "campaign_ended",
            UnbilledReason::OutsideSchedule => "outside_schedule",
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
            "campaign_paused" => UnbilledReason::CampaignPaused,
            "campaign_ended" => UnbilledReason::CampaignEnded,
            "outside_schedule" => UnbilledReason::OutsideSchedule,
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
            serving: Serving::default(),
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
            serving: Serving::default(),
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

    #[test]
    fn an_event_is_billed_only_when_the_campaign_could_be_served() {
        let mut t = cpm(1000, 10_000);
        assert_eq!(not_servable(&t, 5), None);
        t.serving.paused_since = Some(100);
        assert_eq!(not_servable(&t, 99), None, "before the pause");
        assert_eq!(not_servable(&t, 100), Some(UnbilledReason::CampaignPaused));
        t.serving = Serving {
            ended_since: Some(i64::MIN),
            ..Serving::default()
        };
        assert_eq!(not_servable(&t, 0), Some(UnbilledReason::CampaignEnded));
        t.serving = Serving {
            start_ms: Some(10),
            end_ms: Some(20),
            ..Serving::default()
        };
        assert_eq!(not_servable(&t, 9), Some(UnbilledReason::OutsideSchedule));
        assert_eq!(not_servable(&t, 10), None);
        assert_eq!(not_servable(&t, 20), Some(UnbilledReason::OutsideSchedule));
        for r in [
            UnbilledReason::CampaignPaused,
            UnbilledReason::CampaignEnded,
            UnbilledReason::OutsideSchedule,
        ] {
            assert_eq!(UnbilledReason::parse(r.as_str()), Some(r));
            assert!(!r.is_budget());
        }
    }
}
