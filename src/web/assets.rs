use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use actix_web::{HttpRequest, HttpResponse, get, web};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "static/"]
struct Assets;

/// The vendored htmx build; its version is in the name, so an upgrade is a new URL and no
/// browser keeps running an old copy.
pub const HTMX: &str = "/static/htmx-2.0.11.min.js";

#[get("/static/{path:.*}")]
pub async fn asset(req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let Some(file) = Assets::get(&path) else {
        return HttpResponse::NotFound().body("No such file.");
    };
    let etag =
        format!("\"{}\"", file.metadata.sha256_hash().iter().take(8).map(|b| format!("{b:02x}")).collect::<String>());
    if req.headers().get(IF_NONE_MATCH).is_some_and(|v| v.as_bytes() == etag.as_bytes()) {
        return HttpResponse::NotModified().finish();
    }
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, file.metadata.mimetype()))
        .insert_header((ETAG, etag))
        .insert_header((CACHE_CONTROL, "public, max-age=3600"))
        .body(file.data.into_owned())
}

/// `/static/app.css?v=…`: the query changes when the file does, so browsers refetch it.
pub fn versioned(path: &str) -> String {
    let hash = Assets::get(path)
        .map(|f| f.metadata.sha256_hash().iter().take(4).map(|b| format!("{b:02x}")).collect::<String>())
        .unwrap_or_default();
    format!("/static/{path}?v={hash}")
}
