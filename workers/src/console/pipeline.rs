//! `GET /pipeline`: prospects by stage, filtered by city, category, class, the
//! prospecting run that found them and the dates they last moved, newest first, a page
//! at a time. Paging is by key (the last row's time and id), and each stage's count
//! stops at [`COUNT_CAP`], so a page costs the same with a million prospects.

use super::layout::{self, url_path, when};
use super::session::{Refusal, Signed};
use crate::{Ctx, JobError};
use axum::extract::{Query, State};
use axum::response::Response;
use maud::{Markup, html};

/// Rows per page.
pub const PAGE: i64 = 50;
/// A stage's count is exact up to this many, then shown as "1000+".
pub const COUNT_CAP: i64 = 1000;

/// Where a prospect stands, as the pipeline board shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    NeedsData,
    NotQualified,
    Qualified,
    Pitched,
    Contacted,
    Replied,
    Booked,
    Held,
    Won,
    Lost,
    Stopped,
}

impl Stage {
    pub const ALL: [Stage; 11] = [
        Stage::NeedsData,
        Stage::Qualified,
        Stage::Pitched,
        Stage::Contacted,
        Stage::Replied,
        Stage::Booked,
        Stage::Held,
        Stage::Won,
        Stage::Lost,
        Stage::Stopped,
        Stage::NotQualified,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::NeedsData => "needs_data",
            Stage::NotQualified => "not_qualified",
            Stage::Qualified => "qualified",
            Stage::Pitched => "pitched",
            Stage::Contacted => "contacted",
            Stage::Replied => "replied",
            Stage::Booked => "booked",
            Stage::Held => "held",
            Stage::Won => "won",
            Stage::Lost => "lost",
            Stage::Stopped => "stopped",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Stage::NeedsData => "Needs data",
            Stage::NotQualified => "Not qualified",
            Stage::Qualified => "Qualified",
            Stage::Pitched => "Pitched",
            Stage::Contacted => "Contacted",
            Stage::Replied => "Replied",
            Stage::Booked => "Booked",
            Stage::Held => "Held",
            Stage::Won => "Won",
            Stage::Lost => "Lost",
            Stage::Stopped => "Opted out or bounced",
        }
    }

    /// The stage's condition on `p` (prospects); constants only, no input.
    fn condition(self) -> &'static str {
        match self {
            Stage::NeedsData => "p.lead_class = 'needs_data'",
            Stage::NotQualified => "p.status = 'new' AND p.lead_class IN ('cold', 'not_qualified')",
            Stage::Qualified => "p.status = 'new' AND p.lead_class IN ('hot', 'warm')",
            Stage::Pitched => "p.status = 'pitched'",
            Stage::Contacted => "p.status = 'contacted'",
            Stage::Replied => "p.status = 'replied'",
            Stage::Booked => {
                "p.status = 'booked' AND NOT EXISTS (SELECT 1 FROM meetings m WHERE m.prospect_id = p.id AND m.status = 'held')"
            }
            Stage::Held => {
                "p.status = 'booked' AND EXISTS (SELECT 1 FROM meetings m WHERE m.prospect_id = p.id AND m.status = 'held')"
            }
            Stage::Won => "p.status = 'client'",
            Stage::Lost => "p.status = 'lost'",
            Stage::Stopped => "p.status = 'stopped'",
        }
    }
}

impl std::str::FromStr for Stage {
    type Err = JobError;
    fn from_str(s: &str) -> Result<Self, JobError> {
        Stage::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Stage::ALL.iter().map(|x| x.as_str()).collect();
                JobError::Invalid(format!("`{s}` is not a stage: {}", names.join(", ")))
            })
    }
}

/// The board's filters, as the query string carries them; empty means any.
#[derive(Debug, Default, Clone, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct Filters {
    pub stage: String,
    /// A text of the business's name or email, any case.
    pub name: String,
    pub city: String,
    pub category: String,
    pub class: String,
    /// The prospecting run's day that found it (`2026-01-05`).
    pub campaign: String,
    /// Moved on or after this day.
    pub from: String,
    /// Moved on or before this day.
    pub to: String,
    /// The last row of the page before: `<updated_at>.<id>`.
    pub after: String,
}

/// A row of the board.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Row {
    pub id: String,
    pub name: String,
    pub category: String,
    pub location: String,
    pub lead_class: String,
    pub gbp_score: i64,
    pub coverage: f64,
    pub status: String,
    pub updated_at: i64,
}

/// The most characters a text filter keeps.
const MAX_FILTER: usize = 100;

fn day_millis(text: &str, end: bool, what: &str) -> Result<Option<i64>, JobError> {
    if text.is_empty() {
        return Ok(None);
    }
    let d = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| JobError::Invalid(format!("`{what}` {text:?} is not a date (2026-01-31)")))?;
    let d = if end { d + chrono::Days::new(1) } else { d };
    Ok(Some(
        d.and_hms_opt(0, 0, 0)
            .unwrap_or_default()
            .and_utc()
            .timestamp_millis(),
    ))
}

fn text<'a>(value: &'a str, what: &str) -> Result<Option<&'a str>, JobError> {
    let v = value.trim();
    if v.chars().count() > MAX_FILTER {
        return Err(JobError::Invalid(format!(
            "`{what}` is longer than {MAX_FILTER} characters"
        )));
    }
    Ok((!v.is_empty()).then_some(v))
}

/// A `LIKE` pattern matching `text` anywhere, any case, its wildcards taken literally.
fn contains(text: &str) -> String {
    let mut p = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// One page of the board for `f`, and whether there is a next.
pub async fn rows(ctx: &Ctx, stage: Stage, f: &Filters) -> Result<(Vec<Row>, bool), JobError> {
    let (after_at, after_id) = match f.after.split_once('.') {
        Some((at, id)) => (
            Some(at.parse::<i64>().map_err(|_| {
                JobError::Invalid(format!("`after` {:?} is not a page position", f.after))
            })?),
            Some(id.to_owned()),
        ),
        None if f.after.is_empty() => (None, None),
        None => {
            return Err(JobError::Invalid(format!(
                "`after` {:?} is not a page position",
                f.after
            )));
        }
    };
    let sql = format!(
        "SELECT p.id, p.name, p.category, p.location, p.lead_class, p.gbp_score, p.coverage, p.status, p.updated_at
           FROM prospects p
          WHERE {}
            AND ($1 IS NULL OR p.location = $1) AND ($2 IS NULL OR p.category = $2)
            AND ($3 IS NULL OR p.lead_class = $3) AND ($4 IS NULL OR p.first_period = $4)
            AND ($5 IS NULL OR p.updated_at >= $5) AND ($6 IS NULL OR p.updated_at < $6)
            AND ($7 IS NULL OR p.updated_at < $7 OR (p.updated_at = $7 AND p.id < $8))
            AND ($10 IS NULL OR LOWER(p.name) LIKE $10 ESCAPE '\\' OR LOWER(p.email) LIKE $10 ESCAPE '\\')
          ORDER BY p.updated_at DESC, p.id DESC LIMIT $9",
        stage.condition()
    );
    let mut rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(text(&f.city, "city")?)
        .bind(text(&f.category, "category")?)
        .bind(text(&f.class, "class")?)
        .bind(text(&f.campaign, "campaign")?)
        .bind(day_millis(&f.from, false, "from")?)
        .bind(day_millis(&f.to, true, "to")?)
        .bind(after_at)
        .bind(after_id)
        .bind(PAGE + 1)
        .bind(text(&f.name, "name")?.map(contains))
        .fetch_all(ctx.store.pool())
        .await?;
    let more = rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    Ok((rows, more))
}

/// How many prospects are at `stage`, up to [`COUNT_CAP`].
pub async fn count(ctx: &Ctx, stage: Stage) -> Result<i64, JobError> {
    let sql = format!(
        "SELECT COUNT(*) FROM (SELECT 1 FROM prospects p WHERE {} LIMIT {COUNT_CAP}) capped",
        stage.condition()
    );
    let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_one(ctx.store.pool())
        .await?;
    Ok(n)
}

fn link(f: &Filters, stage: Stage, after: Option<String>) -> String {
    let mut q = f.clone();
    q.stage = stage.as_str().into();
    q.after = after.unwrap_or_default();
    let pairs: Vec<(&str, &str)> = [
        ("stage", q.stage.as_str()),
        ("name", q.name.as_str()),
        ("city", q.city.as_str()),
        ("category", q.category.as_str()),
        ("class", q.class.as_str()),
        ("campaign", q.campaign.as_str()),
        ("from", q.from.as_str()),
        ("to", q.to.as_str()),
        ("after", q.after.as_str()),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .collect();
    let mut url = url::form_urlencoded::Serializer::new(String::new());
    url.extend_pairs(pairs);
    format!("/pipeline?{}", url.finish())
}

/// `GET /pipeline`.
pub async fn page(
    State(ctx): State<Ctx>,
    signed: Signed,
    Query(f): Query<Filters>,
) -> Result<Response, Refusal> {
    let stage: Stage = if f.stage.is_empty() {
        Stage::Qualified
    } else {
        f.stage.parse()?
    };
    let (rows, more) = rows(&ctx, stage, &f).await?;
    let mut counts = Vec::new();
    for s in Stage::ALL {
        counts.push((s, count(&ctx, s).await?));
    }
    let nav = super::waiting::counts(&ctx).await?;
    let body = html! {
        nav.tabs {
            @for (s, n) in &counts {
                a href=(link(&f, *s, None)) class=[(*s == stage).then_some("on")] {
                    (s.label()) " " span.muted { (n) @if *n >= COUNT_CAP { "+" } }
                }
            }
        }
        (filters(&f, stage))
        @if rows.is_empty() { p { "No prospect here with these filters." } }
        @else {
            div.wrap { table {
                tr { th { "Business" } th { "Category" } th { "City" } th { "Class" } th { "Score" } th { "Moved" } }
                @for r in &rows {
                    tr {
                        td { a href=(format!("/prospects/{}", url_path(&r.id))) { (r.name) } }
                        td { (r.category) }
                        td { (r.location) }
                        td { (r.lead_class) }
                        td { (r.gbp_score) " " span.muted { "(" (format!("{:.0}", r.coverage * 100.0)) " % known)" } }
                        td { (when(r.updated_at)) }
                    }
                }
            } }
            @if more {
                @if let Some(last) = rows.last() {
                    p { a href=(link(&f, stage, Some(format!("{}.{}", last.updated_at, last.id)))) { "Next page" } }
                }
            }
        }
    };
    Ok(layout::page(
        signed.shown(),
        "/pipeline",
        "Pipeline",
        nav,
        body,
    ))
}

fn filters(f: &Filters, stage: Stage) -> Markup {
    html! {
        form.filters method="get" action="/pipeline" {
            input type="hidden" name="stage" value=(stage.as_str());
            input type="search" name="name" placeholder="Name or email" value=(f.name) aria-label="name or email";
            input name="city" placeholder="City (Miami, FL)" value=(f.city) aria-label="city";
            input name="category" placeholder="Category" value=(f.category) aria-label="category";
            select name="class" aria-label="lead class" {
                option value="" { "any class" }
                @for c in ["hot", "warm", "cold", "not_qualified", "needs_data"] {
                    option value=(c) selected[f.class == c] { (c) }
                }
            }
            input name="campaign" placeholder="Found on (2026-01-05)" value=(f.campaign) aria-label="campaign";
            input type="date" name="from" value=(f.from) aria-label="moved from";
            input type="date" name="to" value=(f.to) aria-label="moved to";
            button { "Filter" }
        }
    }
}
