//! Applies the request an origin asked for (`delivery::origin::UpstreamRequest`) to Pingora's
//! upstream request, through `RequestHeader`'s own methods so its header-case map stays true.

use pingora::http::RequestHeader;
use pingora::{Error, ErrorType};

use crate::delivery::origin::UpstreamRequest;

/// Rewrites `req` into `upstream`: its URI, the headers removed, cleared and set.
pub fn apply(upstream: &UpstreamRequest, req: &mut RequestHeader) -> pingora::Result<()> {
    let uri = upstream
        .path_and_query
        .parse()
        .map_err(|e| Error::because(ErrorType::InternalError, "building the origin URI", e))?;
    req.set_uri(uri);
    if upstream.clear {
        let names: Vec<http::HeaderName> = req.headers.keys().cloned().collect();
        for name in names {
            req.remove_header(&name);
        }
    }
    for name in &upstream.remove {
        req.remove_header(name);
    }
    for (name, value) in &upstream.insert {
        req.insert_header(name.clone(), value.clone())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_of_a_removed_header_goes() {
        let mut req = RequestHeader::build("GET", b"/hls/v/a.ts?hdnts=t", None).unwrap();
        req.append_header("cookie", "a=1").unwrap();
        req.append_header("cookie", "hdnts=t").unwrap();
        req.insert_header("range", "bytes=0-9").unwrap();
        let upstream = UpstreamRequest {
            path_and_query: "/media/v/a.ts".into(),
            clear: false,
            remove: vec![http::header::COOKIE],
            insert: vec![(http::header::HOST, "origin".parse().unwrap())],
        };
        apply(&upstream, &mut req).unwrap();
        assert_eq!(req.uri, "/media/v/a.ts");
        assert!(req.headers.get("cookie").is_none());
        assert_eq!(req.headers["range"], "bytes=0-9");
        assert_eq!(req.headers["host"], "origin");
        let cleared = UpstreamRequest {
            clear: true,
            ..upstream
        };
        apply(&cleared, &mut req).unwrap();
        assert_eq!(req.headers.len(), 1, "{:?}", req.headers);
    }
}
