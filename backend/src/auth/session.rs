//! Server-side staff sessions and the extractors that require them.
//!
//! The cookie `__Host-intake-session` holds 256 random bits; the database holds
//! only their SHA-256, with the user, a CSRF token, the creation time and the last
//! use. A session ends at logout, after [`IDLE_TIMEOUT`] without use, or
//! [`ABSOLUTE_LIFETIME`] after login, whichever comes first; an expired session is
//! deleted when it is next presented (and at every login).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use sqlx::{Row as _, SqliteConnection};

use super::{
    AuthError, Principal, PrincipalKind, Role, constant_time_eq, random_secret, sha256_hex, unix_ms,
};
use crate::audit::{self, Action, Event, Kind, Outcome};
use crate::state::AppState;

/// The session cookie's name. `__Host-`: the browser accepts it only with
/// `Secure`, `Path=/` and no `Domain`, so no sibling host can set or read it.
pub const COOKIE: &str = "__Host-intake-session";
/// The header that carries the session's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// A session unused for this long is over.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// A session this old is over, however recently used.
pub const ABSOLUTE_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Last use is written at most this often: a 15-minute timeout does not need every
/// request to write.
const TOUCH_EVERY: Duration = Duration::from_secs(15);

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A new session: the cookie's value (returned once) and its CSRF token.
#[derive(Debug)]
pub struct NewSession {
    /// The cookie's value.
    pub id: String,
    /// The CSRF token.
    pub csrf: String,
}

/// Creates a session for user `user_id`, deleting every expired one first.
pub async fn create(
    conn: &mut SqliteConnection,
    now_ms: i64,
    user_id: i64,
) -> Result<NewSession, AuthError> {
    sqlx::query("DELETE FROM staff_session WHERE last_seen_at <= ? OR created_at <= ?")
        .bind(now_ms - ms(IDLE_TIMEOUT))
        .bind(now_ms - ms(ABSOLUTE_LIFETIME))
        .execute(&mut *conn)
        .await?;
    let session = NewSession {
        id: random_secret()?,
        csrf: random_secret()?,
    };
    sqlx::query(
        "INSERT INTO staff_session (id_sha256, user_id, csrf, created_at, last_seen_at)
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(sha256_hex(&session.id))
    .bind(user_id)
    .bind(&session.csrf)
    .bind(now_ms)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    Ok(session)
}

/// The `Set-Cookie` value that sets the session cookie.
pub fn set_cookie(id: &str) -> String {
    format!("{COOKIE}={id}; Path=/; Secure; HttpOnly; SameSite=Strict")
}

/// The `Set-Cookie` value that removes it.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The session cookie's value in `headers`, if any.
fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    crate::http::cookie(headers, COOKIE)
}

/// A request from a signed-in staff user, with a live session. Any request may use
/// it; one that changes state takes [`CsrfChecked`] instead.
#[derive(Clone, Debug)]
pub struct StaffSession {
    /// Who.
    pub principal: Principal,
    /// The session's CSRF token.
    pub csrf: String,
    /// SHA-256 of the session id (the row's key).
    pub(crate) id_sha256: String,
}

impl FromRequestParts<AppState> for StaffSession {
    type Rejection = AuthError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(session) = parts.extensions.get::<StaffSession>() {
            return Ok(session.clone());
        }
        let id = cookie_value(&parts.headers).ok_or(AuthError::Unauthenticated)?;
        let session = load(state, &sha256_hex(id)).await?;
        parts.extensions.insert(session.clone());
        Ok(session)
    }
}

async fn load(state: &AppState, id_sha256: &str) -> Result<StaffSession, AuthError> {
    let now = unix_ms(state.clock.now());
    let row = sqlx::query(
        "SELECT s.csrf, s.created_at, s.last_seen_at, u.id, u.username, u.role
         FROM staff_session s JOIN staff_user u ON u.id = s.user_id
         WHERE s.id_sha256 = ? AND u.disabled = 0",
    )
    .bind(id_sha256)
    .fetch_optional(&state.db)
    .await?
    .ok_or(AuthError::Unauthenticated)?;
    let created: i64 = row.get("created_at");
    let last_seen: i64 = row.get("last_seen_at");
    if now - last_seen >= ms(IDLE_TIMEOUT) || now - created >= ms(ABSOLUTE_LIFETIME) {
        sqlx::query("DELETE FROM staff_session WHERE id_sha256 = ?")
            .bind(id_sha256)
            .execute(&state.db)
            .await?;
        return Err(AuthError::Unauthenticated);
    }
    if now - last_seen >= ms(TOUCH_EVERY) {
        sqlx::query("UPDATE staff_session SET last_seen_at = ? WHERE id_sha256 = ?")
            .bind(now)
            .bind(id_sha256)
            .execute(&state.db)
            .await?;
    }
    let role = Role::parse_staff(row.get::<&str, _>("role")).ok_or(AuthError::Unauthenticated)?;
    Ok(StaffSession {
        principal: Principal {
            kind: PrincipalKind::User(row.get("id")),
            name: row.get("username"),
            role,
        },
        csrf: row.get("csrf"),
        id_sha256: id_sha256.to_owned(),
    })
}

/// A request from anyone signed in: a system client with `Authorization: Bearer`
/// (a live token), else a staff user with a live session. For reads; a staff
/// request that changes state takes [`CsrfChecked`] (a bearer request needs no
/// CSRF check: a browser never attaches the header by itself).
#[derive(Clone, Debug)]
pub struct Authenticated(pub Principal);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = AuthError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // Already found by the access policy's middleware.
        if let Some(principal) = parts.extensions.get::<Principal>() {
            return Ok(Authenticated(principal.clone()));
        }
        if let Some(authorization) = parts.headers.get(header::AUTHORIZATION) {
            // The scheme's name is case-insensitive (RFC 9110 §11.1).
            let bearer = authorization
                .to_str()
                .ok()
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, token)| token)
                .ok_or(AuthError::Unauthenticated)?;
            // A wrong token is refused, not treated as "no token": the client
            // meant to use one.
            return super::token_principal(&state.db, bearer.trim())
                .await?
                .map(Authenticated)
                .ok_or(AuthError::Unauthenticated);
        }
        let session = StaffSession::from_request_parts(parts, state).await?;
        Ok(Authenticated(session.principal))
    }
}

/// The signed-in staff member behind a state-changing request on a public
/// route, if it passes the CSRF checks; otherwise `None`, quietly: the request
/// then goes on as anyone's (the patient's page open in a staff browser sends
/// the session cookie but no CSRF token, and is a patient's, not staff's).
pub(crate) async fn quiet_staff(parts: &mut Parts, state: &AppState) -> Option<Principal> {
    let session = StaffSession::from_request_parts(parts, state).await.ok()?;
    let token_ok = parts
        .headers
        .get(CSRF_HEADER)
        .is_some_and(|v| constant_time_eq(v.as_bytes(), session.csrf.as_bytes()));
    (token_ok && same_origin(&parts.headers, parts.uri.authority().map(|a| a.as_str())))
        .then_some(session.principal)
}

/// A state-changing request from a signed-in staff user that carries the session's
/// CSRF token in `X-CSRF-Token` and, if it has an `Origin`, comes from this
/// server's own origin (the `Host` it was sent to). Refusals are 403 and audited.
///
/// Both, because each covers the other's gap: the token stops a forged form post
/// from any origin; the Origin check still holds if the token leaks (a log, a
/// screenshot). `SameSite=Strict` is a third layer, not relied on alone (older
/// browsers, same-site sibling hosts).
#[derive(Clone, Debug)]
pub struct CsrfChecked(pub StaffSession);

impl FromRequestParts<AppState> for CsrfChecked {
    type Rejection = AuthError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let session = StaffSession::from_request_parts(parts, state).await?;
        let token_ok = parts
            .headers
            .get(CSRF_HEADER)
            .is_some_and(|v| constant_time_eq(v.as_bytes(), session.csrf.as_bytes()));
        if token_ok && same_origin(&parts.headers, parts.uri.authority().map(|a| a.as_str())) {
            return Ok(CsrfChecked(session));
        }
        let address = ClientAddr::from_parts(parts).0;
        let event = Event::new(Kind::CsrfRefused, Action::E, Outcome::SeriousFailure)
            .by(Some(session.principal.agent()))
            .from(address);
        audit::record_alone(&state.db, state.clock.now(), &event).await?;
        tracing::warn!(
            auth.token_ok = token_ok,
            "state-changing request refused by the CSRF check"
        );
        Err(AuthError::CsrfRefused)
    }
}

/// Whether the request's `Origin` (if any) is `http(s)://` followed by the
/// authority it was sent to (`Host`, or HTTP/2's `:authority`). No `Origin` passes:
/// browsers send it on every cross-origin request and on every POST, so its
/// absence means a same-origin GET/HEAD or a client that is not a browser.
pub(crate) fn same_origin(headers: &HeaderMap, uri_authority: Option<&str>) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or(uri_authority);
    let Some(host) = host else {
        return false;
    };
    origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .is_some_and(|authority| authority.eq_ignore_ascii_case(host))
}

/// The client's IP address, when the server knows it: the TCP peer, from axum's
/// `ConnectInfo`. `X-Forwarded-For` is never read (any client can write it).
///
/// `Application` does not serve with `ConnectInfo` yet, so this is `None` there
/// and the per-address login limit does not apply until `app.rs` serves with
/// `into_make_service_with_connect_info::<SocketAddr>()`.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub Option<IpAddr>);

impl ClientAddr {
    /// The client's address as [`crate::guard::serve`] resolved it (behind a
    /// trusted proxy, the forwarded one), else the TCP peer.
    pub(crate) fn from_parts(parts: &Parts) -> Self {
        if let Some(crate::guard::ClientIp(ip)) = parts.extensions.get() {
            return ClientAddr(Some(*ip));
        }
        ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip()),
        )
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::from_parts(parts))
    }
}

/// Deletes the session.
pub(crate) async fn delete(
    conn: &mut SqliteConnection,
    session: &StaffSession,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM staff_session WHERE id_sha256 = ?")
        .bind(&session.id_sha256)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn origin_must_be_the_host_the_request_was_sent_to() {
        let host = ("host", "clinic.example:8443");
        assert!(same_origin(&headers(&[host]), None));
        assert!(same_origin(
            &headers(&[host, ("origin", "https://clinic.example:8443")]),
            None
        ));
        assert!(!same_origin(
            &headers(&[host, ("origin", "https://evil.example")]),
            None
        ));
        assert!(!same_origin(
            &headers(&[host, ("origin", "https://clinic.example")]),
            None
        ));
        assert!(!same_origin(&headers(&[host, ("origin", "null")]), None));
        assert!(same_origin(
            &headers(&[("origin", "https://h2.example")]),
            Some("h2.example")
        ));
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let h = headers(&[("cookie", "a=1; __Host-intake-session=abc; b=2")]);
        assert_eq!(cookie_value(&h), Some("abc"));
        assert_eq!(cookie_value(&headers(&[("cookie", "a=1")])), None);
        assert_eq!(
            cookie_value(&headers(&[("cookie", "__Host-intake-session=")])),
            None
        );
    }
}
