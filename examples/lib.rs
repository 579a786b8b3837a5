//! Runnable examples, one per protocol and per way of embedding:
//! `cargo run -p concord-examples --example NAME`.
