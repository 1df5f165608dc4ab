//! What a request presents, read once when it arrives: its path and query, its credentials
//! (the JWT, every `Cookie` header as one), its client address, the session and device
//! headers, and the clock. Handlers read these facts instead of the request.

use std::borrow::Cow;
use std::net::IpAddr;

use http::{HeaderMap, Method};
use pingora::http::RequestHeader;
use playback::jwt::presented_jwt;
use playback::token::admission::joined_cookie_header;

use crate::access::grant::{DEVICE_HEADER, SESSION_HEADER};
use crate::core::clock::Now;

/// One request's facts.
pub struct RequestFacts<'r> {
    /// The request itself, for what only the HTTP layer reads (conditional and range headers).
    pub request: &'r RequestHeader,
    pub method: &'r Method,
    /// The raw path, still percent-encoded.
    pub path: &'r str,
    pub query: Option<&'r str>,
    pub headers: &'r HeaderMap,
    /// Every `Cookie` header, joined (`playback::token::admission::joined_cookie_header`).
    pub cookies: Option<Cow<'r, str>>,
    /// The viewer JWT: `Authorization: Bearer`, else `?token=`.
    pub jwt: Option<&'r str>,
    /// The client: the peer, or behind `server.trusted_proxies` the address they forwarded.
    pub client_ip: Option<IpAddr>,
    /// `X-Playback-Session-Id`, as sent.
    pub session_header: Option<&'r [u8]>,
    /// `X-Device-Id`, as sent.
    pub device_header: Option<&'r [u8]>,
    /// The clock, read once for the whole request.
    pub now: Now,
    /// The request comes from the CDN (`[cdn]` secret, or its client certificate): token-free
    /// answers it may cache for everyone.
    pub cdn_pull: bool,
}

impl<'r> RequestFacts<'r> {
    /// Reads `request`'s facts; `client_ip` and `now` come from the connection and the clock.
    pub fn read(request: &'r RequestHeader, client_ip: Option<IpAddr>, now: Now) -> Self {
        let headers = &request.headers;
        let query = request.uri.query();
        let cookie_values: Vec<&str> = headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let authorization = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        RequestFacts {
            request,
            method: &request.method,
            path: request.uri.path(),
            query,
            headers,
            cookies: joined_cookie_header(&cookie_values),
            jwt: presented_jwt(authorization, query),
            client_ip,
            session_header: headers.get(SESSION_HEADER).map(|v| v.as_bytes()),
            device_header: headers.get(DEVICE_HEADER).map(|v| v.as_bytes()),
            now,
            cdn_pull: false,
        }
    }

    /// A header's value as text, when it is.
    pub fn header(&self, name: &str) -> Option<&'r str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}
