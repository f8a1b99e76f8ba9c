//! Headless Chromium (Debian's `chromium`; no browser is downloaded) driven over the
//! DevTools protocol: one browser process with a profile of its own, tabs as flattened
//! sessions on one connection, and the few commands the fleet uses — navigate and wait
//! for the load, evaluate, capture a screenshot, print to PDF. The process and its
//! profile go when the handle is dropped.

use crate::JobError;
use base64::Engine as _;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A running browser and its DevTools connection.
pub struct Chromium {
    child: tokio::process::Child,
    profile: PathBuf,
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    /// Events read while waiting for an answer, kept for whoever waits for them.
    events: Vec<Value>,
}

fn cdp(e: &dyn std::fmt::Display) -> JobError {
    JobError::Transient(format!("chromium: {e}"))
}

/// A browser profile of its own: two browsers sharing one would be one browser.
fn profile_dir() -> Result<PathBuf, JobError> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("cep-chromium-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| JobError::Transient(format!("{e}")))?;
    Ok(dir)
}

impl Chromium {
    /// Starts `browser` (a command name or path) and connects to it.
    pub async fn launch(browser: &str, headless: bool) -> Result<Self, JobError> {
        let profile = profile_dir()?;
        let mut cmd = tokio::process::Command::new(browser);
        if headless {
            cmd.arg("--headless=new");
        }
        cmd.args([
            "--remote-debugging-port=0",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-sandbox",
            "--hide-scrollbars",
            "--mute-audio",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| {
            let _ = std::fs::remove_dir_all(&profile);
            JobError::Invalid(format!(
                "the browser `{browser}` does not start ({e}); install Debian's chromium"
            ))
        })?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let mut lines = BufReader::new(stderr).lines();
        let ws_url = loop {
            match lines.next_line().await {
                Ok(Some(l)) => {
                    if let Some(at) = l.find("ws://") {
                        break l[at..].trim().to_owned();
                    }
                }
                _ => {
                    let _ = std::fs::remove_dir_all(&profile);
                    return Err(JobError::Transient(
                        "chromium exited before opening its DevTools port".into(),
                    ));
                }
            }
        };
        // Keep draining the browser's log so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let (ws, _) = match tokio_tungstenite::connect_async(&ws_url).await {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&profile);
                return Err(cdp(&e));
            }
        };
        Ok(Self {
            child,
            profile,
            ws,
            next_id: 0,
            events: Vec::new(),
        })
    }

    /// Sends `method` (to a tab when `session` is given) and waits for its answer.
    pub async fn call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, JobError> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .await
            .map_err(|e| cdp(&e))?;
        loop {
            let v = self.read().await?;
            if v["id"] == json!(id) {
                if let Some(err) = v.get("error") {
                    return Err(cdp(&format!("{method} failed: {err}")));
                }
                return Ok(v["result"].clone());
            }
            self.events.push(v);
        }
    }

    async fn read(&mut self) -> Result<Value, JobError> {
        loop {
            let Some(frame) = self.ws.next().await else {
                return Err(cdp(&"the DevTools connection closed"));
            };
            let frame = frame.map_err(|e| cdp(&e))?;
            let Ok(text) = frame.to_text() else { continue };
            if let Ok(v) = serde_json::from_str::<Value>(text) {
                return Ok(v);
            }
        }
    }

    /// A new tab with page events on, `width`×`height` (`mobile` as a phone); its session.
    pub async fn tab(&mut self, width: u32, height: u32, mobile: bool) -> Result<String, JobError> {
        let target = self
            .call(None, "Target.createTarget", json!({ "url": "about:blank" }))
            .await?;
        let attached = self
            .call(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target["targetId"], "flatten": true }),
            )
            .await?;
        let session = attached["sessionId"]
            .as_str()
            .ok_or_else(|| cdp(&"no session for the new tab"))?
            .to_owned();
        self.call(
            Some(&session),
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile }),
        )
        .await?;
        self.call(Some(&session), "Page.enable", json!({})).await?;
        Ok(session)
    }

    /// Waits for the tab's next load event (one already seen counts).
    pub async fn loaded(&mut self, session: &str) -> Result<(), JobError> {
        let is_load = |v: &Value| v["method"] == "Page.loadEventFired" && v["sessionId"] == session;
        if let Some(at) = self.events.iter().position(is_load) {
            self.events.remove(at);
            return Ok(());
        }
        loop {
            let v = self.read().await?;
            if is_load(&v) {
                return Ok(());
            }
            self.events.push(v);
        }
    }

    /// Loads `url` in the tab and waits for it; a page that does not load is
    /// [`JobError::Invalid`] with why.
    pub async fn navigate(&mut self, session: &str, url: &str) -> Result<(), JobError> {
        self.events.clear();
        let nav = self
            .call(Some(session), "Page.navigate", json!({ "url": url }))
            .await?;
        if let Some(err) = nav["errorText"].as_str() {
            return Err(JobError::Invalid(format!("the page does not load: {err}")));
        }
        self.loaded(session).await
    }

    /// Evaluates `expression` in the tab's page; its value.
    pub async fn evaluate(&mut self, session: &str, expression: &str) -> Result<Value, JobError> {
        let r = self
            .call(
                Some(session),
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
            )
            .await?;
        if let Some(e) = r.get("exceptionDetails") {
            return Err(cdp(&format!("the page script failed: {e}")));
        }
        Ok(r["result"]["value"].clone())
    }

    /// The tab as a PNG (`full` page, not only the viewport).
    pub async fn screenshot(&mut self, session: &str, full: bool) -> Result<Vec<u8>, JobError> {
        let shot = self
            .call(
                Some(session),
                "Page.captureScreenshot",
                json!({ "format": "png", "captureBeyondViewport": full }),
            )
            .await?;
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap_or_default())
            .map_err(|e| cdp(&e))
    }

    /// The tab's page printed as a PDF: US Letter, backgrounds drawn, half-inch margins.
    pub async fn print_pdf(&mut self, session: &str) -> Result<Vec<u8>, JobError> {
        let pdf = self
            .call(
                Some(session),
                "Page.printToPDF",
                json!({
                    "printBackground": true,
                    "paperWidth": 8.5, "paperHeight": 11.0,
                    "marginTop": 0.5, "marginBottom": 0.5, "marginLeft": 0.5, "marginRight": 0.5,
                }),
            )
            .await?;
        base64::engine::general_purpose::STANDARD
            .decode(pdf["data"].as_str().unwrap_or_default())
            .map_err(|e| cdp(&e))
    }

    /// Where this browser keeps its files (gone with it).
    pub fn scratch(&self) -> &std::path::Path {
        &self.profile
    }

    /// Ends the browser now (dropping the handle does the same, without waiting).
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
        let _ = self.child.kill().await;
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
