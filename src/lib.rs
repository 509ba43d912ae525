//! partnergate: an OAuth2 client-credentials authorization server for partner integrations.
//!
//! Layers, with data flowing one way: `http` and `cli` → `oauth`, `registry`, `audit`, `keys` → `store`.

pub mod audit;
pub mod keys;
pub mod registry;
pub mod store;
