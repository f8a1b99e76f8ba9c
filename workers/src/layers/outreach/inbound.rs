//! Mail that comes back: replies, auto-replies, bounces and mailto unsubscribes,
//! posted raw (RFC 5322) to `POST /inbound/email` by the mailbox's forwarder.
//!
//! The message is read by `mail-parser` (MIME, encoded words, folded headers). It is
//! matched to ours by the `Message-ID`s it names: `In-Reply-To` and `References` for
//! replies, the returned message inside a delivery status notification (RFC 3464) for
//! bounces. Our Message-IDs are random, so naming one proves the sender saw our mail;
//! even so a bounce counts only when it reports the address that message went to, and
//! a mailed unsubscribe only when it comes from that address and names the message (by
//! threading, or by the signed id in the `List-Unsubscribe` mailto subject).
//!
//! An RFC 3834 `Auto-Submitted` message (or the common `X-Autoreply` /
//! `Precedence: auto_reply` markers) is not a reply; `X-Auto-Response-Suppress` asks
//! *us* not to auto-reply and marks nothing.

use super::compose::verify_unsubscribe_token;
use super::message::{bounce, record_reply};
use super::suppression::suppress;
use crate::{Ctx, JobError};
use cep_shared::vocabulary::EventKind;
use mail_parser::{HeaderValue, MessageParser, MimeHeaders, PartType};
use serde::Serialize;
use std::collections::HashSet;

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

/// A delivery status notification's findings (RFC 3464).
#[derive(Debug, Clone, Default)]
struct Report {
    failed: bool,
    /// `Final-Recipient` / `Original-Recipient` addresses, lower-cased.
    recipients: Vec<String>,
    /// The `<Message-ID>`s of the returned message.
    returned: Vec<String>,
}

/// A parsed inbound message: what matching and classifying need.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// Top-level headers, unfolded, values as written.
    headers: Vec<(String, String)>,
    from: String,
    to: Vec<String>,
    subject: String,
    /// `<id>`s from `In-Reply-To` then `References`, newest [`MAX_REFERENCED`], each once.
    referenced: Vec<String>,
    report: Option<Report>,
}

#[derive(Debug, thiserror::Error)]
#[error("not an email message: {0}")]
pub struct NotAMessage(String);

/// The most `<message-id>`s of one inbound message looked up: a long thread's newest.
pub const MAX_REFERENCED: usize = 100;

fn address_list(a: Option<&mail_parser::Address<'_>>) -> Vec<String> {
    a.map(|a| {
        a.iter()
            .filter_map(|a| a.address())
            .map(|a| a.trim().to_lowercase())
            .filter(|a| a.contains('@'))
            .collect()
    })
    .unwrap_or_default()
}

/// The ids a threading header names, in its order, with their angle brackets back.
fn ids_of(v: &HeaderValue<'_>) -> Vec<String> {
    match v {
        HeaderValue::Text(id) => vec![format!("<{id}>")],
        HeaderValue::TextList(ids) => ids.iter().map(|id| format!("<{id}>")).collect(),
        _ => Vec::new(),
    }
}

/// The newest `max` of `ids` (threads list the oldest first), each once, in order.
fn newest_unique(ids: Vec<String>, max: usize) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut kept: Vec<String> = ids
        .into_iter()
        .rev()
        .filter(|id| seen.insert(id.clone()))
        .take(max)
        .collect();
    kept.reverse();
    kept
}

/// `Name: value` fields of a delivery-status body, unfolded; its blank-line-separated
/// groups (per message, then per recipient) read as one list.
fn status_fields(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = out.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            out.push((name.trim().to_lowercase(), value.trim().to_owned()));
        }
    }
    out
}

/// A recipient field's address: `rfc822; gone@oak.example`.
fn report_address(value: &str) -> Option<String> {
    let addr = value.rsplit(';').next()?.trim();
    let addr = addr.trim_start_matches('<').trim_end_matches('>');
    Some(addr.to_lowercase()).filter(|a| a.contains('@'))
}

fn read_report(m: &mail_parser::Message<'_>) -> Option<Report> {
    let ct = m.content_type()?;
    let is_report = ct.ctype().eq_ignore_ascii_case("multipart")
        && ct
            .subtype()
            .is_some_and(|s| s.eq_ignore_ascii_case("report"))
        && ct
            .attribute("report-type")
            .is_some_and(|t| t.to_lowercase().contains("delivery-status"));
    if !is_report {
        return None;
    }
    let mut report = Report::default();
    let mut actions = Vec::new();
    for part in &m.parts {
        let Some(pct) = part.content_type() else {
            continue;
        };
        let kind = (
            pct.ctype().to_lowercase(),
            pct.subtype().unwrap_or("").to_lowercase(),
        );
        match (kind.0.as_str(), kind.1.as_str()) {
            ("message", "delivery-status" | "global-delivery-status") => {
                let text = String::from_utf8_lossy(part.contents());
                for (name, value) in status_fields(&text) {
                    match name.as_str() {
                        "action" => actions.push(value.to_lowercase()),
                        "status" if value.trim_start().starts_with('5') => report.failed = true,
                        "final-recipient" | "original-recipient" => {
                            report.recipients.extend(report_address(&value))
                        }
                        _ => {}
                    }
                }
            }
            ("text", "rfc822-headers") | ("message", "rfc822-headers") => {
                // The part may end without a line break, which the header parser needs.
                let mut headers = part.contents().to_vec();
                headers.extend_from_slice(b"\r\n\r\n");
                if let Some(returned) = MessageParser::default().parse_headers(&headers)
                    && let Some(id) = returned.message_id()
                {
                    report.returned.push(format!("<{id}>"));
                }
            }
            _ => {
                if let PartType::Message(returned) = &part.body
                    && let Some(id) = returned.message_id()
                {
                    report.returned.push(format!("<{id}>"));
                }
            }
        }
    }
    report.failed |= actions.iter().any(|a| a == "failed");
    Some(report)
}

/// Reads a raw RFC 5322 message; refuses one with no `From` address.
pub fn parse(raw: &[u8]) -> Result<Inbound, NotAMessage> {
    let m = MessageParser::default()
        .parse(raw)
        .ok_or_else(|| NotAMessage("it could not be read as RFC 5322".into()))?;
    let from = address_list(m.from())
        .into_iter()
        .next()
        .ok_or_else(|| NotAMessage("it has no From address".into()))?;
    let headers = m
        .headers_raw()
        .map(|(name, value)| {
            let unfolded: Vec<&str> = value
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            (name.to_owned(), unfolded.join(" "))
        })
        .collect();
    let mut referenced = ids_of(m.in_reply_to());
    referenced.extend(ids_of(m.references()));
    Ok(Inbound {
        headers,
        from,
        to: address_list(m.to()),
        subject: m.subject().unwrap_or("").trim().to_owned(),
        referenced: newest_unique(referenced, MAX_REFERENCED),
        report: read_report(&m),
    })
}

impl Inbound {
    /// A top-level header's value as written, unfolded.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The sender's bare address, lower-cased.
    pub fn from_address(&self) -> &str {
        &self.from
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
        if let Some(report) = &self.report {
            return if report.failed {
                Kind::HardBounce
            } else {
                Kind::SoftBounce
            };
        }
        let to_unsubscribe = self.to.iter().any(|a| a.starts_with("unsubscribe@"));
        if to_unsubscribe || self.subject.to_lowercase().starts_with("unsubscribe") {
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
        let mut ids = self.referenced.clone();
        if let Some(report) = &self.report {
            ids.extend(report.returned.iter().cloned());
        }
        newest_unique(ids, MAX_REFERENCED)
    }

    /// The message row a mailed unsubscribe names in its subject,
    /// `unsubscribe <row id> <token>`, when the token verifies under `key`.
    fn signed_subject_row(&self, key: Option<&str>) -> Option<String> {
        let key = key?;
        let mut words = self.subject.split_whitespace().skip(1);
        let (row, token) = (words.next()?, words.next()?);
        verify_unsubscribe_token(key, row, token).then(|| row.to_owned())
    }
}

/// What was done with an inbound message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Handled {
    pub kind: Kind,
    /// Our message it answers, when one matched.
    pub message: Option<String>,
    /// Why nothing was changed, when nothing was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored: Option<&'static str>,
}

/// One of our messages: its row, and the address it went to.
struct Ours {
    row: String,
    address: Option<String>,
}

async fn our_messages(
    ctx: &Ctx,
    column: &str,
    keys: &[String],
) -> Result<Vec<(String, Ours)>, JobError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (1..=keys.len()).map(|n| format!("${n}")).collect();
    let sql = format!(
        "SELECT {column}, id, address FROM messages WHERE {column} IN ({})",
        placeholders.join(", ")
    );
    let mut q = sqlx::query_as::<_, (String, String, Option<String>)>(sqlx::AssertSqlSafe(sql));
    for key in keys {
        q = q.bind(key);
    }
    let rows = q.fetch_all(ctx.store.pool()).await?;
    Ok(rows
        .into_iter()
        .map(|(key, row, address)| (key, Ours { row, address }))
        .collect())
}

/// The latest of our messages that `ids` names (threads quote older ones first), in
/// one query.
async fn matching_message(ctx: &Ctx, ids: &[String]) -> Result<Option<Ours>, JobError> {
    let mut rows = our_messages(ctx, "message_id", ids).await?;
    Ok(ids.iter().rev().find_map(|id| {
        rows.iter()
            .position(|(key, _)| key == id)
            .map(|i| rows.swap_remove(i).1)
    }))
}

fn went_to(ours: &Ours, address: &str) -> bool {
    ours.address
        .as_deref()
        .is_some_and(|a| a.eq_ignore_ascii_case(address))
}

/// Classifies `m`, matches it to our message and applies it.
pub async fn handle(ctx: &Ctx, m: &Inbound) -> Result<Handled, JobError> {
    let kind = m.kind();
    let now = ctx.now();
    let mut matched = matching_message(ctx, &m.referenced_ids()).await?;
    if matched.is_none()
        && kind == Kind::Unsubscribe
        && let Some(row) = m.signed_subject_row(ctx.secrets.unsubscribe_key.as_deref())
    {
        matched = our_messages(ctx, "id", &[row]).await?.pop().map(|(_, o)| o);
    }
    let message = matched.as_ref().map(|o| o.row.clone());
    let mut ignored = None;
    match (&kind, &matched) {
        (Kind::Reply, Some(ours)) => {
            record_reply(ctx, &ours.row, now).await?;
        }
        (Kind::HardBounce, Some(ours)) => {
            let reported = m
                .report
                .as_ref()
                .map(|r| r.recipients.as_slice())
                .unwrap_or_default();
            if reported.iter().any(|a| went_to(ours, a)) {
                bounce(ctx, &ours.row, "reported by the receiving server", now).await?;
            } else {
                ignored = Some("the report does not name the address that message went to");
            }
        }
        (Kind::Unsubscribe, Some(ours)) => {
            if went_to(ours, m.from_address()) {
                suppress(ctx, m.from_address(), "unsubscribed by mail", now).await?;
            } else {
                ignored = Some("it does not come from the address that message went to");
            }
        }
        (Kind::AutoReply | Kind::SoftBounce, Some(ours)) => {
            let event = if kind == Kind::AutoReply {
                EventKind::AutoReply
            } else {
                EventKind::SoftBounce
            };
            ctx.store
                .record_event(
                    ctx.store.pool(),
                    event,
                    &ours.row,
                    serde_json::json!({}),
                    now,
                )
                .await?;
        }
        (_, None) => ignored = Some("it names none of our messages"),
    }
    if let Some(why) = ignored {
        tracing::debug!(kind = ?kind, why, "inbound mail changed nothing");
    }
    Ok(Handled {
        kind,
        message,
        ignored,
    })
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
        assert_eq!(m.from_address(), "ana@oak.example");
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
        let dsn = "From: MAILER-DAEMON@mx.example\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\n\n--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example\n\nFinal-Recipient: rfc822; gone@oak.example\nAction: failed\nStatus: 5.1.1\n\n--b\nContent-Type: text/rfc822-headers\n\nSubject: A few quick wins\nMessage-ID: <msg_9@agency.example>\n--b--\n";
        let m = msg(dsn);
        assert_eq!(m.kind(), Kind::HardBounce);
        assert_eq!(m.referenced_ids(), ["<msg_9@agency.example>"]);
        let delayed = dsn
            .replace("Action: failed", "Action: delayed")
            .replace("5.1.1", "4.4.1");
        assert_eq!(msg(&delayed).kind(), Kind::SoftBounce);
    }

    #[test]
    fn encoded_words_and_multipart_bodies_are_decoded() {
        let m = msg(
            "From: =?utf-8?q?Jos=C3=A9?= <Jose@Oak.example>\r\nTo: =?utf-8?b?dW5zdWI=?= <unsubscribe@agency.example>\r\nSubject: =?utf-8?q?unsubscribe_msg=5F1_abc?=\r\nContent-Type: multipart/alternative; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nplease stop\r\n--x--\r\n",
        );
        assert_eq!(m.from_address(), "jose@oak.example");
        assert_eq!(m.kind(), Kind::Unsubscribe);
        assert_eq!(m.subject, "unsubscribe msg_1 abc");
    }

    #[test]
    fn text_without_headers_is_not_a_message() {
        assert!(parse(b"hello there").is_err());
    }
}
