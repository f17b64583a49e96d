//! This machine's name, looked up once.

use std::sync::OnceLock;

/// The host name of this machine (`gethostname`), cached after the first call.
/// Falls back to `$HOSTNAME`, then `localhost`.
pub fn hostname() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
        // within it or truncates, and we stop at the first NUL either way.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        let from_os = (rc == 0)
            .then(|| {
                let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
                String::from_utf8_lossy(&buf[..end]).into_owned()
            })
            .filter(|s| !s.is_empty());
        from_os
            .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| "localhost".to_owned())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn hostname_is_stable_and_nonempty() {
        let a = super::hostname();
        assert!(!a.is_empty());
        assert_eq!(a, super::hostname());
    }
}
