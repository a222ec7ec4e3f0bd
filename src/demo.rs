//! The demo business "Acme Plumbing", seeded once and reused on later runs.
use crate::clock::unix_now;
use crate::db::{self, Db, Write, businesses::NewBusiness, users::NewUser};
use crate::domain::audit::Change;
use crate::domain::escalation::{Policy, Step};
use crate::domain::{
    ChannelSet, EmailAddress, LeadScore, PersonName, PhoneNumber, RecipientPrefs, Region, Role, password,
};
use crate::tokens;

pub struct DemoLogins {
    pub business_id: String,
    pub webhook_secret: String,
    pub owner_email: String,
    pub member_email: String,
    pub password: String,
}

const OWNER: (&str, &str) = ("Maria Alvarez", "maria@acme-plumbing.test");
const TEAM: [(&str, &str, Role, Option<&str>); 4] = [
    ("Dev Patel", "dev@acme-plumbing.test", Role::Admin, Some("+15555550104")),
    ("Sam Rivera", "sam@acme-plumbing.test", Role::Member, Some("+15555550101")),
    ("Jordan Lee", "jordan@acme-plumbing.test", Role::Member, Some("+15555550102")),
    ("Priya Shah", "priya@acme-plumbing.test", Role::Member, Some("+15555550103")),
];
const SETTING: &str = "demo_business_id";

/// Seeds the demo business if it is not there yet, and gives every demo login a fresh password
/// (printed at start; only the hash is stored).
pub async fn seed(db: &Db) -> anyhow::Result<DemoLogins> {
    let password = tokens::demo_password();
    let hash = {
        let password = password.clone();
        tokio::task::spawn_blocking(move || password::hash(&password)).await??
    };
    let business_id = db
        .write(move |w| {
            Box::pin(async move {
                let existing = db::app_settings::get(w, SETTING).await?;
                match existing {
                    Some(id) if db::businesses::get(w, &id).await?.is_some() => {
                        for user in db::users::list_active(w, &id).await? {
                            db::users::set_password(w, user.id, &hash).await?;
                        }
                        Ok(id)
                    }
                    _ => create(w, &hash).await,
                }
            })
        })
        .await?;
    let business = db::businesses::get(&mut db.system().await?, &business_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("demo business vanished"))?;
    Ok(DemoLogins {
        business_id,
        webhook_secret: business.webhook_secret,
        owner_email: OWNER.1.into(),
        member_email: TEAM[1].1.into(),
        password,
    })
}

/// A name, email or phone of the demo data that does not parse: a bug in this file.
fn demo_data(e: String) -> sqlx::Error {
    sqlx::Error::Protocol(format!("demo data: {e}"))
}

async fn create(w: &mut Write, hash: &str) -> sqlx::Result<String> {
    let id = tokens::business_id();
    let now = unix_now();
    let owner_name = PersonName::parse(OWNER.0).map_err(demo_data)?;
    let owner_email = EmailAddress::parse(OWNER.1).map_err(demo_data)?;
    let owner_id = db::businesses::create(
        w,
        NewBusiness {
            id: &id,
            name: "Acme Plumbing",
            region: Region::default(),
            webhook_secret: &tokens::webhook_secret(),
            owner_name: &owner_name,
            owner_email: &owner_email,
            owner_password_hash: hash,
        },
        now,
    )
    .await?;
    let mut sam = None;
    for (name, email, role, phone) in TEAM {
        let name = PersonName::parse(name).map_err(demo_data)?;
        let email = EmailAddress::parse(email).map_err(demo_data)?;
        let phone = phone.map(|p| PhoneNumber::parse(p, Region::default())).transpose().map_err(demo_data)?;
        let user = NewUser {
            business_id: &id,
            name: &name,
            email: &email,
            phone: phone.as_ref(),
            role,
            password_hash: Some(hash),
        };
        let user_id = db::users::insert(w, user, now).await?;
        if email.as_str() == TEAM[1].1 {
            sam = Some(user_id);
            // Sam hears only about strong leads, by SMS, email and in-app.
            let mut prefs = RecipientPrefs::new_recipient();
            prefs.channels.sms = true;
            prefs.kinds.usage = false;
            prefs.kinds.billing = false;
            prefs.min_lead_score = LeadScore::new(70).map_err(demo_data)?;
            db::recipients::insert(w, &id, user_id, &prefs, now).await?;
            db::audit::record(
                w,
                &id,
                Some(owner_id),
                Some(user_id),
                &[Change::new("recipient.added", None, None)],
                now,
            )
            .await?;
        }
    }
    // A strong lead nobody claims in 5 minutes goes to Sam again, and 10 minutes later to Maria.
    let policy = Policy {
        enabled: true,
        min_score: LeadScore::new(80).map_err(demo_data)?,
        first: Step { minutes: 5, people: sam.into_iter().collect() },
        second: Some(Step { minutes: 10, people: vec![owner_id] }),
        channels: ChannelSet { email: false, sms: true, in_app: true },
    };
    db::escalations::save(w, &id, &policy, now).await?;
    // The demo's numbers are known to be right: no code to type back.
    db::phone_codes::known_good(w, &id, now).await?;
    db::app_settings::set(w, SETTING, &id).await?;
    Ok(id)
}
