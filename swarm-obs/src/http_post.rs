//! Just enough HTTP/1.1 client to post one body and read the status back, on plain
//! std sockets: one request per connection, no resolver thread, no pool, and one
//! time budget from connect to status line. Used for the local collector. A caller
//! whose request needs no answer (the event is on disk, the collector reads it
//! from there too) can write it and leave: [`send_unanswered`].
//!
//! Where the collector also serves a Unix socket, requests go there: no TCP
//! handshake, and no loopback round trip through the network stack, which is most
//! of what a one-shot hook pays for reaching the collector.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::{Duration, Instant};

/// Where a request goes: the collector's Unix socket when it has one (tried first),
/// and its `host:port`, which is also the request's `Host`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Target<'a> {
    /// `host:port`.
    pub host: &'a str,
    /// The collector's Unix socket, if it serves one.
    pub socket: Option<&'a Path>,
}

/// Sends `method path` with `body` to `to` and returns the status.
pub(crate) fn send(
    to: Target<'_>,
    method: &str,
    path: &str,
    content_type: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    budget: Duration,
) -> io::Result<u16> {
    check_headers(headers)?;
    let mut conn = Pipeline::connect(to, budget)?;
    conn.send(method, path, content_type, headers, body, true)?;
    conn.status()
}

/// Writes `method path` with `body` to `to` and returns without
/// the answer: once this returns, every byte of the request is in the kernel's
/// send buffer, which delivers it whether or not this process is still there, and
/// the socket may be closed (by exit). Fails only when the connect or the write
/// does not finish within `budget`.
pub(crate) fn send_unanswered(
    to: Target<'_>,
    method: &str,
    path: &str,
    content_type: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    budget: Duration,
) -> io::Result<()> {
    check_headers(headers)?;
    let mut conn = Pipeline::connect(to, budget)?;
    conn.send(method, path, content_type, headers, body, true)?;
    conn.leave()
}

/// One connection on which requests go out one after another without waiting for
/// answers (HTTP/1.1 pipelining), answered in order: a caller with two requests
/// pays for one connect and can work between them while the server answers the
/// first. One time budget covers everything from connect to the last status line.
pub(crate) struct Pipeline {
    stream: Stream,
    host: String,
    deadline: Instant,
    /// Requests sent whose answers are not read yet.
    unanswered: usize,
    /// Bytes read past the answers taken so far.
    buf: Vec<u8>,
    /// An answer said `connection: close`: the requests sent after it were never
    /// taken, and must go again on a new connection.
    closing: bool,
}

/// Largest response head, and body of an answer with more behind it, read from a
/// server, so a wrong peer cannot make the client buffer without end.
const MAX_HEAD: usize = 16 << 10;
const MAX_BODY: usize = 1 << 20;

impl Pipeline {
    /// Connects to `to` within `budget`: its Unix socket if it has one that takes
    /// the connection at once, else `host:port` over TCP.
    pub(crate) fn connect(to: Target<'_>, budget: Duration) -> io::Result<Self> {
        let deadline = Instant::now() + budget;
        let stream = match to.socket.and_then(|p| unix::connect(p).ok()) {
            Some(s) => s,
            None => Stream::Tcp(connect_tcp(to.host, deadline)?),
        };
        Ok(Self {
            stream,
            host: to.host.to_owned(),
            deadline,
            unanswered: 0,
            buf: Vec::new(),
            closing: false,
        })
    }

    /// Writes one request; `last` asks the server to close after answering it.
    pub(crate) fn send(
        &mut self,
        method: &str,
        path: &str,
        content_type: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        last: bool,
    ) -> io::Result<()> {
        self.write_request(method, path, content_type, headers, body, last)
    }

    /// Leaves the connection without reading the answers to the requests sent on
    /// it: they are fully written (the kernel delivers them after the socket is
    /// closed), and the server is told no more comes, so it serves them out.
    pub(crate) fn leave(self) -> io::Result<()> {
        // The collector serves a request whose client has half-closed (hyper's
        // `half_close`), so saying "no more" is a plain shutdown of this side.
        self.stream.shutdown_write()
    }

    /// Writes one request, in one write.
    fn write_request(
        &mut self,
        method: &str,
        path: &str,
        content_type: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        last: bool,
    ) -> io::Result<()> {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\nuser-agent: swarm-obs/{}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n",
            self.host,
            env!("CARGO_PKG_VERSION"),
            body.len()
        );
        if last {
            head.push_str("connection: close\r\n");
        }
        check_headers(headers)?;
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        // One buffer, one write for small requests: no Nagle pause between head and body.
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        self.stream.set_write_timeout(Some(left(self.deadline)?))?;
        self.stream.write_all(&request)?;
        self.unanswered += 1;
        Ok(())
    }

    /// The status of the oldest unanswered request. An answer with more behind it
    /// is read whole (its head, then `content-length` bytes of body) so the next
    /// one can be found; the last is read only up to its status line.
    pub(crate) fn status(&mut self) -> io::Result<u16> {
        if self.unanswered == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no request awaits an answer",
            ));
        }
        self.unanswered -= 1;
        let not_http = || io::Error::new(io::ErrorKind::InvalidData, "not an HTTP response");
        if self.unanswered == 0 {
            self.fill_until(MAX_HEAD, |b| b.contains(&b'\n').then_some(0))?;
            return parse_status_line(&self.buf).ok_or_else(not_http);
        }
        let head_len = self.fill_until(MAX_HEAD, |b| {
            b.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
        })?;
        let head = &self.buf[..head_len];
        let status = parse_status_line(head).ok_or_else(not_http)?;
        let (body_len, close) = framing(head)?;
        if close {
            self.closing = true;
            self.unanswered = 0;
        }
        let total = head_len + body_len;
        self.fill_until(total, |b| (b.len() >= total).then_some(0))?;
        self.buf.drain(..total);
        Ok(status)
    }

    /// Whether the server said it closes the connection after an answer read so
    /// far: no later request on it will be answered.
    pub(crate) fn closing(&self) -> bool {
        self.closing
    }

    /// Reads until `found` says what is buffered is enough, and returns its answer;
    /// fails once more than `cap` bytes are buffered without that.
    fn fill_until(
        &mut self,
        cap: usize,
        found: impl Fn(&[u8]) -> Option<usize>,
    ) -> io::Result<usize> {
        let mut chunk = [0u8; 1024];
        loop {
            if let Some(n) = found(&self.buf) {
                return Ok(n);
            }
            if self.buf.len() > cap {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "response larger than this client reads",
                ));
            }
            self.stream.set_read_timeout(Some(left(self.deadline)?))?;
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed before the whole answer",
                ));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Connects to the first address of `host` (`host:port`) that answers before `deadline`.
fn connect_tcp(host: &str, deadline: Instant) -> io::Result<TcpStream> {
    let addrs: Vec<SocketAddr> = host.to_socket_addrs()?.collect();
    let mut last_err = io::Error::new(io::ErrorKind::NotFound, "no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, left(deadline)?) {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(e) => last_err = e,
        }
    }
    Err(last_err)
}

/// A connection to the collector, over TCP or its Unix socket.
enum Stream {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(std::os::unix::net::UnixStream),
}

impl Stream {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.set_read_timeout(t),
            #[cfg(unix)]
            Self::Unix(s) => s.set_read_timeout(t),
        }
    }

    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.set_write_timeout(t),
            #[cfg(unix)]
            Self::Unix(s) => s.set_write_timeout(t),
        }
    }

    fn shutdown_write(&self) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
            #[cfg(unix)]
            Self::Unix(s) => s.shutdown(std::net::Shutdown::Write),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.read(buf),
            #[cfg(unix)]
            Self::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.write(buf),
            #[cfg(unix)]
            Self::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(unix)]
mod unix {
    use std::io;
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::UnixStream;
    use std::path::Path;

    use super::Stream;

    /// Connects to the Unix socket at `path` without waiting: a collector whose
    /// backlog is full (hung, or swamped) answers "try again" at once, and the
    /// caller goes on to TCP, whose connect has a timeout, instead of blocking
    /// without one (a blocking connect to a full Unix socket waits for ever).
    pub(super) fn connect(path: &Path) -> io::Result<Stream> {
        let bytes = path.as_os_str().as_bytes();
        // SAFETY: an all-zero sockaddr_un is valid; the path is copied in below.
        let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        if bytes.is_empty() || bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "socket path empty, too long or holding NUL",
            ));
        }
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
            *d = *s as libc::c_char;
        }
        let fd = new_socket()?;
        let len = (std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1) as libc::socklen_t;
        // SAFETY: `addr` is a valid sockaddr_un of at least `len` bytes.
        let rc = unsafe {
            libc::connect(
                std::os::fd::AsRawFd::as_raw_fd(&fd),
                (&raw const addr).cast(),
                len,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        let stream = UnixStream::from(fd);
        stream.set_nonblocking(false)?;
        Ok(Stream::Unix(stream))
    }

    /// A non-blocking, close-on-exec stream socket.
    fn new_socket() -> io::Result<OwnedFd> {
        #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
        {
            // SAFETY: socket has no memory preconditions.
            let fd = unsafe {
                libc::socket(
                    libc::AF_UNIX,
                    libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                    0,
                )
            };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `fd` is a new descriptor that nothing else owns.
            Ok(unsafe { OwnedFd::from_raw_fd(fd) })
        }
        #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
        {
            // SAFETY: socket has no memory preconditions.
            let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `fd` is a new descriptor that nothing else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let stream = UnixStream::from(fd);
            stream.set_nonblocking(true)?;
            // SAFETY: fcntl on a descriptor this function owns.
            unsafe {
                libc::fcntl(
                    std::os::fd::AsRawFd::as_raw_fd(&stream),
                    libc::F_SETFD,
                    libc::FD_CLOEXEC,
                )
            };
            Ok(OwnedFd::from(stream))
        }
    }
}

#[cfg(not(unix))]
mod unix {
    use std::io;
    use std::path::Path;

    /// No Unix sockets here: always TCP.
    pub(super) fn connect(_: &Path) -> io::Result<super::Stream> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "no Unix sockets",
        ))
    }
}

/// Refuses a header that would smuggle a second header or request.
fn check_headers(headers: &[(&str, &str)]) -> io::Result<()> {
    match headers
        .iter()
        .find(|(k, v)| k.contains(['\r', '\n', ':']) || v.contains(['\r', '\n']))
    {
        Some((k, _)) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("header {k:?} holds a line break or colon"),
        )),
        None => Ok(()),
    }
}

/// Time left before `deadline`, or an error once it has passed.
fn left(deadline: Instant) -> io::Result<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "time budget spent"))
}

/// How a response head frames what follows: its body length (`content-length`, or
/// 0 when it has none and no chunked body: a 204, an empty 202), and whether the
/// server closes the connection after it.
fn framing(head: &[u8]) -> io::Result<(usize, bool)> {
    let text = std::str::from_utf8(head)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "response head is not text"))?;
    let mut length = None;
    let mut close = false;
    for line in text.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a chunked answer cannot be followed on a pipelined connection",
            ));
        }
        if name.eq_ignore_ascii_case("connection") {
            close |= value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("close"));
        }
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    "bad content-length in the answer",
                )
            })?);
        }
    }
    match length {
        Some(n) if n > MAX_BODY => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "answer body larger than this client reads",
        )),
        n => Ok((n.unwrap_or(0), close)),
    }
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

    fn tcp(host: &str) -> Target<'_> {
        Target { host, socket: None }
    }

    /// A server on a loopback port that reads one connection's bytes until it has
    /// seen `requests` request heads, then writes `answer`.
    fn server(
        requests: usize,
        answer: &'static [u8],
    ) -> (String, std::thread::JoinHandle<Vec<u8>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let t = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            let mut chunk = [0u8; 4096];
            while got.windows(4).filter(|w| w == b"\r\n\r\n").count() < requests {
                let n = s.read(&mut chunk).unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&chunk[..n]);
            }
            s.write_all(answer).unwrap();
            got
        });
        (addr, t)
    }

    #[test]
    fn pipelined_requests_get_their_answers_in_order() {
        let (addr, t) = server(
            2,
            b"HTTP/1.1 202 Accepted\r\nContent-Length: 12\r\n\r\n{\"queued\":1}HTTP/1.1 503 Busy\r\nconnection: close\r\n\r\n",
        );
        let mut p = Pipeline::connect(tcp(&addr), Duration::from_secs(10)).unwrap();
        p.send("POST", "/a", "text/plain", &[], b"one", false)
            .unwrap();
        p.send("POST", "/b", "text/plain", &[("x", "y")], b"two", true)
            .unwrap();
        assert_eq!(p.status().unwrap(), 202);
        assert_eq!(p.status().unwrap(), 503);
        assert_eq!(p.status().unwrap_err().kind(), io::ErrorKind::InvalidInput);
        let sent = String::from_utf8(t.join().unwrap()).unwrap();
        let (first, second) = sent.split_once("one").unwrap();
        assert!(!first.contains("connection: close"), "{first}");
        assert!(second.starts_with("POST /b ") && second.contains("connection: close\r\nx: y\r\n"));
        assert!(second.ends_with("two"));
    }

    #[test]
    fn a_server_that_closes_after_the_first_answer_is_noticed() {
        let (addr, t) = server(
            2,
            b"HTTP/1.1 202 Accepted\r\nConnection: keep-alive, Close\r\ncontent-length: 2\r\n\r\nok",
        );
        let mut p = Pipeline::connect(tcp(&addr), Duration::from_secs(10)).unwrap();
        p.send("POST", "/a", "text/plain", &[], b"", false).unwrap();
        p.send("POST", "/b", "text/plain", &[], b"", true).unwrap();
        assert!(!p.closing());
        assert_eq!(p.status().unwrap(), 202);
        assert!(p.closing(), "the second request was never taken");
        assert_eq!(p.status().unwrap_err().kind(), io::ErrorKind::InvalidInput);
        t.join().unwrap();
    }

    #[test]
    fn answers_that_cannot_be_followed_are_errors() {
        for answer in [
            &b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 99999999\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort",
            b"SSH-2.0-x\r\n\r\n",
        ] {
            let (addr, t) = server(2, answer);
            let mut p = Pipeline::connect(tcp(&addr), Duration::from_secs(10)).unwrap();
            p.send("POST", "/a", "text/plain", &[], b"", false).unwrap();
            p.send("POST", "/b", "text/plain", &[], b"", true).unwrap();
            assert!(p.status().is_err(), "{:?}", String::from_utf8_lossy(answer));
            drop(p);
            t.join().unwrap();
        }
    }

    /// A server on a loopback port that reads one connection to its end, answering
    /// nothing; returns what it read.
    fn silent_server() -> (String, std::thread::JoinHandle<Vec<u8>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let t = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            got
        });
        (addr, t)
    }

    #[test]
    fn a_request_left_unanswered_is_written_whole_then_an_empty_line() {
        let (addr, t) = silent_server();
        send_unanswered(
            tcp(&addr),
            "POST",
            "/a",
            "text/plain",
            &[("x", "y")],
            b"body",
            Duration::from_secs(10),
        )
        .unwrap();
        let sent = String::from_utf8(t.join().unwrap()).unwrap();
        assert!(sent.starts_with("POST /a HTTP/1.1\r\n"), "{sent}");
        assert!(
            sent.contains("connection: close\r\nx: y\r\n\r\nbody"),
            "{sent}"
        );
        assert!(sent.ends_with("body"), "{sent:?}");

        let (addr, t) = silent_server();
        let mut p = Pipeline::connect(tcp(&addr), Duration::from_secs(10)).unwrap();
        p.send("POST", "/b", "text/plain", &[], b"two", false)
            .unwrap();
        p.leave().unwrap();
        let sent = String::from_utf8(t.join().unwrap()).unwrap();
        assert!(!sent.contains("connection: close"), "{sent}");
        assert!(sent.ends_with("\r\n\r\ntwo"), "{sent:?}");
    }

    #[test]
    fn header_injection_is_refused() {
        let err = send(
            tcp("127.0.0.1:9"),
            "POST",
            "/",
            "text/plain",
            &[("x", "a\r\nevil: 1")],
            b"",
            Duration::from_millis(10),
        );
        assert_eq!(err.unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }

    #[cfg(unix)]
    #[test]
    fn the_unix_socket_is_used_when_it_takes_the_connection() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("collector.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let t = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            let mut chunk = [0u8; 4096];
            while !got.windows(3).any(|w| w == b"one") {
                let n = s.read(&mut chunk).unwrap();
                got.extend_from_slice(&chunk[..n]);
            }
            s.write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")
                .unwrap();
            got
        });
        // Port 9 (discard) is closed here: only the socket can answer.
        let to = Target {
            host: "127.0.0.1:9",
            socket: Some(&path),
        };
        let status = send(
            to,
            "POST",
            "/a",
            "text/plain",
            &[],
            b"one",
            Duration::from_secs(10),
        );
        assert_eq!(status.unwrap(), 202);
        let sent = String::from_utf8(t.join().unwrap()).unwrap();
        // The Host is the collector's TCP address, which its Host check knows.
        assert!(sent.contains("host: 127.0.0.1:9\r\n"), "{sent}");
    }

    #[cfg(unix)]
    #[test]
    fn a_missing_or_dead_socket_falls_back_to_tcp() {
        let dir = tempfile::tempdir().unwrap();
        // A socket file nobody listens on (a collector killed with SIGKILL leaves one).
        let dead = dir.path().join("dead.sock");
        drop(std::os::unix::net::UnixListener::bind(&dead).unwrap());
        let missing = dir.path().join("missing.sock");
        let long = dir.path().join("x".repeat(200));
        for socket in [&dead, &missing, &long] {
            assert!(sent_past(socket).ends_with(b"body"), "{}", socket.display());
        }
    }

    /// What a TCP server receives of a request sent with `socket` named first.
    #[cfg(unix)]
    fn sent_past(socket: &std::path::Path) -> Vec<u8> {
        let (addr, t) = silent_server();
        let to = Target {
            host: &addr,
            socket: Some(socket),
        };
        send_unanswered(
            to,
            "POST",
            "/a",
            "text/plain",
            &[],
            b"body",
            Duration::from_secs(10),
        )
        .unwrap();
        t.join().unwrap()
    }

    #[cfg(unix)]
    #[test]
    fn a_socket_with_a_full_backlog_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hung.sock");
        // A listener that never accepts: its backlog fills, then a blocking connect
        // would wait for ever.
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let mut held = Vec::new();
        while let Ok(s) = super::unix::connect(&path) {
            held.push(s);
            assert!(held.len() < 10_000, "the backlog never filled");
        }
        let started = Instant::now();
        assert!(sent_past(&path).ends_with(b"body"));
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(listener);
    }
}
