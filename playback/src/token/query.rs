//! Finding a token in a query string, and removing it before a request is forwarded.
//!
//! Values are returned exactly as sent (never percent-decoded), because a signed-URL MAC covers
//! the token's bytes as they appear in the URL.

/// The raw value of the first `name=` parameter in `query`.
pub fn query_param<'q>(query: Option<&'q str>, name: &str) -> Option<&'q str> {
    query?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then_some(value)
    })
}

/// `query` with every `name` parameter removed (for requests forwarded to an origin).
pub fn query_without(query: Option<&str>, name: &str) -> Option<String> {
    let kept: Vec<&str> = query?
        .split('&')
        .filter(|pair| !pair.is_empty() && pair.split_once('=').map_or(*pair, |(k, _)| k) != name)
        .collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_raw() {
        let q = Some("a=1&token=exp=9~acl=/hls/v/*~hmac=ab&b=2");
        assert_eq!(query_param(q, "token"), Some("exp=9~acl=/hls/v/*~hmac=ab"));
        assert_eq!(query_param(q, "a"), Some("1"));
        assert_eq!(query_param(q, "tok"), None);
        assert_eq!(query_param(None, "token"), None);
        assert_eq!(query_param(Some("token=x%41"), "token"), Some("x%41"));
    }

    #[test]
    fn tokens_are_stripped_for_the_origin() {
        assert_eq!(
            query_without(Some("token=x&a=1&token=y&b=2"), "token").as_deref(),
            Some("a=1&b=2")
        );
        assert_eq!(query_without(Some("token=x"), "token"), None);
        assert_eq!(query_without(None, "token"), None);
        assert_eq!(
            query_without(Some("tokenx=1"), "token").as_deref(),
            Some("tokenx=1")
        );
    }
}
