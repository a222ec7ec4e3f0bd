//! Integration tests: the real application on a random port, a fresh database each.
mod alerts;
mod auth;
mod bounded;
mod browser;
mod cli;
mod crash;
mod delivery;
mod helpers;
mod history;
mod notifications;
mod pages;
mod security;
mod smtp;
mod team;
mod twilio;
mod webhooks;
