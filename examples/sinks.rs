//! An SMTP server and a Twilio-shaped HTTP server (the ones the tests use), for trying the
//! product or profiling it by hand. Prints the environment to point the server at them, then
//! counts what arrives every few seconds.
//!
//!     cargo run --release --example sinks
#![allow(dead_code)]

#[path = "../tests/api/smtp.rs"]
mod smtp;
#[path = "../tests/api/twilio.rs"]
mod twilio;

use std::time::Duration;

#[tokio::main]
async fn main() {
    let smtp = smtp::SmtpServer::start().await;
    let twilio = twilio::TwilioServer::start().await;
    println!(
        "SMTP_URL={} SMS_API_BASE={} SMS_ACCOUNT_SID={} SMS_AUTH_TOKEN={} SMS_FROM={}",
        smtp.url(),
        twilio.url(),
        twilio::SID,
        twilio::TOKEN,
        twilio::FROM
    );
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        eprintln!("{} emails, {} texts so far", smtp.messages().len(), twilio.received().len());
    }
}
