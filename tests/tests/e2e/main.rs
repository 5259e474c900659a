//! The end-to-end tests, one binary: each module starts the real `tradepact-data` and
//! `tradepact-negotiation` binaries on ephemeral ports (see `tradepact_tests`). One binary
//! links tonic, sled and rustls once instead of fifteen times.

mod brief;
mod cluster;
mod comtrade_import;
mod connection_attacks;
mod crash_recovery;
mod disk_full;
mod durability;
mod genius;
mod grpcurl_roundtrip;
mod heavy;
mod impact;
mod korus_sample;
mod korus_scenario;
mod memory;
mod metrics;
mod negotiation_flow;
mod one_write;
mod overload;
mod pagination_and_streams;
mod privacy;
mod python_client;
mod readme;
mod reflection_and_health;
mod robustness;
mod seat;
mod security;
mod slow_clients;
mod store_format;
mod traces;
mod validation;
mod vintages;
mod watch_and_shutdown;
mod web;
