//! Logging and traces, set up once. Logs: readable locally, JSON in production mode.
//! Traces: OpenTelemetry over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, configured by the standard `OTEL_*`
//! variables; each job's span continues the trace of whatever enqueued it.

use cep_shared::config::Mode;
use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

pub const DEFAULT_FILTER: &str = "info,sqlx=warn";
/// Commands that print a result keep the log to what went wrong.
pub const QUIET_FILTER: &str = "warn,sqlx=warn";
/// `cep bench` fills millions of rows on purpose: sqlx's slow-statement warnings are noise.
pub const BENCH_FILTER: &str = "warn,sqlx=error";

/// Flushes buffered spans when dropped (at the end of `main`).
pub struct Telemetry(Option<SdkTracerProvider>);

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(p) = self.0.take()
            && let Err(e) = p.shutdown()
        {
            eprintln!("could not flush traces: {e}");
        }
    }
}

fn otlp_configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|v| std::env::var(v).is_ok_and(|s| !s.is_empty()))
}

fn tracer_provider(service: &str) -> Option<SdkTracerProvider> {
    if !otlp_configured() {
        return None;
    }
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
    {
        Ok(e) => e,
        Err(e) => {
            eprintln!("traces are off: the OTLP exporter could not start: {e}");
            return None;
        }
    };
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(
            std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| service.to_owned()),
        )
        .build();
    Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build(),
    )
}

/// Sets up logs (and traces when OTLP is configured). `default` is the log filter used
/// when `RUST_LOG` is not set.
pub fn init(mode: Mode, default: &str) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match mode {
        Mode::Prod => fmt.json().with_filter(filter).boxed(),
        Mode::Dev => fmt.compact().with_filter(filter).boxed(),
    };
    let provider = tracer_provider("cep");
    let otel = provider.as_ref().map(|p| {
        opentelemetry::global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
            Box::new(TraceContextPropagator::new()),
        ]));
        cep_shared::queue::set_trace_context(cep_workers::runtime::trace::current_traceparent);
        // Spans are exported whatever the log level; only our own and apalis's.
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("cep"))
            .with_filter(EnvFilter::new(
                "warn,cep=info,cep_workers=info,cep_scheduler=info,apalis=info",
            ))
    });
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init();
    Telemetry(provider)
}
