//! Reports printed as PDFs by headless Chromium, at most `reports.pdf_tabs` at once per
//! process: each tab lives in a browser of its own, started on first use and kept for
//! the next print; a tab that fails or runs out of time is closed with its browser and
//! a new one takes its place next time.

use super::chromium::Chromium;
use crate::JobError;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Semaphore;

struct Tab {
    browser: Chromium,
    session: String,
}

pub struct PdfPool {
    browser: String,
    headless: bool,
    timeout: Duration,
    permits: Semaphore,
    idle: Mutex<Vec<Tab>>,
}

impl std::fmt::Debug for PdfPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PdfPool")
            .field("browser", &self.browser)
            .field("tabs", &self.permits.available_permits())
            .finish()
    }
}

impl PdfPool {
    pub fn new(browser: &str, headless: bool, tabs: u32, timeout: Duration) -> Self {
        Self {
            browser: browser.to_owned(),
            headless,
            timeout,
            permits: Semaphore::new(tabs.max(1) as usize),
            idle: Mutex::new(Vec::new()),
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Tab>> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `html` (a whole, self-contained page) as a PDF.
    pub async fn print(&self, html: &str) -> Result<Vec<u8>, JobError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| JobError::Transient("the PDF printer is closed".into()))?;
        let reused = self.idle().pop();
        let mut tab = match reused {
            Some(tab) => tab,
            None => self.open().await?,
        };
        match tokio::time::timeout(self.timeout, print_in(&mut tab, html)).await {
            Ok(Ok(pdf)) => {
                self.idle().push(tab);
                Ok(pdf)
            }
            // The tab goes with its browser; the next print starts a fresh one.
            Ok(Err(e)) => Err(e),
            Err(_) => Err(JobError::Transient(format!(
                "the PDF took longer than {} s to print",
                self.timeout.as_secs()
            ))),
        }
    }

    async fn open(&self) -> Result<Tab, JobError> {
        let launched =
            tokio::time::timeout(self.timeout, Chromium::launch(&self.browser, self.headless))
                .await
                .map_err(|_| JobError::Transient("chromium did not start in time".into()))?;
        let mut browser = launched.map_err(|e| match e {
            JobError::Invalid(why) => {
                JobError::Invalid(format!("engines.testing.browser (report PDFs): {why}"))
            }
            other => other,
        })?;
        let session = browser.tab(816, 1056, false).await?;
        Ok(Tab { browser, session })
    }
}

async fn print_in(tab: &mut Tab, html: &str) -> Result<Vec<u8>, JobError> {
    // Loaded from a file of the browser's own, so the load event says it is drawn.
    let file = tab.browser.scratch().join("report.html");
    tokio::fs::write(&file, html)
        .await
        .map_err(|e| JobError::Transient(format!("cannot write {}: {e}", file.display())))?;
    let url = url::Url::from_file_path(&file)
        .map_err(|_| JobError::Transient(format!("{} is not a file URL", file.display())))?;
    tab.browser.navigate(&tab.session, url.as_str()).await?;
    tab.browser.print_pdf(&tab.session).await
}
