//! A local HTTP server speaking Twilio's Messages API: records each request, answers from a script.
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

pub const SID: &str = "AC00000000000000000000000000000001";
pub const TOKEN: &str = "test-auth-token";
pub const FROM: &str = "+15555550199";

#[derive(Debug, Clone)]
pub struct Sms {
    pub account: String,
    pub to: String,
    pub from: String,
    pub body: String,
    /// Where the sender asked Twilio to report the text's later states.
    pub status_callback: String,
    /// How long the text may wait in the queue (`ValidityPeriod`, seconds), if the sender set it.
    pub validity: String,
    pub authorization: String,
    /// When it arrived (read by the load generator, examples/loadgen.rs).
    #[allow(dead_code)]
    pub at: std::time::Instant,
}

#[derive(Debug, Clone)]
pub enum Reply {
    Created,
    /// HTTP status and Twilio error code.
    Error(u16, u32),
    /// Answer `Created` after a pause (the request counts as received on arrival).
    Slow(Duration),
}

#[derive(Clone, Default)]
struct Shared {
    received: Arc<Mutex<Vec<Sms>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
    /// Replies for one number, used before the general script (the order of sends is not
    /// fixed: several go at once).
    by_number: Arc<Mutex<HashMap<String, VecDeque<Reply>>>>,
}

#[derive(Clone)]
pub struct TwilioServer {
    pub port: u16,
    shared: Shared,
}

async fn messages(
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
    let sms = Sms {
        account: path.into_inner(),
        to: field("To"),
        from: field("From"),
        body: field("Body"),
        status_callback: field("StatusCallback"),
        validity: field("ValidityPeriod"),
        authorization: req.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned(),
        at: std::time::Instant::now(),
    };
    let own = shared.by_number.lock().unwrap().get_mut(&sms.to).and_then(VecDeque::pop_front);
    let reply = own.or_else(|| shared.script.lock().unwrap().pop_front()).unwrap_or(Reply::Created);
    let n = {
        let mut received = shared.received.lock().unwrap();
        received.push(sms.clone());
        received.len()
    };
    if let Reply::Slow(pause) = reply {
        tokio::time::sleep(pause).await;
    }
    match reply {
        Reply::Created | Reply::Slow(_) => HttpResponse::Created().json(serde_json::json!({
            "sid": format!("SM{n:032}"), "status": "queued", "to": sms.to, "from": sms.from, "body": sms.body
        })),
        Reply::Error(status, code) => HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
            .json(serde_json::json!({ "code": code, "message": format!("error {code}"), "status": status })),
    }
}

/// `GET /2010-04-01/Accounts/{sid}.json`: the account, for the right SID and token only.
async fn account(req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    use base64::Engine;
    let expected = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{TOKEN}")));
    let given = req.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    let sid = path.into_inner();
    if given != expected {
        return HttpResponse::Unauthorized()
            .json(serde_json::json!({"code": 20003, "message": "Authenticate", "status": 401}));
    }
    if sid.trim_end_matches(".json") != SID {
        return HttpResponse::NotFound().json(
            serde_json::json!({"code": 20404, "message": "The requested resource was not found", "status": 404}),
        );
    }
    HttpResponse::Ok().json(serde_json::json!({"sid": SID, "friendly_name": "Test account", "status": "active"}))
}

impl TwilioServer {
    pub async fn start() -> Self {
        Self::start_scripted(&[]).await
    }

    /// Starts with the first replies scripted already.
    pub async fn start_scripted(replies: &[Reply]) -> Self {
        let shared = Shared::default();
        shared.script.lock().unwrap().extend(replies.iter().cloned());
        let data = web::Data::new(shared.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/2010-04-01/Accounts/{sid}/Messages.json", web::post().to(messages))
                .route("/2010-04-01/Accounts/{sid}", web::get().to(account))
        })
        .workers(1)
        .shutdown_timeout(0)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Self { port, shared }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Answers the next requests with these replies, then `Created`.
    pub fn script(&self, replies: &[Reply]) {
        self.shared.script.lock().unwrap().extend(replies.iter().cloned());
    }

    /// Forgets the replies scripted and not used yet: from now on every text is `Created`.
    #[allow(dead_code)]
    pub fn clear_script(&self) {
        self.shared.script.lock().unwrap().clear();
        self.shared.by_number.lock().unwrap().clear();
    }

    /// Answers the next requests to `number` with these replies, whatever the order of sends.
    pub fn script_for(&self, number: &str, replies: &[Reply]) {
        self.shared.by_number.lock().unwrap().entry(number.to_owned()).or_default().extend(replies.iter().cloned());
    }

    /// Forgets the messages received so far (the codes texted while a test set its phones up).
    pub fn forget(&self) {
        self.shared.received.lock().unwrap().clear();
    }

    pub fn received(&self) -> Vec<Sms> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Waits up to 20 s for at least `n` messages.
    pub async fn wait_for(&self, n: usize) -> Vec<Sms> {
        for _ in 0..400 {
            if self.received().len() >= n {
                return self.received();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.received()
    }
}
