//! Use cases and the ports they need.
pub mod audit;
pub mod chain;
pub mod check;
pub mod inventory;
pub mod namespaces;
