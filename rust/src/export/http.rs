//! POSTing an encoded OTLP request over HTTP, with the OTLP retry policy: 429 and 503 are
//! retried (after `Retry-After` when the collector sends one), as are 502, 504 and failures to
//! connect; any other answer is final. Backoff starts at 100 ms and doubles up to 1.6 s, with up
//! to 100 ms of jitter, for at most 3 retries, all within the export timeout (the policy
//! opentelemetry-otlp recommends, so that both signals behave alike).

use std::io::Write as _;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};

use crate::config::OtlpSettings;

const MAX_RETRIES: usize = 3;
const INITIAL_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_millis(1600);
const MAX_JITTER_MS: u64 = 100;
/// A collector's Retry-After is obeyed up to this long.
const MAX_THROTTLE: Duration = Duration::from_secs(600);

/// Where and how one signal is sent.
#[derive(Clone)]
pub struct HttpTarget {
    client: reqwest::Client,
    /// The endpoint as configured (for messages), and parsed once: a request built from a
    /// string parses it again (IDNA included) every time.
    url: String,
    parsed: reqwest::Url,
    /// OTEL_EXPORTER_OTLP_*HEADERS, validated and built once.
    headers: HeaderMap,
    gzip: bool,
    timeout: Duration,
}

enum Outcome {
    Done,
    /// Worth another try: the collector's Retry-After, if it sent one, and what went wrong.
    Retry(Option<Duration>, String),
    Fail(String),
}

impl HttpTarget {
    pub fn new(cfg: &OtlpSettings) -> Result<Self, String> {
        let parsed = reqwest::Url::parse(&cfg.endpoint)
            .map_err(|e| format!("{}: not a URL: {e}", cfg.endpoint))?;
        let mut headers = HeaderMap::new();
        for (k, v) in &cfg.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| format!("header {k:?}: not a valid header name"))?;
            let value = HeaderValue::from_str(v)
                .map_err(|_| format!("header {k:?}: not a valid header value"))?;
            headers.append(name, value);
        }
        Ok(HttpTarget {
            client: super::otlp::http_client(cfg)?,
            url: cfg.endpoint.clone(),
            parsed,
            headers,
            gzip: cfg.gzip,
            timeout: cfg.timeout,
        })
    }

    /// Sends `body` (an encoded request), retrying as the module says.
    pub async fn post(&self, body: Vec<u8>, content_type: &'static str) -> Result<(), String> {
        let body = if self.gzip {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(&body).map_err(|e| format!("gzip: {e}"))?;
            e.finish().map_err(|e| format!("gzip: {e}"))?
        } else {
            body
        };
        let body = bytes::Bytes::from(body);
        let started = Instant::now();
        let mut delay = INITIAL_DELAY;
        let mut cap = MAX_DELAY;
        let mut attempt = 0;
        loop {
            let (throttle, problem) = match self.once(body.clone(), content_type).await {
                Outcome::Done => return Ok(()),
                Outcome::Fail(e) => return Err(e),
                Outcome::Retry(_, problem) if attempt >= MAX_RETRIES => {
                    return Err(format!("{problem} (after {attempt} retries)"))
                }
                Outcome::Retry(throttle, problem) => (throttle, problem),
            };
            attempt += 1;
            if let Some(server_delay) = throttle {
                let server_delay = server_delay.min(MAX_THROTTLE);
                if server_delay > cap {
                    cap = MAX_THROTTLE;
                }
                delay = delay.max(server_delay);
            }
            let jitter = Duration::from_millis(rand::random::<u64>() % (MAX_JITTER_MS + 1));
            let sleep = (delay + jitter).min(cap);
            if started.elapsed() + sleep >= self.timeout.max(Duration::from_millis(1)) {
                return Err(format!(
                    "{problem} (no retry fits in the export timeout of {} ms)",
                    self.timeout.as_millis()
                ));
            }
            tokio::time::sleep(sleep).await;
            delay = (delay * 2).min(cap);
        }
    }

    async fn once(&self, body: bytes::Bytes, content_type: &'static str) -> Outcome {
        let mut req = self
            .client
            .post(self.parsed.clone())
            .headers(self.headers.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static(content_type))
            .body(body);
        if self.gzip {
            req = req.header(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return Outcome::Fail(format!("{}: timed out", self.url)),
            // No answer at all (refused, reset): worth another try.
            Err(e) => return Outcome::Retry(None, format!("{}: {}", self.url, cause(&e))),
        };
        if resp.status().is_success() {
            return Outcome::Done;
        }
        let problem = format!("{}: HTTP {}", self.url, resp.status());
        match resp.status().as_u16() {
            429 | 503 => Outcome::Retry(
                resp.headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs),
                problem,
            ),
            502 | 504 => Outcome::Retry(None, problem),
            _ => Outcome::Fail(problem),
        }
    }
}

/// The innermost cause of a transport error ("Connection refused", not "error sending request").
fn cause(e: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}
