//! A real SMTP server for tests: speaks enough of RFC 5321 for lettre and keeps each message.
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub struct ReceivedEmail {
    pub to: Vec<String>,
    pub data: String,
    /// When it arrived (read by the load generator, examples/loadgen.rs).
    #[allow(dead_code)]
    pub at: std::time::Instant,
}

#[derive(Clone)]
pub struct SmtpServer {
    pub port: u16,
    pub received: Arc<Mutex<Vec<ReceivedEmail>>>,
}

/// The user name and password a server asks for (AUTH PLAIN), if it asks.
type Login = Option<(&'static str, &'static str)>;

impl SmtpServer {
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    /// Listens on a given port (0: any free one).
    pub async fn start_on(port: u16) -> Self {
        Self::start_with(port, None).await
    }

    /// A server that offers AUTH PLAIN and takes only this user name and password.
    #[allow(dead_code)]
    pub async fn start_with_login(user: &'static str, password: &'static str) -> Self {
        Self::start_with(0, Some((user, password))).await
    }

    async fn start_with(port: u16, login: Login) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let store = received.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    let _ = session(socket, store, login).await;
                });
            }
        });
        Self { port, received }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn messages(&self) -> Vec<ReceivedEmail> {
        self.received.lock().unwrap().clone()
    }

    /// Waits up to 5 s for at least `n` messages.
    pub async fn wait_for(&self, n: usize) -> Vec<ReceivedEmail> {
        for _ in 0..100 {
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        self.messages()
    }
}

async fn session(
    socket: tokio::net::TcpStream,
    store: Arc<Mutex<Vec<ReceivedEmail>>>,
    login: Login,
) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 test-smtp ready\r\n").await?;
    let mut to = Vec::new();
    while let Some(line) = lines.next_line().await? {
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            match login {
                Some(_) => write.write_all(b"250-test-smtp\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n").await?,
                None => write.write_all(b"250-test-smtp\r\n250 8BITMIME\r\n").await?,
            }
        } else if upper.starts_with("AUTH PLAIN") {
            use base64::Engine;
            let given = line.split_whitespace().nth(2).unwrap_or("");
            let decoded = base64::engine::general_purpose::STANDARD.decode(given).unwrap_or_default();
            let parts: Vec<&[u8]> = decoded.split(|b| *b == 0).collect();
            let good =
                login.is_some_and(|(u, p)| parts.len() == 3 && parts[1] == u.as_bytes() && parts[2] == p.as_bytes());
            match good {
                true => write.write_all(b"235 2.7.0 Authentication successful\r\n").await?,
                false => write.write_all(b"535 5.7.8 Authentication failed\r\n").await?,
            }
        } else if upper.starts_with("MAIL FROM") {
            to.clear();
            write.write_all(b"250 OK\r\n").await?;
        } else if upper.starts_with("RCPT TO") {
            to.push(line[8..].trim().trim_matches(|c| c == '<' || c == '>').to_owned());
            write.write_all(b"250 OK\r\n").await?;
        } else if upper.starts_with("DATA") {
            write.write_all(b"354 go ahead\r\n").await?;
            let mut data = String::new();
            while let Some(l) = lines.next_line().await? {
                if l == "." {
                    break;
                }
                data.push_str(&l);
                data.push('\n');
            }
            store.lock().unwrap().push(ReceivedEmail { to: to.clone(), data, at: std::time::Instant::now() });
            write.write_all(b"250 queued\r\n").await?;
        } else if upper.starts_with("QUIT") {
            write.write_all(b"221 bye\r\n").await?;
            break;
        } else {
            write.write_all(b"250 OK\r\n").await?;
        }
    }
    Ok(())
}
