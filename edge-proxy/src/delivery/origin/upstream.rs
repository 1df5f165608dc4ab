//! The request an origin wants for a proxied segment, as data: the HTTP layer applies it to
//! Pingora's upstream request, so no origin names Pingora's request type, and tests check it
//! on plain `http` parts ([`UpstreamRequest::apply_to`]).

use http::{HeaderMap, HeaderName, HeaderValue, Uri};

use super::fetch::OriginError;

/// What to send an origin for one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamRequest {
    /// The path and query to request, already encoded.
    pub path_and_query: String,
    /// Drop every header of the request first: nothing the viewer sent goes through unless it
    /// is in `insert` (the S3 origin).
    pub clear: bool,
    /// Headers to remove, every value (the HTTP origin: the viewer's credentials).
    pub remove: Vec<HeaderName>,
    /// Headers to set, replacing any value already there.
    pub insert: Vec<(HeaderName, HeaderValue)>,
}

impl UpstreamRequest {
    /// Applies the request to a URI and header map.
    pub fn apply_to(&self, uri: &mut Uri, headers: &mut HeaderMap) -> Result<(), OriginError> {
        *uri = self
            .path_and_query
            .parse()
            .map_err(|e| OriginError::Failed(format!("building the origin URI: {e}")))?;
        if self.clear {
            headers.clear();
        }
        for name in &self.remove {
            headers.remove(name);
        }
        for (name, value) in &self.insert {
            headers.insert(name.clone(), value.clone());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_uri_removals_and_insertions() {
        let mut uri: Uri = "/hls/v/a.ts?hdnts=t".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.append("cookie", "a=1".parse().unwrap());
        headers.append("cookie", "hdnts=t".parse().unwrap());
        headers.insert("range", "bytes=0-1".parse().unwrap());
        let request = UpstreamRequest {
            path_and_query: "/media/v/a.ts?part=1".into(),
            clear: false,
            remove: vec![http::header::COOKIE],
            insert: vec![(http::header::HOST, "origin:9000".parse().unwrap())],
        };
        request.apply_to(&mut uri, &mut headers).unwrap();
        assert_eq!(uri, "/media/v/a.ts?part=1");
        assert!(headers.get("cookie").is_none(), "every value removed");
        assert_eq!(headers["range"], "bytes=0-1");
        assert_eq!(headers["host"], "origin:9000");
        let cleared = UpstreamRequest {
            clear: true,
            remove: vec![],
            ..request
        };
        cleared.apply_to(&mut uri, &mut headers).unwrap();
        assert_eq!(headers.len(), 1);
    }
}
