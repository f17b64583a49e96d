//! The parts of an `http://` or `https://` URL that outbound calls and their
//! settings need, read in one place: the scheme, `host:port` with the scheme's
//! default port made explicit, and the path.

/// `(scheme, host:port, path)` of an `http://` or `https://` URL: the port is the
/// scheme's default when absent, user info is dropped, and the path is `/` when
/// empty. `None` for another scheme or no host.
///
/// ```
/// use swarm_obs::url::split;
/// assert_eq!(split("https://otel.example/v1/logs"), Some(("https", "otel.example:443".into(), "/v1/logs".into())));
/// assert_eq!(split("http://[::1]:4318"), Some(("http", "[::1]:4318".into(), "/".into())));
/// assert_eq!(split("ftp://h"), None);
/// assert_eq!(split("http:///x"), None);
/// ```
pub fn split(url: &str) -> Option<(&'static str, String, String)> {
    let (scheme, rest, port) = if let Some(r) = url.strip_prefix("http://") {
        ("http", r, 80)
    } else if let Some(r) = url.strip_prefix("https://") {
        ("https", r, 443)
    } else {
        return None;
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (host, path) = rest.split_at(end);
    // Credentials in the URL are not part of the name.
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    if host.is_empty() || host.starts_with(':') {
        return None;
    }
    // `[::1]:4318` and `h:4318` carry a port; `h` and `[::1]` do not.
    let has_port = host
        .rsplit_once(':')
        .is_some_and(|(h, p)| !h.ends_with(':') && !p.contains(']'));
    let authority = if has_port {
        host.to_owned()
    } else {
        format!("{host}:{port}")
    };
    let path = match path {
        "" => "/".to_owned(),
        p if p.starts_with('/') => p.to_owned(),
        p => format!("/{p}"),
    };
    Some((scheme, authority, path))
}

/// `host:port` of `url`, as [`split`] reads it.
///
/// ```
/// use swarm_obs::url::authority;
/// assert_eq!(authority("https://otel.example/v1/logs").as_deref(), Some("otel.example:443"));
/// assert_eq!(authority("ftp://h"), None);
/// ```
pub fn authority(url: &str) -> Option<String> {
    split(url).map(|(_, authority, _)| authority)
}
