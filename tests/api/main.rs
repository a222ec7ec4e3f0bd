//! Integration tests: the real application on a random port, a fresh database each.
mod auth;
mod cli;
mod helpers;
mod notifications;
mod security;
mod smtp;
mod team;
