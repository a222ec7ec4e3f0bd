//! The only code that talks to the outside world: email (and, with the alerts flow, SMS).
pub mod email;
pub mod sms;
pub mod worker;
