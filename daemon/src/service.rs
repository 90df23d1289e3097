//! The three services one `serve` process can run.

/// One of the three services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    /// Balances and money movements.
    Wallet,
    /// Advertising campaign management.
    Ads,
    /// Ad serving.
    Display,
}

impl Service {
    /// All three, in start order.
    pub const ALL: [Service; 3] = [Service::Wallet, Service::Ads, Service::Display];

    /// Its name in logs, metrics and `--only`.
    pub fn name(self) -> &'static str {
        match self {
            Service::Wallet => "wallet",
            Service::Ads => "ads",
            Service::Display => "display",
        }
    }
}
