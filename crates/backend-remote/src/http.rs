//! One HTTP client per index: a connection pool, timeouts, retries with
//! backoff, and a Tokio runtime to run on whatever executor polls the caller.

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Method;
use serde_json::Value;
use tokio::runtime::{Handle, Runtime};
use vecsearch_core::{Error, Result};

use crate::uri::Endpoint;

/// Where requests run. Every request is spawned on a Tokio runtime, so an
/// index works from any executor (even `vecsearch_core::exec::block_on`):
/// the caller's multi-thread runtime when opened inside one, else a small
/// one we own.
pub(crate) enum Exec {
    Borrowed(Handle),
    Owned(Option<Runtime>),
}

impl Exec {
    /// The current runtime, or a new two-thread one.
    pub fn new() -> Result<Self> {
        // A current-thread runtime runs our tasks only while its owner
        // drives it, which an index used from another executor would not.
        if let Ok(h) = Handle::try_current() {
            if h.runtime_flavor() != tokio::runtime::RuntimeFlavor::CurrentThread {
                return Ok(Exec::Borrowed(h));
            }
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("vecsearch-remote")
            .enable_all()
            .build()
            .map_err(|e| Error::Unavailable(format!("cannot start a Tokio runtime: {e}")))?;
        Ok(Exec::Owned(Some(rt)))
    }

    /// Where to spawn requests.
    pub fn handle(&self) -> Result<Handle> {
        match self {
            Exec::Borrowed(h) => Some(h.clone()),
            Exec::Owned(rt) => rt.as_ref().map(|r| r.handle().clone()),
        }
        .ok_or_else(|| Error::Unavailable("the client's runtime has shut down".into()))
    }
}

impl Drop for Exec {
    fn drop(&mut self) {
        // A plain drop would panic when the last index is dropped inside an
        // async context; this never blocks.
        if let Exec::Owned(rt) = self {
            if let Some(rt) = rt.take() {
                rt.shutdown_background();
            }
        }
    }
}

/// Room for a reply's envelope and small fields: every limit starts here.
pub(crate) const REPLY_BASE: usize = 64 << 10;
/// A reply that carries no rows (acknowledgements, counts, descriptions).
pub(crate) const SMALL_REPLY: usize = REPLY_BASE;
/// Bytes one search hit can need as JSON (an id of 20 digits as a string, a
/// score with 17 digits, and the keys and nulls servers add).
pub(crate) const PER_HIT: usize = 256;
/// Bytes one vector component can need as JSON text (`-1.1754943508222875e-38,`).
pub(crate) const PER_COMPONENT: usize = 32;

/// The byte limit for a reply of `rows` rows of `dim` components each (plus
/// an id and keys per row).
pub(crate) fn rows_limit(rows: usize, dim: usize) -> usize {
    REPLY_BASE.saturating_add(
        rows.saturating_mul(PER_HIT.saturating_add(dim.saturating_mul(PER_COMPONENT))),
    )
}

/// A reply as received: the HTTP status and the body's bytes (at most the
/// call's limit), for callers that parse it into typed rows.
pub(crate) struct RawReply {
    pub status: u16,
    pub bytes: Vec<u8>,
    /// The request it answers, `METHOD /path` (no query), for messages.
    pub request: String,
}

impl RawReply {
    /// The body parsed as JSON when it is JSON, else kept as text.
    pub fn parse(self) -> Reply {
        let body = match serde_json::from_slice::<Value>(&self.bytes) {
            Ok(v) => Body::Json(v),
            Err(_) => Body::Text(String::from_utf8_lossy(&self.bytes).into_owned()),
        };
        Reply {
            status: self.status,
            body,
            request: self.request,
        }
    }

    /// The body for an error message: shortened, an HTML page summarised,
    /// an empty body named as such with the request it answers.
    pub fn describe(&self) -> String {
        // The start is enough to show (and to find an HTML page's title).
        let end = self.bytes.len().min(64 << 10);
        let text = String::from_utf8_lossy(&self.bytes[..end]);
        describe_body(&text, self.bytes.len(), &self.request)
    }
}

/// A reply: the HTTP status and the body, parsed as JSON when it is JSON.
pub(crate) struct Reply {
    pub status: u16,
    pub body: Body,
    /// The request it answers, `METHOD /path` (no query), for messages.
    pub request: String,
}

/// A reply body.
pub(crate) enum Body {
    Json(Value),
    Text(String),
}

impl Reply {
    /// The body for an error message (see [`RawReply::describe`]).
    pub fn describe(&self) -> String {
        match &self.body {
            Body::Json(v) => shorten(&v.to_string()),
            Body::Text(t) => describe_body(t, t.len(), &self.request),
        }
    }
}

/// Server text in an error message is cut to this many characters.
const MESSAGE_CHARS: usize = 200;

/// A reply body of `total` bytes, of which `text` is the start, for an
/// error message: [`shorten`]ed, or, when there is nothing to show,
/// `an empty reply to METHOD /path`.
fn describe_body(text: &str, total: usize, request: &str) -> String {
    if text.trim().is_empty() && total == text.len() {
        format!("an empty reply to {request}")
    } else {
        summarize(text, total)
    }
}

/// Server text made fit for an error message: an HTML page (a proxy's or
/// a web server's error page) as `an HTML page (title "...")`, anything
/// else cut to [`MESSAGE_CHARS`] characters, saying how long it was.
pub(crate) fn shorten(text: &str) -> String {
    summarize(text, text.len())
}

/// [`shorten`] for the start `text` of a body of `total` bytes.
fn summarize(text: &str, total: usize) -> String {
    if let Some(page) = html_summary(text, total) {
        return page;
    }
    match text.char_indices().nth(MESSAGE_CHARS) {
        Some((i, _)) => format!("{}... ({total} bytes in all)", &text[..i]),
        None if total > text.len() => format!("{text}... ({total} bytes in all)"),
        None => text.to_string(),
    }
}

/// `an HTML page (title "...")` when `text`, the start of a body of
/// `total` bytes, is an HTML document.
fn html_summary(text: &str, total: usize) -> Option<String> {
    // ASCII lowering keeps every byte where it was, so offsets found in
    // `lower` cut `text` at the same (character) boundaries.
    let lower = text.to_ascii_lowercase();
    let start = lower.trim_start();
    let html = start.starts_with("<!doctype html")
        || start.starts_with("<html")
        || (start.starts_with('<')
            && ["<html", "<head", "<body"]
                .iter()
                .any(|t| lower.contains(t)));
    if !html {
        return None;
    }
    let inner = |tag: &str| -> Option<String> {
        let open = lower.find(&format!("<{tag}"))?;
        let from = open + lower[open..].find('>')? + 1;
        let to = from + lower[from..].find(&format!("</{tag}"))?;
        let words: Vec<&str> = text[from..to].split_whitespace().collect();
        let words = words.join(" ");
        let cut = match words.char_indices().nth(80) {
            Some((i, _)) => format!("{}...", &words[..i]),
            None => words,
        };
        Some(cut).filter(|t| !t.is_empty())
    };
    Some(match inner("title").or_else(|| inner("h1")) {
        Some(title) => format!("an HTML page (title {title:?}, {total} bytes)"),
        None => format!("an HTML page ({total} bytes, no title)"),
    })
}

/// The HTTP side of one index; cheap to clone into tasks. The index owns
/// the [`Exec`] separately, so a task never holds the last owner of the
/// runtime it runs on.
#[derive(Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    handle: Handle,
    attempts: u32,
    what: String,
    /// Origins (scheme, host, port) that have answered in HTTP/1: bytes of
    /// another protocol from one of these are the server misbehaving, not a
    /// URI naming the wrong port.
    spoke_http1: Arc<Mutex<HashSet<String>>>,
}

impl Http {
    /// A client for `ep`, sending `auth` (header name and value) on every request.
    pub fn new(ep: &Endpoint, auth: Option<(&'static str, String)>, exec: &Exec) -> Result<Self> {
        let mut headers = HeaderMap::new();
        if let Some((name, value)) = auth {
            let mut value = HeaderValue::from_str(&value).map_err(|_| {
                Error::InvalidArgument("the API key has characters a header cannot carry".into())
            })?;
            value.set_sensitive(true);
            headers.insert(HeaderName::from_static(name), value);
        }
        let client = reqwest::Client::builder()
            .default_headers(headers)
            // Credentials go only to the server the URI names: a redirect is
            // the server's reply, never followed (reqwest would carry a
            // custom `api-key` header to any origin a 307 names).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_millis(ep.timeout_ms))
            .connect_timeout(Duration::from_millis(ep.timeout_ms.min(5_000)))
            .pool_idle_timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| Error::Unavailable(format!("cannot build the HTTP client: {e}")))?;
        Ok(Http {
            client,
            handle: exec.handle()?,
            attempts: ep.attempts.max(1),
            what: format!("{:?} at {}", ep.server, ep.base_url()),
            spoke_http1: Arc::default(),
        })
    }

    /// Sends one request, retrying connection failures, timeouts, 429 and
    /// 5xx replies with backoff. Every call this crate makes is idempotent
    /// (upserts, deletes by id, reads), so all are retried. Returns the last
    /// reply whatever its status; `Unavailable` when no reply came or 5xx
    /// persisted. A reply body longer than `limit` bytes (what the call can
    /// need) is `Remote` at once, read no further than the limit.
    ///
    /// A port that answers with bytes that are not HTTP/1 (a gRPC port's
    /// HTTP/2, another protocol) is `InvalidArgument` naming the likely
    /// mistake at once, if it never answered in HTTP/1 (opening an index at
    /// the wrong port); once it has, such bytes are the server misbehaving,
    /// retried like a cut connection and `Unavailable` if they persist.
    pub async fn send(
        &self,
        method: Method,
        url: String,
        body: Option<String>,
        limit: usize,
    ) -> Result<Reply> {
        Ok(self.send_raw(method, url, body, limit).await?.parse())
    }

    /// [`Http::send`], leaving the body unparsed (for typed parsing).
    pub async fn send_raw(
        &self,
        method: Method,
        url: String,
        body: Option<String>,
        limit: usize,
    ) -> Result<RawReply> {
        let client = self.client.clone();
        let attempts = self.attempts;
        let what = self.what.clone();
        let spoke_http1 = Arc::clone(&self.spoke_http1);
        let task = self.handle.spawn(async move {
            let origin = origin_of(&url);
            let mut last = String::new();
            for attempt in 0..attempts {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(100 << (2 * (attempt - 1).min(4))))
                        .await;
                }
                let got = send_once(&client, method.clone(), &url, body.clone(), limit).await;
                if got.is_ok() {
                    lock(&spoke_http1).insert(origin.clone());
                }
                match got {
                    Ok(reply) if reply.status >= 500 || reply.status == 429 => {
                        last = format!("HTTP {}: {}", reply.status, reply.describe())
                    }
                    Ok(reply) => return Ok(reply),
                    Err(Failure::Retry(e)) => last = e,
                    Err(Failure::Fatal(e)) => return Err(e),
                    Err(Failure::NotHttp1(why)) if lock(&spoke_http1).contains(&origin) => {
                        last = format!(
                            "{url} answered with bytes that are not HTTP/1, \
                             though it spoke HTTP/1 before ({why})"
                        )
                    }
                    Err(Failure::NotHttp1(why)) => {
                        return Err(Error::InvalidArgument(format!(
                            "{url} does not answer in HTTP/1: this port speaks another protocol, \
                             most likely gRPC (as milvus-lite's does), not the REST API; \
                             point the URI at the server's REST port ({why})"
                        )))
                    }
                }
            }
            Err(Error::Unavailable(format!(
                "{what}: {last} (after {attempts} attempts)"
            )))
        });
        task.await
            .map_err(|e| Error::Unavailable(format!("request task ended: {e}")))?
    }

    /// Sleeps `d` on the index's runtime: the caller's executor may have no
    /// timer (a plain thread under `block_on`), so no timer is created there.
    pub async fn sleep(&self, d: Duration) -> Result<()> {
        // `tokio::time::sleep` finds its timer when called, not when
        // polled: call it inside the task.
        self.handle
            .spawn(async move { tokio::time::sleep(d).await })
            .await
            .map_err(|e| Error::Unavailable(format!("the client's runtime has shut down: {e}")))
    }

    /// Runs `f` over `items` with at most `width` in flight, on the runtime;
    /// results come back in input order. The first error wins.
    pub async fn map_concurrent<T, R, F, Fut>(
        &self,
        items: Vec<T>,
        width: usize,
        f: F,
    ) -> Result<Vec<R>>
    where
        T: Send + 'static,
        R: Send + 'static,
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R>> + Send + 'static,
    {
        let n = items.len();
        let width = width.clamp(1, n.max(1));
        let mut groups: Vec<Vec<(usize, T)>> = (0..width).map(|_| Vec::new()).collect();
        for (i, item) in items.into_iter().enumerate() {
            groups[i % width].push((i, item));
        }
        let f = Arc::new(f);
        let tasks: Vec<_> = groups
            .into_iter()
            .map(|group| {
                let f = Arc::clone(&f);
                self.handle.spawn(async move {
                    let mut out = Vec::with_capacity(group.len());
                    for (i, item) in group {
                        out.push((i, f(item).await?));
                    }
                    Ok::<_, Error>(out)
                })
            })
            .collect();
        let mut slots: Vec<Option<R>> = (0..n).map(|_| None).collect();
        let mut first_err = None;
        for t in tasks {
            match t.await {
                Ok(Ok(done)) => done.into_iter().for_each(|(i, r)| slots[i] = Some(r)),
                Ok(Err(e)) => first_err = first_err.or(Some(e)),
                Err(e) => {
                    first_err = first_err.or(Some(Error::Unavailable(format!("task ended: {e}"))))
                }
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        slots
            .into_iter()
            .map(|s| s.ok_or_else(|| Error::Unavailable("a concurrent request was lost".into())))
            .collect()
    }
}

/// Polls every future of `futs` concurrently on the caller's task (they
/// may borrow); outputs in input order.
pub(crate) async fn join_all<F: Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut futs: Vec<std::pin::Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut busy = false;
        for (f, o) in futs.iter_mut().zip(out.iter_mut()) {
            if o.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *o = Some(v),
                    std::task::Poll::Pending => busy = true,
                }
            }
        }
        if busy {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

/// Why an attempt failed: worth another attempt (the network, a timeout)
/// or not (a reply the call cannot use, whatever the retry), or bytes that
/// are no HTTP/1 reply (which of the two depends on the port's history).
enum Failure {
    Retry(String),
    Fatal(Error),
    NotHttp1(String),
}

/// `scheme://host:port` of `url`, what [`Http`] remembers ports by.
fn origin_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| url.to_string())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn too_large(status: u16, limit: usize) -> Failure {
    Failure::Fatal(Error::Remote {
        status,
        message: format!(
            "reply larger than {limit} bytes, more than this call can need: refused unread"
        ),
    })
}

async fn send_once(
    client: &reqwest::Client,
    method: Method,
    url: &str,
    body: Option<String>,
    limit: usize,
) -> std::result::Result<RawReply, Failure> {
    let method_name = method.to_string();
    let mut req = client.request(method, url);
    if let Some(b) = body {
        req = req
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(b);
    }
    let mut resp = req.send().await.map_err(|e| {
        let why = describe_transport(e);
        // Bytes that are no HTTP/1 status line: an HTTP/2-only peer (a
        // gRPC port, such as milvus-lite's) or another protocol.
        if why.contains("invalid HTTP version parsed") {
            Failure::NotHttp1(why)
        } else {
            Failure::Retry(why)
        }
    })?;
    let status = resp.status().as_u16();
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large(status, limit));
    }
    // Read in chunks, so an oversized or endless reply is refused at the
    // limit without being held.
    let mut bytes = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| Failure::Retry(describe_transport(e)))?
    {
        if bytes.len() + chunk.len() > limit {
            return Err(too_large(status, limit));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(RawReply {
        status,
        bytes,
        request: request_of(&method_name, url),
    })
}

/// `METHOD /path` of a request, without the query (which may carry a key).
fn request_of(method: &str, url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!("{method} {}", u.path()),
        Err(_) => format!("{method} {}", url.split('?').next().unwrap_or(url)),
    }
}

fn describe_transport(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "transport error"
    };
    // reqwest's Display hides the cause chain, where the useful part is.
    let mut msg = format!("{kind}: {e}");
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(&format!(": {s}"));
        src = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(body: &str) -> RawReply {
        RawReply {
            status: 404,
            bytes: body.as_bytes().to_vec(),
            request: request_of("POST", "http://h:6333/collections/c/points?wait=true"),
        }
    }

    /// Issue 21: an HTML page is summarised, long text cut, an empty body
    /// named with the request it answers.
    #[test]
    fn server_text_in_messages_is_bounded() {
        let filler = "<p>lorem ipsum dolor sit amet</p>\n".repeat(2000);
        let page = format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\n<title>\n  502 Bad   Gateway\n</title></head>\n<body>{filler}</body></html>"
        );
        let got = raw(&page).describe();
        assert!(
            got.starts_with("an HTML page (title \"502 Bad Gateway\""),
            "{got}"
        );
        assert!(got.len() < 100, "{got}");
        assert_eq!(raw(&page).parse().describe(), got);
        let untitled = format!("<html><body><h1>Forbidden</h1>{filler}</body></html>");
        assert!(raw(&untitled).describe().contains("(title \"Forbidden\""));
        let bare = "<html><body>x</body></html>";
        assert!(
            raw(bare).describe().contains("no title"),
            "{}",
            raw(bare).describe()
        );

        let long = "é".repeat(5000);
        let got = raw(&long).describe();
        assert_eq!(got.chars().filter(|&c| c == 'é').count(), MESSAGE_CHARS);
        assert!(got.ends_with("(10000 bytes in all)"), "{got}");
        assert_eq!(raw("not found").describe(), "not found");
        assert_eq!(raw("<b>bold</b> text").describe(), "<b>bold</b> text");

        for empty in ["", " \r\n"] {
            assert_eq!(
                raw(empty).describe(),
                "an empty reply to POST /collections/c/points",
                "the query is left out"
            );
            assert_eq!(
                raw(empty).parse().describe(),
                "an empty reply to POST /collections/c/points"
            );
        }
    }
}
