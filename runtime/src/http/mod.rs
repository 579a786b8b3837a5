//! The JSON HTTP API of a node (actix-web).
//!
//! - [`errors`]: the error body and the bounded, error-mapped extractors.

pub mod errors;
