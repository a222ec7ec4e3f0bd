//! kaicalls-notify: decides which alerts a business sends, through which channels, to whom.
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod demo;
pub mod dispatch;
pub mod domain;
pub mod metrics;
pub mod startup;
pub mod telemetry;
pub mod tokens;
pub mod web;
