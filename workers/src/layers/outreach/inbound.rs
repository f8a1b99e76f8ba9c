//! Mail that comes back: replies, auto-replies, bounces and mailto unsubscribes,
//! posted raw (RFC 5322) to `POST /inbound/email` by the mailbox's forwarder.
//!
//! A message is matched to ours by the `Message-ID`s it names: `In-Reply-To` and
//! `References` for replies, the returned headers inside a delivery status
//! notification (RFC 3464) for bounces. An RFC 3834 `Auto-Submitted` message (or the
//! common `X-Autoreply` / `Precedence: auto_reply` markers) is not a reply; note that
//! `X-Auto-Response-Suppress` asks *us* not to auto-reply and marks nothing.

use super::message::{bounce, record_reply};
use super::suppression::suppress;
use crate::{Ctx, JobError};
use cep_shared::vocabulary::EventKind;
use serde::Serialize;

/// What an inbound message is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Reply,
    AutoReply,
    /// Permanent failure (`Status: 5.x.x`, `Action: failed`).
    HardBounce,
    /// Temporary (`Status: 4.x.x`, `Action: delayed`): the server keeps trying.
    SoftBounce,
    /// A mail to the `mailto:` of `List-Unsubscribe`.
    Unsubscribe,
}

/// A parsed inbound message: its top-level headers (unfolded), and the body.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub headers: Vec<(String, String)>,
    pub body: String,
}

#[derive(Debug, thiserror::Error)]
#[error("not an email message: {0}")]
pub struct NotAMessage(String);

/// Splits headers from body and unfolds continuation lines.
pub fn parse(raw: &[u8]) -> Result<Inbound, NotAMessage> {
    let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap_or((text.as_str(), ""));
    let headers = parse_headers(head);
    if headers.is_empty() || !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("from")) {
        return Err(NotAMessage("it has no From header".into()));
    }
    Ok(Inbound {
        headers,
        body: body.to_owned(),
    })
}

fn parse_headers(head: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = out.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':')
            && !name.is_empty()
            && !name.contains(' ')
        {
            out.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    out
}

impl Inbound {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The sender's bare address.
    pub fn from_address(&self) -> Option<String> {
        let from = self.header("from")?;
        let addr = match (from.rfind('<'), from.rfind('>')) {
            (Some(a), Some(b)) if a < b => &from[a + 1..b],
            _ => from,
        };
        Some(addr.trim().to_lowercase()).filter(|a| a.contains('@'))
    }

    fn is_delivery_report(&self) -> bool {
        let ct = self.header("content-type").unwrap_or("").to_lowercase();
        ct.contains("multipart/report") && ct.contains("delivery-status")
    }

    /// The per-message and per-recipient fields of a delivery report (RFC 3464), with
    /// the returned message's headers after them.
    fn report_fields(&self) -> Vec<(String, String)> {
        parse_headers(&self.body.replace("\n\n", "\n"))
    }

    fn is_auto_submitted(&self) -> bool {
        let auto = self
            .header("auto-submitted")
            .is_some_and(|v| !v.trim().eq_ignore_ascii_case("no"));
        let precedence = self
            .header("precedence")
            .map(|v| v.trim().to_lowercase())
            .is_some_and(|v| matches!(v.as_str(), "auto_reply" | "bulk" | "junk"));
        auto || precedence
            || self.header("x-autoreply").is_some()
            || self.header("x-autorespond").is_some()
    }

    pub fn kind(&self) -> Kind {
        if self.is_delivery_report() {
            let fields = self.report_fields();
            let field = |name: &str| {
                fields
                    .iter()
                    .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.to_lowercase())
                    .collect::<Vec<_>>()
            };
            let failed = field("action").iter().any(|a| a == "failed")
                || field("status").iter().any(|s| s.starts_with('5'));
            return if failed {
                Kind::HardBounce
            } else {
                Kind::SoftBounce
            };
        }
        let to = self.header("to").unwrap_or("").to_lowercase();
        let subject = self.header("subject").unwrap_or("").trim().to_lowercase();
        if to.contains("unsubscribe@") || subject.starts_with("unsubscribe") {
            return Kind::Unsubscribe;
        }
        if self.is_auto_submitted() {
            Kind::AutoReply
        } else {
            Kind::Reply
        }
    }

    /// Every `<message-id>` this message refers to: its threading headers, and for a
    /// delivery report the returned message's own `Message-ID`.
    pub fn referenced_ids(&self) -> Vec<String> {
        let mut text = String::new();
        for name in ["in-reply-to", "references"] {
            if let Some(v) = self.header(name) {
                text.push_str(v);
                text.push(' ');
            }
        }
        if self.is_delivery_report() {
            for (n, v) in self.report_fields() {
                if n.eq_ignore_ascii_case("message-id") {
                    text.push_str(&v);
                    text.push(' ');
                }
            }
        }
        let mut found: Vec<&str> = Vec::new();
        let mut rest = text.as_str();
        while let Some(start) = rest.find('<') {
            let Some(len) = rest[start..].find('>') else {
                break;
            };
            found.push(&rest[start..start + len + 1]);
            rest = &rest[start + len + 1..];
        }
        // Threads list the oldest first: the newest [`MAX_REFERENCED`] ids, each once,
        // in their order.
        let mut seen = std::collections::HashSet::new();
        let mut ids: Vec<String> = found
            .into_iter()
            .rev()
            .filter(|id| seen.insert(*id))
            .take(MAX_REFERENCED)
            .map(str::to_owned)
            .collect();
        ids.reverse();
        ids
    }
}

/// What was done with an inbound message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Handled {
    pub kind: Kind,
    /// Our message it answers, when one matched.
    pub message: Option<String>,
}

/// The most `<message-id>`s of one inbound message looked up: a long thread's newest.
pub const MAX_REFERENCED: usize = 100;

async fn matching_message(ctx: &Ctx, ids: &[String]) -> Result<Option<(String, String)>, JobError> {
    if ids.is_empty() {
        return Ok(None);
    }
    // One query for them all; the latest of ours it names wins (threads quote older
    // ones first).
    let placeholders: Vec<String> = (1..=ids.len()).map(|n| format!("${n}")).collect();
    let sql = format!(
        "SELECT id, prospect_id, message_id FROM messages WHERE message_id IN ({})",
        placeholders.join(", ")
    );
    let mut q = sqlx::query_as::<_, (String, String, String)>(sqlx::AssertSqlSafe(sql));
    for id in ids {
        q = q.bind(id);
    }
    let rows = q.fetch_all(ctx.store.pool()).await?;
    Ok(ids.iter().rev().find_map(|id| {
        rows.iter()
            .find(|r| &r.2 == id)
            .map(|r| (r.0.clone(), r.1.clone()))
    }))
}

/// Classifies `m`, matches it to our message and applies it.
pub async fn handle(ctx: &Ctx, m: &Inbound) -> Result<Handled, JobError> {
    let kind = m.kind();
    let now = ctx.now();
    let matched = matching_message(ctx, &m.referenced_ids()).await?;
    let message = matched.as_ref().map(|(id, _)| id.clone());
    match (&kind, &matched) {
        (Kind::Reply, Some((id, _))) => {
            record_reply(ctx, id, now).await?;
        }
        (Kind::HardBounce, Some((id, _))) => {
            bounce(ctx, id, "reported by the receiving server", now).await?;
        }
        (Kind::Unsubscribe, _) => {
            if let Some(address) = m.from_address() {
                suppress(ctx, &address, "unsubscribed by mail", now).await?;
            }
        }
        (Kind::AutoReply | Kind::SoftBounce, Some((id, _))) => {
            let event = if kind == Kind::AutoReply {
                EventKind::AutoReply
            } else {
                EventKind::SoftBounce
            };
            ctx.store
                .record_event(ctx.store.pool(), event, id, serde_json::json!({}), now)
                .await?;
        }
        _ => {}
    }
    Ok(Handled { kind, message })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(raw: &str) -> Inbound {
        parse(raw.as_bytes()).unwrap()
    }

    #[test]
    fn a_thread_of_thousands_of_references_keeps_its_newest_ids_once_each() {
        let mut refs: Vec<String> = (0..64_000).map(|n| format!("<m{n}@x>")).collect();
        refs.push("<m63999@x>".into());
        let raw = format!(
            "From: a@b.example\r\nSubject: Re: hi\r\nReferences: {}\r\n\r\nok",
            refs.join(" ")
        );
        let m = parse(raw.as_bytes()).unwrap();
        let ids = m.referenced_ids();
        assert_eq!(ids.len(), MAX_REFERENCED);
        assert_eq!(ids.first().unwrap(), "<m63900@x>");
        assert_eq!(ids.last().unwrap(), "<m63999@x>");
    }

    #[test]
    fn a_reply_names_our_message_through_folded_references() {
        let m = msg(
            "From: Ana <ana@oak.example>\r\nSubject: Re: hi\r\nReferences: <a@x>\r\n <msg_1@agency.example>\r\n\r\nyes please",
        );
        assert_eq!(m.kind(), Kind::Reply);
        assert_eq!(m.referenced_ids(), ["<a@x>", "<msg_1@agency.example>"]);
        assert_eq!(m.from_address().as_deref(), Some("ana@oak.example"));
    }

    #[test]
    fn auto_submitted_is_an_auto_reply_but_x_auto_response_suppress_is_not() {
        let ooo =
            msg("From: a@b.example\nAuto-Submitted: auto-replied\nIn-Reply-To: <m@x>\n\naway");
        assert_eq!(ooo.kind(), Kind::AutoReply);
        let human =
            msg("From: a@b.example\nAuto-Submitted: no\nX-Auto-Response-Suppress: All\n\nhi");
        assert_eq!(human.kind(), Kind::Reply);
    }

    #[test]
    fn a_delivery_report_is_a_bounce_naming_the_returned_message() {
        let dsn = "From: MAILER-DAEMON@mx.example\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\n\n--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example\n\nFinal-Recipient: rfc822; gone@oak.example\nAction: failed\nStatus: 5.1.1\n\n--b\nContent-Type: text/rfc822-headers\n\nMessage-ID: <msg_9@agency.example>\nSubject: A few quick wins\n--b--\n";
        let m = msg(dsn);
        assert_eq!(m.kind(), Kind::HardBounce);
        assert_eq!(m.referenced_ids(), ["<msg_9@agency.example>"]);
        let delayed = dsn
            .replace("Action: failed", "Action: delayed")
            .replace("5.1.1", "4.4.1");
        assert_eq!(msg(&delayed).kind(), Kind::SoftBounce);
    }

    #[test]
    fn text_without_headers_is_not_a_message() {
        assert!(parse(b"hello there").is_err());
    }
}
