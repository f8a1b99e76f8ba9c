//! Engines several layers call on: research (what the web says about a business, every
//! fact cited) and the testing engine's website audits in headless Chromium. They use
//! the clients and the runtime, and no layer.

pub mod audit;
pub mod research;
