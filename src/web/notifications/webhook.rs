//! Where Kai posts events, for owners and admins: the URL, the signing secret, rotation.
use crate::db::Link;
use actix_web::{HttpResponse, post, web};

use crate::clock::{format_utc, unix_now};
use crate::db;
use crate::domain::audit::Change;
use crate::tokens;
use crate::web::error::AppError;
use crate::web::extract::{CsrfForm, CurrentUser, NoFields};
use crate::web::{AppState, see_other};

pub struct WebhookView {
    pub url: String,
    pub secret: String,
    pub previous_until: Option<String>,
}

/// The webhook section, shown to the people who manage the business.
pub async fn webhook_view(
    conn: &mut impl Link,
    state: &AppState,
    me: &CurrentUser,
) -> Result<Option<WebhookView>, AppError> {
    if !me.manages_business() {
        return Ok(None);
    }
    Ok(db::businesses::get(conn, me.business_id()).await?.map(|b| WebhookView {
        url: state.config.public_url.join(&format!("webhooks/kai/{}", b.id)).map(|u| u.to_string()).unwrap_or_default(),
        secret: b.webhook_secret,
        previous_until: b.previous_secret_expires_at.filter(|t| *t > unix_now()).map(format_utc),
    }))
}

#[post("/settings/notifications/webhook-secret")]
pub async fn rotate_secret(
    me: CurrentUser,
    state: web::Data<AppState>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<HttpResponse, AppError> {
    me.require_manager("rotate the webhook secret")?;
    let (business, actor, secret) = (me.business_id().to_owned(), me.user.id, tokens::webhook_secret());
    state
        .db
        .write(move |w| {
            Box::pin(async move {
                let now = unix_now();
                db::businesses::rotate_secret(w, &business, &secret, now + 24 * 3600).await?;
                let change = Change::new("webhook.rotated", None, None);
                db::audit::record(w, &business, Some(actor), None, &[change], now).await
            })
        })
        .await?;
    state.secrets.forget(me.business_id());
    Ok(see_other("/settings/notifications?saved=rotated#webhook"))
}
