//! The research engine: what the web says about a business, every fact with its
//! source. A web search (DuckDuckGo's HTML endpoint, best effort, or a SearxNG
//! instance), a Firecrawl scrape of the business's site, and a summary: by the
//! configured LLM when there is one (facts whose source is not one of ours are
//! dropped), else the sources' own titles and snippets. Results are cached (profile
//! analyses, 30 min by default) and logged in `research_logs`.

use crate::clients::llm::{self, Prompt};
use crate::clients::provider;
use crate::{Ctx, JobError};
use cep_shared::config::{Provider, ResearchSearch};
use cep_shared::ids::stable_id;
use serde::{Deserialize, Serialize};

/// A page research looked at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    pub url: String,
    pub title: String,
    pub snippet: String,
}

/// One fact and the URL it comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub fact: String,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Research {
    pub subject: String,
    pub query: String,
    pub sources: Vec<Source>,
    pub findings: Vec<Finding>,
    /// Who summarized: `sources` (their own words) or the LLM's provider.
    pub summary_by: String,
    /// Why a step gave nothing (a search that was refused, no website to scrape).
    pub notes: Vec<String>,
    /// Served from the cache, without calling anything.
    #[serde(default)]
    pub cached: bool,
}

/// Researches a prospect: its name and location searched, its website scraped.
pub async fn prospect(ctx: &Ctx, prospect_id: &str) -> Result<Research, JobError> {
    let key = format!("research:{prospect_id}");
    let ttl = ctx.settings.engines.research.cache.profile_analysis_seconds;
    let (mut research, hit) = provider::cached(ctx, &key, ttl, fresh(ctx, prospect_id)).await?;
    research.cached = hit;
    Ok(research)
}

/// Searches, scrapes and summarizes now, and logs it.
async fn fresh(ctx: &Ctx, prospect_id: &str) -> Result<Research, JobError> {
    let row: Option<(String, String, Option<String>)> =
        sqlx::query_as("SELECT name, location, website FROM prospects WHERE id = $1")
            .bind(prospect_id)
            .fetch_optional(ctx.store.pool())
            .await?;
    let (name, location, website) =
        row.ok_or_else(|| JobError::Invalid(format!("no prospect `{prospect_id}`")))?;
    let cfg = &ctx.settings.engines.research;
    let query = format!("{name} {location}");
    let mut notes = Vec::new();
    let mut sources = match cfg.provider {
        ResearchSearch::Offline => Vec::new(),
        ResearchSearch::Duckduckgo => duckduckgo(ctx, &query, &mut notes).await?,
        ResearchSearch::Searxng => searxng(ctx, &query).await?,
    };
    sources.truncate(cfg.max_results as usize);
    let site = website.or_else(|| sources.first().map(|s| s.url.clone()));
    if cfg.firecrawl {
        match &site {
            Some(url) => sources.insert(0, firecrawl(ctx, url).await?),
            None => notes.push("no website to scrape".into()),
        }
    }
    let (findings, summary_by) = summarize(ctx, &name, &sources, &mut notes).await?;
    let research = Research {
        subject: prospect_id.to_owned(),
        query,
        sources,
        findings,
        summary_by,
        notes,
        cached: false,
    };
    log(ctx, &research).await?;
    Ok(research)
}

async fn log(ctx: &Ctx, r: &Research) -> Result<(), JobError> {
    let now = ctx.now();
    let citations: Vec<&str> = r.findings.iter().map(|f| f.source.as_str()).collect();
    sqlx::query(
        "INSERT INTO research_logs (id, layer, query, result, citations, created_at, subject)
         VALUES ($1, 'research', $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
    )
    .bind(stable_id("research", &[&r.subject, &now.to_string()]))
    .bind(&r.query)
    .bind(serde_json::to_string(r)?)
    .bind(serde_json::to_string(&citations)?)
    .bind(now)
    .bind(&r.subject)
    .execute(ctx.store.pool())
    .await?;
    Ok(())
}

/// DuckDuckGo's HTML results page: best effort. Its "202" anomaly page (rate limited)
/// yields no results and a note, not a failed job.
async fn duckduckgo(
    ctx: &Ctx,
    query: &str,
    notes: &mut Vec<String>,
) -> Result<Vec<Source>, JobError> {
    let url = format!(
        "{}/html/",
        ctx.settings
            .engines
            .research
            .duckduckgo_url
            .trim_end_matches('/')
    );
    let req = ctx.http.post(url).form(&[("q", query)]);
    provider::take_budget(ctx, Provider::WebSearch, "").await?;
    let resp = req
        .send()
        .await
        .map_err(|e| JobError::Transient(format!("web_search: {}", e.without_url())))?;
    if resp.status().as_u16() == 202 || !resp.status().is_success() {
        notes.push(format!(
            "DuckDuckGo answered HTTP {} (rate limited): no search results",
            resp.status().as_u16()
        ));
        provider::count(Provider::WebSearch, "rate_limited");
        return Ok(Vec::new());
    }
    provider::count(Provider::WebSearch, "ok");
    let html = resp
        .text()
        .await
        .map_err(|e| JobError::Transient(format!("web_search: {}", e.without_url())))?;
    Ok(parse_duckduckgo(&html))
}

/// The results of DuckDuckGo's HTML page: `a.result__a` (a redirect whose `uddg`
/// parameter is the target) and `.result__snippet`.
pub fn parse_duckduckgo(html: &str) -> Vec<Source> {
    let mut out = Vec::new();
    for block in html.split("class=\"result__a\"").skip(1) {
        let Some(href) = attr(block, "href") else {
            continue;
        };
        let url = target_of(&href);
        let title = inner_text(block);
        let snippet = block
            .split_once("class=\"result__snippet\"")
            .map(|(_, rest)| inner_text(rest))
            .unwrap_or_default();
        if url.starts_with("http") && !out.iter().any(|s: &Source| s.url == url) {
            out.push(Source {
                url,
                title,
                snippet,
            });
        }
    }
    out
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let end = tag.find('>')?;
    let (_, rest) = tag[..end].split_once(&format!("{name}=\""))?;
    Some(unescape(&rest[..rest.find('"')?]))
}

/// The text up to the element's closing tag, tags stripped.
fn inner_text(from_attrs: &str) -> String {
    let Some(start) = from_attrs.find('>') else {
        return String::new();
    };
    let body = &from_attrs[start + 1..];
    let body = &body[..body
        .find("</a>")
        .or(body.find("</td>"))
        .unwrap_or(body.len())];
    let mut text = String::new();
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    unescape(&text.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn unescape(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

/// A DuckDuckGo redirect (`//duckduckgo.com/l/?uddg=<url>`) resolved to its target.
fn target_of(href: &str) -> String {
    let absolute = if href.starts_with("//") {
        format!("https:{href}")
    } else {
        href.to_owned()
    };
    reqwest::Url::parse(&absolute)
        .ok()
        .and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "uddg")
                .map(|(_, v)| v.into_owned())
        })
        .unwrap_or(absolute)
}

#[derive(Deserialize)]
struct SearxResults {
    #[serde(default)]
    results: Vec<SearxResult>,
}

#[derive(Deserialize)]
struct SearxResult {
    url: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    content: String,
}

async fn searxng(ctx: &Ctx, query: &str) -> Result<Vec<Source>, JobError> {
    let base = &ctx.settings.engines.research.searxng_url;
    let url = reqwest::Url::parse_with_params(
        &format!("{}/search", base.trim_end_matches('/')),
        &[("q", query), ("format", "json")],
    )
    .map_err(|e| JobError::Invalid(format!("engines.research.searxng_url: {e}")))?;
    let req = ctx.http.get(url);
    let found: SearxResults = provider::call(ctx, Provider::WebSearch, "", req)
        .await?
        .json()?;
    Ok(found
        .results
        .into_iter()
        .map(|r| Source {
            url: r.url,
            title: r.title,
            snippet: r.content,
        })
        .collect())
}

#[derive(Deserialize)]
struct Scraped {
    data: ScrapedData,
}

#[derive(Deserialize)]
struct ScrapedData {
    #[serde(default)]
    markdown: String,
    #[serde(default)]
    metadata: serde_json::Value,
}

async fn firecrawl(ctx: &Ctx, url: &str) -> Result<Source, JobError> {
    let cfg = &ctx.settings.engines.research;
    let req = ctx
        .http
        .post(format!(
            "{}/v2/scrape",
            cfg.firecrawl_url.trim_end_matches('/')
        ))
        .bearer_auth(ctx.secrets.firecrawl_api_key.as_deref().unwrap_or_default())
        .json(&serde_json::json!({ "url": url, "formats": ["markdown"], "onlyMainContent": true }));
    let scraped: Scraped = provider::call(ctx, Provider::Firecrawl, "", req)
        .await?
        .json()?;
    let meta = |k: &str| {
        scraped.data.metadata[k]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let text: String = scraped.data.markdown.chars().take(4000).collect();
    Ok(Source {
        url: url.to_owned(),
        title: meta("title"),
        snippet: if meta("description").is_empty() {
            text
        } else {
            format!("{}\n\n{text}", meta("description"))
        },
    })
}

#[derive(Deserialize)]
struct Facts {
    facts: Vec<Finding>,
}

/// The facts, each citing one of `sources`: the LLM's when it gives usable ones.
async fn summarize(
    ctx: &Ctx,
    name: &str,
    sources: &[Source],
    notes: &mut Vec<String>,
) -> Result<(Vec<Finding>, String), JobError> {
    let cited = |f: &Finding| sources.iter().any(|s| s.url == f.source);
    let own_words = || {
        sources
            .iter()
            .filter(|s| !s.snippet.is_empty() || !s.title.is_empty())
            .map(|s| Finding {
                fact: if s.snippet.is_empty() {
                    s.title.clone()
                } else {
                    s.snippet.chars().take(300).collect()
                },
                source: s.url.clone(),
            })
            .collect::<Vec<_>>()
    };
    let cfg = &ctx.settings.providers.llm;
    let Some(adapter) = llm::adapter(cfg.writer).filter(|_| !sources.is_empty()) else {
        return Ok((own_words(), "sources".into()));
    };
    provider::take_budget(ctx, adapter.0, "").await?;
    let listing: String = sources
        .iter()
        .map(|s| {
            format!(
                "<source url=\"{}\">\n{}\n{}\n</source>\n",
                s.url, s.title, s.snippet
            )
        })
        .collect();
    let prompt = Prompt {
        system: "You summarize what public web pages say about a local business for an agency \
                 that improves Google Business Profiles. State only facts the sources support, \
                 each with the exact url of the source it comes from. Answer only with JSON: \
                 {\"facts\":[{\"fact\":\"…\",\"source\":\"<url>\"}]}."
            .into(),
        user: format!("Business: {name}\n\n{listing}"),
        schema: serde_json::json!({
            "type": "object",
            "properties": { "facts": { "type": "array", "items": {
                "type": "object",
                "properties": { "fact": { "type": "string" }, "source": { "type": "string" } },
                "required": ["fact", "source"] } } },
            "required": ["facts"]
        }),
    };
    let answer = llm::ask(ctx, cfg, adapter, &prompt).await;
    let facts = answer
        .map_err(|f| f.to_string())
        .and_then(|text| llm::answer_json::<Facts>(&text));
    match facts {
        Ok(Facts { facts }) => {
            let total = facts.len();
            let kept: Vec<Finding> = if ctx.settings.engines.research.citation_required {
                facts.into_iter().filter(cited).collect()
            } else {
                facts
            };
            if kept.len() < total {
                notes.push(format!(
                    "{} fact(s) dropped: their source is not one of the pages read",
                    total - kept.len()
                ));
            }
            Ok((kept, adapter.0.as_str().into()))
        }
        Err(why) => {
            notes.push(format!(
                "the LLM summary was not usable ({why}); the sources' own words instead"
            ));
            Ok((own_words(), "sources".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duckduckgo_results_resolve_their_redirects() {
        let html = r#"<div class="result"><h2><a rel="nofollow" class="result__a" href="//duckduckgo.com/l/?uddg=https%3A%2F%2Foak.example%2F&amp;rut=x">Oak <b>Dental</b> Miami</a></h2>
        <a class="result__snippet" href="x">Family dentist &amp; implants since 1998.</a></div>
        <div class="result"><a class="result__a" href="https://yelp.example/oak">Oak Dental - Yelp</a></div>"#;
        let r = parse_duckduckgo(html);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].url, "https://oak.example/");
        assert_eq!(r[0].title, "Oak Dental Miami");
        assert_eq!(r[0].snippet, "Family dentist & implants since 1998.");
        assert_eq!(r[1].url, "https://yelp.example/oak");
    }
}
