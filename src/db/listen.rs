//! On PostgreSQL, instances hear each other's changes: a writer that changes a business's
//! routing settings or a person's inbox announces it with `NOTIFY` in the same transaction, and
//! every other instance's writer forgets that business's cached settings (so the next lead it
//! accepts is planned with the new ones) and tells that person's open pages.
//!
//! While the listening connection is down, changes can be missed: the writer is told to forget
//! every business's settings, then again once listening resumes.
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};

use super::Db;
use super::writer::Heard;

pub(super) const CHANNEL: &str = "kaicalls_changes";

/// What a message says, from an instance other than `me`.
fn parse(payload: &str, me: u64) -> Option<Heard> {
    let mut parts = payload.splitn(3, ' ');
    let from: u64 = parts.next()?.parse().ok()?;
    if from == me {
        return None;
    }
    match (parts.next()?, parts.next()?) {
        ("routing", business) => Some(Heard::Routing(Some(business.to_owned()))),
        ("inbox", user) => user.parse().ok().map(Heard::Inbox),
        _ => None,
    }
}

pub(super) async fn run(options: PgConnectOptions, db: Db) {
    let me = db.writer.instance;
    loop {
        let pool = PgPoolOptions::new().max_connections(1).connect_lazy_with(options.clone());
        let listening = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(CHANNEL).await?;
            // Anything said before this point was missed.
            db.writer.heard(Heard::Routing(None)).await;
            loop {
                match listener.try_recv().await? {
                    Some(message) => {
                        if let Some(heard) = parse(message.payload(), me) {
                            db.writer.heard(heard).await;
                        }
                    }
                    None => {
                        tracing::warn!("lost the connection PostgreSQL tells changes on; listening again");
                        db.writer.heard(Heard::Routing(None)).await;
                    }
                }
            }
            #[allow(unreachable_code)]
            Ok::<(), sqlx::Error>(())
        };
        if let Err(e) = listening.await {
            tracing::warn!(error = %e, "cannot listen for other instances' changes; trying again");
            db.writer.heard(Heard::Routing(None)).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_from_other_instances_are_understood_and_our_own_ignored() {
        assert!(matches!(parse("7 routing biz_1", 8), Some(Heard::Routing(Some(b))) if b == "biz_1"));
        assert!(matches!(parse("7 inbox 42", 8), Some(Heard::Inbox(42))));
        assert!(parse("8 routing biz_1", 8).is_none());
        assert!(parse("7 inbox x", 8).is_none());
        assert!(parse("garbage", 8).is_none());
    }
}
