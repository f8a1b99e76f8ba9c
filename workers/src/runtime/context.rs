use crate::clients::pdf::PdfPool;
use crate::clients::smtp::Mailer;
use cep_shared::queue::Queue;
use cep_shared::store::Store;
use cep_shared::{Clock, Secrets, Settings};
use std::sync::Arc;
use std::time::Duration;

/// Everything a handler may touch.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub settings: Arc<Settings>,
    pub secrets: Arc<Secrets>,
    pub store: Store,
    pub queue: Queue,
    pub clock: Clock,
    /// One pooled HTTP client per process for every external API.
    pub http: reqwest::Client,
    /// The pooled SMTP transport, when outreach sends for real.
    pub mailer: Option<Mailer>,
    /// Headless Chromium tabs printing reports as PDFs (started on first use).
    pub pdf: Arc<PdfPool>,
}

impl Ctx {
    /// Builds the per-process clients the settings ask for; refuses settings whose
    /// providers lack their secrets.
    pub fn new(
        settings: Settings,
        secrets: Secrets,
        store: Store,
        queue: Queue,
        clock: Clock,
    ) -> anyhow::Result<Self> {
        settings.check_secrets(&secrets)?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(settings.providers.http_timeout_seconds))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("cep-fleet/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let mailer = if settings.layers.outreach.dry_run {
            None
        } else {
            Some(Mailer::new(&settings.providers.smtp, &secrets)?)
        };
        let t = &settings.engines.testing;
        let pdf = Arc::new(PdfPool::new(
            &t.browser,
            t.headless,
            settings.reports.pdf_tabs,
            Duration::from_secs(settings.reports.pdf_timeout_seconds),
        ));
        Ok(Self {
            pdf,
            settings: Arc::new(settings),
            secrets: Arc::new(secrets),
            store,
            queue,
            clock,
            http,
            mailer,
        })
    }

    pub fn now(&self) -> i64 {
        self.clock.now_millis()
    }
}
