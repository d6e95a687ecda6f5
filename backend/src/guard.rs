//! What keeps one caller from starving everyone else (issue 21): the connection
//! loop (header and body read timeouts, a cap on connections served at once),
//! the client's address behind a trusted reverse proxy, and per-caller rate
//! limits.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::config::Guard;
use crate::fhir::outcome::{Issue, IssueType};

/// The address a request came from, as the app believes it: the TCP peer, or,
/// when the peer is a trusted proxy, the nearest untrusted address in its
/// `X-Forwarded-For`. Set by [`serve`] on every request; read by
/// [`crate::auth::ClientAddr`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// The client behind `peer`: `peer` itself unless it is one of `trusted`, then
/// the right-most `X-Forwarded-For` address that is not (each proxy appends the
/// address it received from; what is left of a trusted one is only claimed).
pub fn client_ip(peer: IpAddr, forwarded: Option<&HeaderValue>, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let Some(list) = forwarded.and_then(|v| v.to_str().ok()) else {
        return peer;
    };
    let mut nearest = peer;
    for hop in list.rsplit(',') {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            // A malformed hop: nothing left of it can be believed.
            return nearest;
        };
        nearest = ip;
        if !trusted.contains(&ip) {
            return ip;
        }
    }
    nearest
}

/// Serves `router` on `listener` until `shutdown` completes, then lets the
/// requests in flight finish.
///
/// - A connection has `header_timeout` to send a request's headers, counted
///   from when the server starts waiting for them: it covers the slow sender
///   (partial headers), the connection that sends nothing and the idle
///   keep-alive connection alike, which are then closed. HTTP/1.1 only.
/// - A request's body must arrive within `body_timeout`
///   ([`tower_http::timeout::RequestBodyTimeoutLayer`], in [`crate::api::router`]).
/// - At most `max_connections` are served at once; the next waits in the
///   kernel's accept backlog until one closes, so the ones being served keep
///   their share.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    guard: &Guard,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let permits = Arc::new(Semaphore::new(guard.max_connections));
    // HTTP/1.1 only: telling HTTP/2 from HTTP/1 first waits for the client's
    // first bytes with no timeout, so a connection that sends nothing would be
    // kept forever. (A clinic's TLS proxy speaks HTTP/2 to browsers.)
    let mut builder = Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(guard.header_timeout);
    let graceful = GracefulShutdown::new();
    let trusted: Arc<[IpAddr]> = guard.trusted_proxies.clone().into();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let trusted = trusted.clone();
        let service = tower::ServiceExt::map_request(
            router.clone(),
            move |mut request: Request<hyper::body::Incoming>| {
                let ip = client_ip(
                    peer.ip(),
                    request.headers().get("x-forwarded-for"),
                    &trusted,
                );
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(peer));
                request.extensions_mut().insert(ClientIp(ip));
                fhir_base_with_slash(request)
            },
        );
        let connection = builder
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A peer that went away or timed out: nothing to report.
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Per-caller token buckets: each caller may send `per_minute` requests in a
/// burst, refilled evenly over the minute.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<Caller, Bucket>>,
}

/// Who a bucket is for: an address without credentials, or a principal.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Caller {
    /// An address, for callers without credentials.
    Address(IpAddr),
    /// A token or a staff member, by name (`urn:intake:token|emr`).
    Principal(String),
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The most buckets kept; past it, full ones are forgotten.
const MAX_BUCKETS: usize = 100_000;

impl RateLimiter {
    /// Takes one request from `caller`'s bucket: `Ok`, or `Err(seconds)` until
    /// the next request would be allowed.
    pub fn check(&self, caller: Caller, per_minute: u32, now: Instant) -> Result<(), u64> {
        let rate = f64::from(per_minute) / 60.0;
        let capacity = f64::from(per_minute);
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_BUCKETS {
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < capacity
            });
        }
        let bucket = buckets.entry(caller).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - bucket.tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

/// 429 with `Retry-After` and an `OperationOutcome`.
pub fn too_many_requests(retry_after_secs: u64) -> Response {
    let mut response = crate::http::outcome_response(
        StatusCode::TOO_MANY_REQUESTS,
        &[Issue::error(
            IssueType::Transient,
            "Too many requests from here; wait and try again",
        )],
    );
    if let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// `/fhir/` is the FHIR base as much as `/fhir`: a client that joins paths to
/// its base URL with the slash (`POST /fhir/` for a transaction) reaches it.
fn fhir_base_with_slash<B>(mut request: axum::http::Request<B>) -> axum::http::Request<B> {
    if request.uri().path() == "/fhir/" {
        let target = match request.uri().query() {
            Some(q) => format!("/fhir?{q}"),
            None => "/fhir".to_owned(),
        };
        let mut parts = request.uri().clone().into_parts();
        if let Ok(target) = target.parse() {
            parts.path_and_query = Some(target);
            if let Ok(uri) = axum::http::Uri::from_parts(parts) {
                *request.uri_mut() = uri;
            }
        }
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|_| panic!("{s}"))
    }

    #[test]
    fn a_forwarded_address_is_believed_only_from_a_trusted_proxy() {
        let proxy = ip("10.0.0.2");
        let header = HeaderValue::from_static("203.0.113.9, 198.51.100.7");
        // Not trusted: the header is anyone's to write.
        assert_eq!(client_ip(proxy, Some(&header), &[]), proxy);
        // Trusted: the address the proxy received from.
        assert_eq!(
            client_ip(proxy, Some(&header), &[proxy]),
            ip("198.51.100.7")
        );
        // Two trusted proxies in a row.
        let chained = HeaderValue::from_static("203.0.113.9, 10.0.0.3");
        assert_eq!(
            client_ip(proxy, Some(&chained), &[proxy, ip("10.0.0.3")]),
            ip("203.0.113.9")
        );
        // Garbage stops the walk at the last address believed.
        let bad = HeaderValue::from_static("nonsense");
        assert_eq!(client_ip(proxy, Some(&bad), &[proxy]), proxy);
        assert_eq!(client_ip(proxy, None, &[proxy]), proxy);
    }

    #[test]
    fn a_bucket_allows_its_burst_then_says_how_long_to_wait() {
        let limiter = RateLimiter::default();
        let start = Instant::now();
        let caller = || Caller::Address(ip("192.0.2.1"));
        for _ in 0..3 {
            assert_eq!(limiter.check(caller(), 3, start), Ok(()));
        }
        assert_eq!(limiter.check(caller(), 3, start), Err(20));
        // Another address has its own bucket.
        assert_eq!(
            limiter.check(Caller::Address(ip("192.0.2.2")), 3, start),
            Ok(())
        );
        // Twenty seconds later one request is back.
        let later = start + Duration::from_secs(20);
        assert_eq!(limiter.check(caller(), 3, later), Ok(()));
        assert!(limiter.check(caller(), 3, later).is_err());
    }
}
