//! Email for real: a pooled lettre SMTP transport (plain, STARTTLS or implicit TLS),
//! sending exactly the headers [`super::compose`] recorded.
//!
//! What an SMTP error means for the message decides whether it may ever go again:
//! an explicit 4xx or 5xx reply, a refused connection or a failed TLS handshake mean the
//! server never took it; anything else (a timeout, a connection that broke mid-way) may
//! have come after the server accepted it, so the outcome is unknown.

use cep_shared::Secrets;
use cep_shared::config::{SmtpProviders, SmtpTls};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::{AsyncSmtpTransport, PoolConfig};
use lettre::{AsyncTransport, Tokio1Executor};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One composed message: its headers in order, and its body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Composed {
    pub message_id: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    server: String,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("server", &self.server)
            .finish()
    }
}

/// How a send ended when it did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendFailure {
    /// The server refused it for good (5xx): a bad address, a policy rejection.
    Rejected(String),
    /// The server never took it and may later (4xx, refused connection, TLS): retry.
    NotSent(String),
    /// It may or may not have been accepted: never resend blindly.
    Unknown(String),
}

impl Mailer {
    pub fn new(s: &SmtpProviders, secrets: &Secrets) -> anyhow::Result<Self> {
        let tls = match s.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::Starttls => Tls::Required(TlsParameters::new(s.host.clone())?),
            SmtpTls::Tls => Tls::Wrapper(TlsParameters::new(s.host.clone())?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host)
            .port(s.port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(s.timeout_seconds)))
            .pool_config(PoolConfig::new().max_size(s.pool_size));
        if let (Some(user), Some(password)) = (&s.username, &secrets.smtp_password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Self {
            transport: builder.build(),
            server: format!("{}:{}", s.host, s.port),
        })
    }

    /// Sends one composed email.
    pub async fn send(&self, m: &Composed, at_millis: i64) -> Result<(), SendFailure> {
        let message = build(m, at_millis).map_err(SendFailure::Rejected)?;
        self.send_message(message).await
    }

    /// Sends a message built whole (a report with its PDF attached, say).
    pub async fn send_message(&self, message: Message) -> Result<(), SendFailure> {
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) => Err(classify(&self.server, &e)),
        }
    }
}

fn header<'a>(m: &'a Composed, name: &str) -> Option<&'a str> {
    m.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn mailbox(m: &Composed, name: &str) -> Result<Mailbox, String> {
    let v = header(m, name).ok_or_else(|| format!("the message has no {name} header"))?;
    v.parse::<Mailbox>()
        .map_err(|e| format!("{name} `{v}` is not an address: {e}"))
}

/// Headers the builder writes itself (encoded as RFC 5322 requires).
const SET_BY_BUILDER: [&str; 7] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
];

/// The lettre message for `m`: the same headers, encoded as RFC 5322 requires.
pub fn build(m: &Composed, at_millis: i64) -> Result<Message, String> {
    let date = std::time::UNIX_EPOCH + Duration::from_millis(at_millis.max(0) as u64);
    let mut b = Message::builder()
        .from(mailbox(m, "From")?)
        .to(mailbox(m, "To")?)
        .subject(header(m, "Subject").unwrap_or_default())
        .date(date)
        .message_id(m.message_id.clone());
    for (name, value) in &m.headers {
        if SET_BY_BUILDER.iter().any(|k| k.eq_ignore_ascii_case(name)) {
            continue;
        }
        let name = HeaderName::new_from_ascii(name.clone())
            .map_err(|_| format!("`{name}` is not a header name"))?;
        b = b.raw_header(HeaderValue::new(name, value.clone()));
    }
    b.header(ContentType::TEXT_PLAIN)
        .body(m.body.clone())
        .map_err(|e| format!("the message does not build: {e}"))
}

fn never_connected(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            return matches!(io.kind(), ConnectionRefused | AddrNotAvailable | NotFound);
        }
        cur = err.source();
    }
    false
}

fn classify(server: &str, e: &lettre::transport::smtp::Error) -> SendFailure {
    let what = format!("smtp {server}: {e}");
    if e.is_permanent() {
        SendFailure::Rejected(what)
    } else if e.is_transient() || e.is_tls() || e.is_client() || never_connected(e) {
        SendFailure::NotSent(what)
    } else {
        SendFailure::Unknown(what)
    }
}
