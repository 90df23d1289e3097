//! Logs (tracing, text or JSON) and metrics (Prometheus).

use std::collections::HashMap;
use std::sync::{LazyLock, OnceLock, RwLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::response::Response;
use metrics::{Counter, Gauge, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;
use walletctl_core::config::{LogConfig, LogFormat};

/// Installs the global log subscriber. `RUST_LOG` wins over the configured filter.
pub fn init_tracing(config: &LogConfig) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// The process-wide Prometheus recorder, installed on first use.
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        // Request latencies in seconds by default; sizes and long lags get their own.
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ])
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("wallet_batch_size".into()),
                    &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
                )
            })
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("wallet_read_batch_size".into()),
                    &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0],
                )
            })
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("wallet_group_users".into()),
                    &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
                )
            })
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Suffix("_lag_seconds".into()),
                    &[
                        0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
                    ],
                )
            })
            .expect("static buckets are valid")
            .build_recorder();
        let handle = recorder.handle();
        // A second install (another recorder already set) only means metrics go there.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// One request's metrics: counted as in flight from [`RequestMetrics::start`]
/// until it is dropped (also when the request is cut short), then counted
/// and timed by service, route template, method and status by
/// [`RequestMetrics::finish`].
pub struct RequestMetrics {
    service: &'static str,
    route: Option<MatchedPath>,
    method: &'static str,
    start: Instant,
    in_flight: Gauge,
}

impl RequestMetrics {
    pub fn start(service: &'static str, req: &Request) -> Self {
        let in_flight = SERIES.in_flight(service);
        in_flight.increment(1.0);
        RequestMetrics {
            service,
            route: req.extensions().get::<MatchedPath>().cloned(),
            method: method_label(req.method()),
            start: Instant::now(),
            in_flight,
        }
    }

    pub fn finish(self, res: &Response) {
        let route = self.route.as_ref().map_or("unmatched", MatchedPath::as_str);
        let series = Series {
            service: self.service,
            method: self.method,
            status: res.status().as_u16(),
        };
        SERIES.record(route, series, self.start.elapsed().as_secs_f64());
    }
}

impl Drop for RequestMetrics {
    fn drop(&mut self) {
        self.in_flight.decrement(1.0);
    }
}

/// The request metrics' handles, made once per series: the `metrics`
/// macros hash their labels and look the series up on every call, which
/// the request path paid three times per request.
static SERIES: LazyLock<SeriesHandles> = LazyLock::new(|| {
    metrics_handle(); // the recorder the handles belong to, before any is made
    SeriesHandles {
        by_route: RwLock::new(HashMap::new()),
        in_flight: RwLock::new(Vec::new()),
    }
});

/// The labels of one request series besides its route.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Series {
    service: &'static str,
    method: &'static str,
    status: u16,
}

/// A series' labels, its request counter and its duration histogram.
type SeriesHandle = (Series, Counter, Histogram);

struct SeriesHandles {
    /// Route template → its series' counter and duration histogram.
    by_route: RwLock<HashMap<String, Vec<SeriesHandle>>>,
    in_flight: RwLock<Vec<(&'static str, Gauge)>>,
}

impl SeriesHandles {
    fn record(&self, route: &str, series: Series, seconds: f64) {
        {
            let map = self.by_route.read().unwrap_or_else(|p| p.into_inner());
            let known = map
                .get(route)
                .and_then(|all| all.iter().find(|(s, ..)| *s == series));
            if let Some((_, count, time)) = known {
                count.increment(1);
                time.record(seconds);
                return;
            }
        }
        let labels = [
            ("service", series.service.to_owned()),
            ("route", route.to_owned()),
            ("method", series.method.to_owned()),
            ("status", series.status.to_string()),
        ];
        let count = metrics::counter!("http_requests_total", &labels);
        let time = metrics::histogram!("http_request_duration_seconds", &labels);
        count.increment(1);
        time.record(seconds);
        let mut map = self.by_route.write().unwrap_or_else(|p| p.into_inner());
        let all = map.entry(route.to_owned()).or_default();
        if !all.iter().any(|(s, ..)| *s == series) {
            all.push((series, count, time));
        }
    }

    fn in_flight(&self, service: &'static str) -> Gauge {
        let known = self
            .in_flight
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(s, _)| *s == service)
            .map(|(_, g)| g.clone());
        known.unwrap_or_else(|| {
            let gauge = metrics::gauge!("http_requests_in_flight", "service" => service);
            self.in_flight
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .push((service, gauge.clone()));
            gauge
        })
    }
}

/// The method as a metric label: the standard ones by name, anything a
/// client invents as `other`, so no request can create a new series.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}
