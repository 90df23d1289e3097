//! The campaign model: what a campaign is, what a valid new one looks like,
//! and the rules about its status that need no I/O.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::{CampaignId, MAX_AMOUNT, ParseError, UserId};

/// Whether a campaign is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Served while its advertiser's wallet can pay.
    Active,
    /// Not served; see the reason.
    Paused,
    /// Finished for good.
    Ended,
}

impl Status {
    /// Its stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Paused => "paused",
            Status::Ended => "ended",
        }
    }
}

/// Why a campaign is not active.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusReason {
    /// A person paused it: never resumed automatically.
    Manual,
    /// The advertiser's wallet cannot pay its smallest charge: resumed when funds return.
    WalletEmpty,
    /// Its lifetime or daily budget is spent.
    BudgetExhausted,
    /// Outside its schedule.
    Schedule,
}

/// How a campaign is charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PricingModel {
    /// Per click.
    Cpc,
    /// Per thousand impressions.
    Cpm,
}

/// The price, in minor units: per click (CPC) or per thousand impressions (CPM).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Pricing {
    /// `cpc` or `cpm`.
    pub model: PricingModel,
    /// Minor units, `1 ..= 10^15`.
    #[schema(minimum = 1, maximum = 1_000_000_000_000_000_i64)]
    pub price: i64,
}

/// Budgets, in minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// The most the campaign may ever spend, `1 ..= 10^15`.
    #[schema(minimum = 1, maximum = 1_000_000_000_000_000_i64)]
    pub lifetime: i64,
    /// The most it may spend per UTC day, if set; at most the lifetime budget.
    #[schema(minimum = 1, maximum = 1_000_000_000_000_000_i64)]
    pub daily: Option<i64>,
}

/// What is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Creative {
    /// 1–200 characters, not blank, no control characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub title: String,
    /// The image or video, an `http(s)://` URL of at most 2,048 characters.
    #[schema(
        min_length = 8,
        max_length = 2048,
        pattern = r"^https?://[^\s/\u0000-\u001F\u007F-\u009F][^\s\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub asset_url: String,
    /// Where a click goes, an `http(s)://` URL of at most 2,048 characters.
    #[schema(
        min_length = 8,
        max_length = 2048,
        pattern = r"^https?://[^\s/\u0000-\u001F\u007F-\u009F][^\s\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub landing_url: String,
    /// An asset uploaded to walletctl, by its content hash (64 hex digits):
    /// when set, ads show it from the display service (or the CDN in front
    /// of it) instead of `asset_url`. Set by an upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^[0-9a-f]{64}$")]
    pub asset_id: Option<String>,
}

/// When a campaign may run, ms since the epoch; either end may be open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Not before.
    pub start_ms: Option<i64>,
    /// Not after; later than `start_ms`.
    pub end_ms: Option<i64>,
}

/// A campaign as stored and returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Campaign {
    /// Chosen by its creator; unique.
    pub campaign_id: String,
    /// The advertiser, whose wallet pays.
    pub user_id: String,
    /// For people.
    pub name: String,
    /// How it is charged.
    pub pricing: Pricing,
    /// How much it may spend.
    pub budget: Budget,
    /// What is shown.
    pub creative: Creative,
    /// Free-form, kept exactly as given.
    #[schema(value_type = Object)]
    pub targeting: Value,
    /// Free-form, kept exactly as given.
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// When it may run.
    pub schedule: Option<Schedule>,
    /// Whether it is served.
    pub status: Status,
    /// Why not, when it is not active.
    pub status_reason: Option<StatusReason>,
    /// Minor units spent so far.
    pub spent: i64,
    /// Bumped by every change; caches and events carry it.
    pub version: i64,
    /// The wallet version whose `balance_updated` event last paused or
    /// resumed this campaign (`null` when a person did).
    #[serde(default)]
    pub status_wallet_version: Option<i64>,
    /// When its status (or the reason for it) last changed, ms since the
    /// epoch; absent if it never changed since its creation. Billing asks
    /// it whether an event arrived before a pause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_since_ms: Option<i64>,
}

/// A new campaign as a client sends it (`POST /campaigns`, `campaign_created`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignInput {
    /// 1–64 characters of `A-Z a-z 0-9 _ - .`.
    #[schema(pattern = r"^[A-Za-z0-9_.\-]{1,64}$")]
    pub campaign_id: String,
    /// The advertiser: 1–64 characters of `A-Z a-z 0-9 _ - .`.
    #[schema(pattern = r"^[A-Za-z0-9_.\-]{1,64}$")]
    pub user_id: String,
    /// 1–200 characters, not blank, no control characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: String,
    /// How it is charged.
    #[serde(deserialize_with = "crate::domain::strict::object")]
    pub pricing: Pricing,
    /// How much it may spend; `daily`, if set, at most `lifetime`.
    #[serde(deserialize_with = "crate::domain::strict::object")]
    pub budget: Budget,
    /// What is shown.
    #[serde(deserialize_with = "crate::domain::strict::object")]
    pub creative: Creative,
    /// Free-form JSON object, kept exactly as given.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub targeting: Value,
    /// Free-form JSON object, kept exactly as given.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// When it may run.
    #[serde(default, deserialize_with = "crate::domain::strict::optional_object")]
    pub schedule: Option<Schedule>,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// A campaign's definition, checked: only [`NewCampaign::parse`] makes one.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCampaign {
    id: CampaignId,
    user: UserId,
    input: CampaignInput,
}

fn text(field: &'static str, v: &str, max: usize) -> Result<(), ParseError> {
    if v.trim().is_empty() {
        return Err(ParseError::new(field, "must not be blank"));
    }
    if v.chars().count() > max {
        return Err(ParseError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(ParseError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

fn url(field: &'static str, v: &str) -> Result<(), ParseError> {
    text(field, v, 2048)?;
    let rest = v
        .strip_prefix("https://")
        .or_else(|| v.strip_prefix("http://"))
        .ok_or_else(|| ParseError::new(field, "must be an http:// or https:// URL"))?;
    if rest.is_empty() || rest.starts_with('/') || rest.contains(char::is_whitespace) {
        return Err(ParseError::new(
            field,
            "must name a host and contain no spaces",
        ));
    }
    // A browser must be able to follow it: a well-formed URL with a host.
    if url::Url::parse(v).map_or(true, |u| u.host_str().is_none_or(str::is_empty)) {
        return Err(ParseError::new(field, "must be a well-formed URL"));
    }
    Ok(())
}

fn minor(field: &'static str, v: i64) -> Result<(), ParseError> {
    if (1..=MAX_AMOUNT).contains(&v) {
        Ok(())
    } else {
        Err(ParseError::new(
            field,
            format!("must be within 1 ..= {MAX_AMOUNT} minor units"),
        ))
    }
}

impl NewCampaign {
    /// Checks every field of a client's input.
    pub fn parse(input: CampaignInput) -> Result<NewCampaign, ParseError> {
        let id = CampaignId::parse(&input.campaign_id)?;
        let user = UserId::parse(&input.user_id)?;
        check_name(&input.name)?;
        check_definition(
            &input.pricing,
            &input.budget,
            &input.creative,
            &input.targeting,
            &input.metadata,
            input.schedule.as_ref(),
        )?;
        Ok(NewCampaign { id, user, input })
    }

    /// The campaign's id.
    pub fn id(&self) -> &CampaignId {
        &self.id
    }

    /// The advertiser.
    pub fn user(&self) -> &UserId {
        &self.user
    }

    /// The campaign it starts as: active, nothing spent, version 1.
    pub fn into_campaign(self) -> Campaign {
        let i = self.input;
        Campaign {
            campaign_id: i.campaign_id,
            user_id: i.user_id,
            name: i.name,
            pricing: i.pricing,
            budget: i.budget,
            creative: i.creative,
            targeting: i.targeting,
            metadata: i.metadata,
            schedule: i.schedule,
            status: Status::Active,
            status_reason: None,
            spent: 0,
            version: 1,
            status_wallet_version: None,
            status_since_ms: None,
        }
    }
}

/// A campaign's name: 1–200 characters, not blank, no control characters.
pub fn check_name(name: &str) -> Result<(), ParseError> {
    text("name", name, 200)
}

/// The rules every campaign definition keeps, at creation and after a change.
pub fn check_definition(
    pricing: &Pricing,
    budget: &Budget,
    creative: &Creative,
    targeting: &Value,
    metadata: &Value,
    schedule: Option<&Schedule>,
) -> Result<(), ParseError> {
    minor("pricing.price", pricing.price)?;
    minor("budget.lifetime", budget.lifetime)?;
    if let Some(daily) = budget.daily {
        minor("budget.daily", daily)?;
        if daily > budget.lifetime {
            return Err(ParseError::new(
                "budget.daily",
                "must not exceed budget.lifetime",
            ));
        }
    }
    text("creative.title", &creative.title, 200)?;
    url("creative.asset_url", &creative.asset_url)?;
    url("creative.landing_url", &creative.landing_url)?;
    if let Some(id) = &creative.asset_id
        && !(id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
    {
        return Err(ParseError::new(
            "creative.asset_id",
            "must be 64 lowercase hex digits (an uploaded asset's hash)",
        ));
    }
    if !targeting.is_object() {
        return Err(ParseError::new("targeting", "must be a JSON object"));
    }
    if !metadata.is_object() {
        return Err(ParseError::new("metadata", "must be a JSON object"));
    }
    for (field, v) in [("targeting", targeting), ("metadata", metadata)] {
        if v.to_string().len() > 16 * 1024 {
            return Err(ParseError::new(field, "must be at most 16 KiB of JSON"));
        }
    }
    if let Some(Schedule {
        start_ms: Some(start),
        end_ms: Some(end),
    }) = schedule
        && end <= start
    {
        return Err(ParseError::new(
            "schedule.end_ms",
            "must be later than schedule.start_ms",
        ));
    }
    Ok(())
}

impl AsRef<Campaign> for Campaign {
    fn as_ref(&self) -> &Campaign {
        self
    }
}

impl Campaign {
    /// The smallest amount one ad event of this campaign can charge: the CPC,
    /// or a thousandth of the CPM (at least 1 minor unit; fractions accrue).
    pub fn min_charge(&self) -> i64 {
        match self.pricing.model {
            PricingModel::Cpc => self.pricing.price,
            PricingModel::Cpm => (self.pricing.price / 1000).max(1),
        }
    }

    /// The most one ad event of this campaign can charge: the CPC, or a
    /// thousandth of the CPM rounded up (what a completed fraction adds).
    pub fn max_charge(&self) -> i64 {
        match self.pricing.model {
            PricingModel::Cpc => self.pricing.price,
            PricingModel::Cpm => ((self.pricing.price + 999) / 1000).max(1),
        }
    }

    /// Whether a wallet holding `balance` can pay this campaign's smallest
    /// charge: the one rule by which a campaign follows its advertiser's
    /// wallet (the ads service, the serving pool and reconcile all ask it).
    pub fn can_pay(&self, balance: i64) -> bool {
        balance >= self.min_charge()
    }

    /// [`Campaign::can_pay`] for a wallet that may not exist (`None`: no
    /// wallet, which pays nothing).
    pub fn wallet_can_pay(&self, wallet: Option<i64>) -> bool {
        wallet.is_some_and(|b| self.can_pay(b))
    }

    /// The status following the wallet gives this campaign, `None` if it
    /// stays as it is: an active campaign the wallet cannot pay pauses with
    /// `wallet_empty`; one paused with `wallet_empty` that it can pay
    /// resumes. A person's pause, a spent budget or an end are left alone.
    pub fn follow_wallet(&self, wallet: Option<i64>) -> Option<(Status, Option<StatusReason>)> {
        let can_pay = self.wallet_can_pay(wallet);
        match (self.status, self.status_reason) {
            (Status::Active, _) if !can_pay => {
                Some((Status::Paused, Some(StatusReason::WalletEmpty)))
            }
            (Status::Paused, Some(StatusReason::WalletEmpty)) if can_pay => {
                Some((Status::Active, None))
            }
            _ => None,
        }
    }

    /// Whether the lifetime budget left can pay the next event whatever it costs.
    pub fn budget_can_pay(&self) -> bool {
        self.budget.lifetime - self.spent >= self.max_charge()
    }

    /// Whether this campaign's definition equals `input`'s (an idempotent re-create).
    pub fn same_definition(&self, input: &NewCampaign) -> bool {
        let i = &input.input;
        self.campaign_id == i.campaign_id
            && self.user_id == i.user_id
            && self.name == i.name
            && self.pricing == i.pricing
            && self.budget == i.budget
            && self.creative == i.creative
            && self.targeting == i.targeting
            && self.metadata == i.metadata
            && self.schedule == i.schedule
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input() -> CampaignInput {
        serde_json::from_value(json!({
            "campaign_id": "c-1", "user_id": "alice", "name": "Winter sale",
            "pricing": {"model": "cpc", "price": 1000},
            "budget": {"lifetime": 50000, "daily": null},
            "creative": {"title": "Boots", "asset_url": "https://cdn.example/a.png", "landing_url": "https://shop.example/boots"},
            "targeting": {"geo": ["IR"], "x-unknown": {"deep": [1, 2.5, null]}},
        }))
        .unwrap()
    }

    #[test]
    fn a_valid_campaign_starts_active_with_its_free_form_fields_intact() {
        let c = NewCampaign::parse(input()).unwrap().into_campaign();
        assert_eq!((c.status, c.version, c.spent), (Status::Active, 1, 0));
        assert_eq!(c.targeting["x-unknown"]["deep"], json!([1, 2.5, null]));
        assert_eq!(c.metadata, json!({}));
        assert_eq!(c.min_charge(), 1000);
    }

    #[test]
    fn bad_definitions_are_refused_by_field() {
        type Change = Box<dyn Fn(&mut CampaignInput)>;
        let cases: Vec<(&str, Change)> = vec![
            ("pricing.price", Box::new(|i| i.pricing.price = 0)),
            ("budget.daily", Box::new(|i| i.budget.daily = Some(60_000))),
            (
                "creative.landing_url",
                Box::new(|i| i.creative.landing_url = "javascript:alert(1)".into()),
            ),
            (
                "creative.title",
                Box::new(|i| i.creative.title = "a\nb".into()),
            ),
            ("targeting", Box::new(|i| i.targeting = json!([1]))),
            ("user_id", Box::new(|i| i.user_id = "no spaces".into())),
            (
                "schedule.end_ms",
                Box::new(|i| {
                    i.schedule = Some(Schedule {
                        start_ms: Some(5),
                        end_ms: Some(5),
                    })
                }),
            ),
        ];
        for (field, change) in cases {
            let mut i = input();
            change(&mut i);
            assert_eq!(NewCampaign::parse(i).unwrap_err().field, field);
        }
    }

    #[test]
    fn a_cpm_campaign_charges_at_least_one_minor_unit() {
        let mut i = input();
        i.pricing = Pricing {
            model: PricingModel::Cpm,
            price: 250,
        };
        assert_eq!(
            NewCampaign::parse(i).unwrap().into_campaign().min_charge(),
            1
        );
    }
}
