use super::assets;
use super::extract::CurrentUser;

/// The frame around every signed-in page: header, navigation, user menu.
pub struct Shell {
    pub business_name: String,
    pub user_name: String,
    pub role_label: &'static str,
    pub csrf_token: String,
    pub page: &'static str,
    pub css: String,
    pub js: String,
    pub htmx: &'static str,
    pub unread: i64,
}

impl Shell {
    pub fn new(me: &CurrentUser, page: &'static str) -> Self {
        Self {
            business_name: me.business_name.clone(),
            user_name: me.user.name.clone(),
            role_label: me.user.role.label(),
            csrf_token: me.csrf_token.clone(),
            page,
            css: assets::versioned("app.css"),
            js: assets::versioned("app.js"),
            htmx: assets::HTMX,
            unread: me.unread,
        }
    }

    /// The bell's count ("99+" past what is counted).
    pub fn unread_label(&self) -> String {
        super::inbox::unread_label(self.unread)
    }

    /// `aria-current="page"` for the navigation link of this page.
    pub fn current(&self, page: &str) -> &'static str {
        if self.page == page { "page" } else { "false" }
    }
}

/// Assets for pages outside the signed-in frame (login, invitation, errors).
pub struct PublicAssets {
    pub css: String,
}

impl PublicAssets {
    pub fn new() -> Self {
        Self { css: assets::versioned("app.css") }
    }
}
