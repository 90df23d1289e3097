//! The advertising management area: the campaign model, its store port with
//! the MongoDB and embedded adapters, the service that creates, pauses and
//! resumes campaigns, and the client it reads wallet balances with.

pub mod assets;
pub mod cache;
pub mod events;
pub mod model;
pub mod service;
pub mod store;
pub mod wallet_client;

pub use model::{Campaign, CampaignInput, NewCampaign, Status, StatusReason};
pub use service::{AdsError, AdsService, BalanceOutcome, Changes, Created, SyncReport, Update};
