//! Just enough HTTP/1.1 client to post one body and read the status back, on plain
//! std sockets: one request per connection, no resolver thread, no pool, and one
//! time budget from connect to status line. Used for the loopback collector and for
//! OTLP receivers alike.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Sends `method path` with `body` to `host` (`host:port`) and returns the status.
pub(crate) fn send(
    host: &str,
    method: &str,
    path: &str,
    content_type: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    budget: Duration,
) -> io::Result<u16> {
    let deadline = Instant::now() + budget;
    let left = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "time budget spent"))
    };
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {host}\r\nuser-agent: swarm-obs/{}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n",
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    for (k, v) in headers {
        // A header value with a line break would smuggle a second header or request.
        if k.contains(['\r', '\n', ':']) || v.contains(['\r', '\n']) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("header {k:?} holds a line break or colon"),
            ));
        }
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let addrs: Vec<SocketAddr> = host.to_socket_addrs()?.collect();
    let mut stream = None;
    let mut last_err = io::Error::new(io::ErrorKind::NotFound, "no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, left()?) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_err = e,
        }
    }
    let mut stream = stream.ok_or(last_err)?;
    stream.set_nodelay(true)?;
    // One buffer, one write for small requests: no Nagle pause between head and body.
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    stream.set_write_timeout(Some(left()?))?;
    stream.write_all(&request)?;
    let mut buf = [0u8; 256];
    let mut got = 0;
    while !buf[..got].contains(&b'\n') && got < buf.len() {
        stream.set_read_timeout(Some(left()?))?;
        let n = stream.read(&mut buf[got..])?;
        if n == 0 {
            break;
        }
        got += n;
    }
    parse_status_line(&buf[..got])
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an HTTP response"))
}

/// The status code of `HTTP/1.x NNN reason`.
fn parse_status_line(b: &[u8]) -> Option<u16> {
    let line = b.split(|&c| c == b'\n').next()?;
    let mut parts = line.split(|&c| c == b' ');
    let version = parts.next()?;
    if !version.starts_with(b"HTTP/1.") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 {
        return None;
    }
    std::str::from_utf8(code).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_parse_strictly() {
        assert_eq!(parse_status_line(b"HTTP/1.1 202 Accepted\r\n"), Some(202));
        assert_eq!(parse_status_line(b"HTTP/1.0 400 Bad\r\nx: y"), Some(400));
        for bad in [
            &b""[..],
            b"garbage",
            b"HTTP/2 200",
            b"HTTP/1.1 2000 x",
            b"SSH-2.0-x",
        ] {
            assert_eq!(parse_status_line(bad), None);
        }
    }

    #[test]
    fn header_injection_is_refused() {
        let err = send(
            "127.0.0.1:9",
            "POST",
            "/",
            "text/plain",
            &[("x", "a\r\nevil: 1")],
            b"",
            Duration::from_millis(10),
        );
        assert_eq!(err.unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }
}
