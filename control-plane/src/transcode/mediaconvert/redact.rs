//! Keeps static content keys out of logs: MediaConvert echoes the job settings, key included,
//! in its `CreateJob` and `GetJob` responses, and the AWS SDK logs response bodies and parsed
//! outputs at TRACE level. [`RedactingClient`] wraps the HTTP client of MediaConvert calls and
//! replaces every `staticKeyValue` before the SDK reads a response (found by the log-capture
//! test: without it, `RUST_LOG=trace` printed the key).

use aws_sdk_mediaconvert::config::{HttpClient, SharedHttpClient};
use aws_sdk_s3::primitives::{ByteStream, SdkBody};
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

/// Largest MediaConvert response read (a job with its settings is a few tens of KiB).
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;
/// The JSON member whose string value is a static content key.
const STATIC_KEY_MEMBER: &[u8] = b"\"staticKeyValue\"";
const REDACTED: &[u8] = b"<redacted>";

/// `json` with the string value of every `"staticKeyValue"` member replaced by `<redacted>`.
/// A scan, not a parse: the member name cannot occur inside another string without its quotes
/// being escaped, and a value is hex.
pub fn redact_static_keys(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len());
    let mut rest = json;
    while let Some(at) = find(rest, STATIC_KEY_MEMBER) {
        let after = at + STATIC_KEY_MEMBER.len();
        out.extend_from_slice(&rest[..after]);
        rest = &rest[after..];
        // `\s* : \s* "value"`
        let value_start = rest
            .iter()
            .position(|b| !b.is_ascii_whitespace() && *b != b':')
            .unwrap_or(rest.len());
        if rest.get(value_start) != Some(&b'"') {
            continue;
        }
        let Some(len) = rest[value_start + 1..].iter().position(|b| *b == b'"') else {
            // Unterminated: drop the rest rather than echo part of a key.
            out.extend_from_slice(&rest[..value_start]);
            out.extend_from_slice(b"\"");
            out.extend_from_slice(REDACTED);
            out.extend_from_slice(b"\"");
            return out;
        };
        out.extend_from_slice(&rest[..=value_start]);
        out.extend_from_slice(REDACTED);
        rest = &rest[value_start + 1 + len..];
    }
    out.extend_from_slice(rest);
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// An HTTP client whose responses are read whole (bounded) and have their static keys
/// redacted before the SDK (and its trace logging) sees them.
#[derive(Debug)]
pub struct RedactingClient {
    inner: SharedHttpClient,
}

impl RedactingClient {
    /// Wraps `inner` (the client every other AWS call uses).
    pub fn new(inner: SharedHttpClient) -> Self {
        RedactingClient { inner }
    }
}

impl HttpClient for RedactingClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(RedactingConnector {
            inner: self.inner.http_connector(settings, components),
        })
    }
}

#[derive(Debug)]
struct RedactingConnector {
    inner: SharedHttpConnector,
}

impl HttpConnector for RedactingConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.inner.clone();
        HttpConnectorFuture::new(async move {
            let mut response = inner.call(request).await?;
            let mut body = ByteStream::new(response.take_body());
            let mut bytes = Vec::new();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| ConnectorError::io(e.into()))?;
                if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(ConnectorError::other(
                        format!("MediaConvert response over {MAX_RESPONSE_BYTES} bytes").into(),
                        None,
                    ));
                }
                bytes.extend_from_slice(&chunk);
            }
            let redacted = redact_static_keys(&bytes);
            if response.headers().contains_key("content-length") {
                response
                    .headers_mut()
                    .insert("content-length", redacted.len().to_string());
            }
            *response.body_mut() = SdkBody::from(redacted);
            Ok(response)
        })
    }
}
