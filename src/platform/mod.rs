//! What several areas share: the SQL plumbing (pools, replicas and their
//! routing, sessions, lanes, migrations), auth (tokens and scopes, and
//! their store), the audit trail, Redis and MongoDB handles. Nothing here
//! knows about wallets, campaigns or ads.

pub mod audit;
pub mod auth;
pub mod mongo;
pub mod redis;
pub mod sql;
