//! TLS for the whole-program tests: a certificate authority made in the test
//! ([`TestCa`]) that issues server and client certificates as PEM files, a
//! TLS-terminating proxy ([`TlsTerminator`]) in front of a plaintext listener, and
//! an HTTPS answerer ([`HttpsAnswerer`]) for the health probe tests.
//!
//! All of it runs on rustls with the ring provider, as ureq's rustls does, so no
//! crate of the suite pulls aws-lc-rs (and its cmake build) in.
//!
//! ```no_run
//! use swarm_obs_suite::tls::{HttpsAnswerer, TestCa};
//! let dir = tempfile::tempdir().unwrap();
//! let ca = TestCa::new(dir.path());
//! let answerer = HttpsAnswerer::start(&ca.server("collector", &["localhost", "127.0.0.1"]), 200);
//! // Point the program under test at `https://localhost:{answerer.port()}/` and
//! // trust `ca.ca_path()`.
//! ```

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

use crate::{ListenerMode, TestListener};

const DAY: i64 = 24 * 60 * 60;

/// A certificate and its private key, as PEM files (the key in PKCS#8).
#[derive(Debug, Clone)]
pub struct Leaf {
    /// The certificate.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

/// A certificate authority made for one test, writing what it issues into one
/// directory. Two `TestCa`s know nothing of each other, so a second one in another
/// directory makes certificates that the first one's clients must refuse.
pub struct TestCa {
    dir: PathBuf,
    ca_path: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    /// Makes a CA and writes its certificate to `dir/ca.pem`.
    pub fn new(dir: &Path) -> Self {
        // A name of its own, so a client trusting another CA finds no issuer at all
        // (as with a real wrong CA) rather than a same-named one with a bad signature.
        static MADE: AtomicUsize = AtomicUsize::new(0);
        let n = MADE.fetch_add(1, Ordering::Relaxed);
        let mut params = CertificateParams::default();
        params.distinguished_name.push(
            DnType::CommonName,
            format!("swarm-obs test CA {}-{n}", std::process::id()),
        );
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        set_validity(&mut params, -DAY, 365 * DAY);
        let key = KeyPair::generate().expect("generate the CA key");
        let cert = params.self_signed(&key).expect("self-sign the CA");
        let ca_path = dir.join("ca.pem");
        write(&ca_path, &cert.pem());
        Self {
            dir: dir.to_owned(),
            ca_path,
            issuer: Issuer::new(params, key),
        }
    }

    /// The CA's certificate (PEM), for the clients to trust.
    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }

    /// A server certificate valid now for `hosts`: DNS names, or IP addresses
    /// (`127.0.0.1`), which become IP address names as clients expect.
    pub fn server(&self, name: &str, hosts: &[&str]) -> Leaf {
        self.issue(
            name,
            hosts,
            ExtendedKeyUsagePurpose::ServerAuth,
            (-DAY, 30 * DAY),
        )
    }

    /// A server certificate for `hosts` whose validity ended yesterday.
    pub fn expired_server(&self, name: &str, hosts: &[&str]) -> Leaf {
        self.issue(
            name,
            hosts,
            ExtendedKeyUsagePurpose::ServerAuth,
            (-2 * DAY, -DAY),
        )
    }

    /// A client certificate (common name `name`) for mutual TLS.
    pub fn client(&self, name: &str) -> Leaf {
        self.issue(
            name,
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
            (-DAY, 30 * DAY),
        )
    }

    /// Signs a fresh key's certificate valid from `valid.0` to `valid.1` seconds
    /// from now and writes both as `name.pem` and `name-key.pem`.
    fn issue(
        &self,
        name: &str,
        hosts: &[&str],
        usage: ExtendedKeyUsagePurpose,
        valid: (i64, i64),
    ) -> Leaf {
        let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        let mut params = CertificateParams::new(hosts).expect("valid host names");
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, valid.0, valid.1);
        let key = KeyPair::generate().expect("generate a leaf key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign a leaf certificate");
        let leaf = Leaf {
            cert: self.dir.join(format!("{name}.pem")),
            key: self.dir.join(format!("{name}-key.pem")),
        };
        write(&leaf.cert, &cert.pem());
        write(&leaf.key, &key.serialize_pem());
        leaf
    }
}

/// Makes `params` valid from `from` to `to` seconds from now (negative: past).
fn set_validity(params: &mut CertificateParams, from: i64, to: i64) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs();
    // rcgen's times are `time` crate values, which add std durations.
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    let at = |offset: i64| {
        epoch + Duration::from_secs(now.checked_add_signed(offset).expect("a time after 1970"))
    };
    params.not_before = at(from);
    params.not_after = at(to);
}

fn write(path: &Path, pem: &str) {
    std::fs::write(path, pem).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// A TLS-terminating TCP proxy on a free 127.0.0.1 port in front of a plaintext
/// upstream (`socat openssl-listen` in Rust): each connection's handshake is made
/// here, then bytes are copied both ways as they are until either side is done.
///
/// It advertises ALPN `h2` and `http/1.1`, so a gRPC client (h2) and an HTTP/1.1
/// client both connect; a gRPC client's upstream must then speak prior-knowledge
/// h2c. It runs on its own thread and runtime, so tests stay synchronous, and
/// [`stop`](Self::stop) or drop closes the listener and every connection and joins
/// the thread.
pub struct TlsTerminator {
    addr: SocketAddr,
    counts: Arc<Counts>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Counts {
    accepted: AtomicUsize,
    failed: AtomicUsize,
}

impl TlsTerminator {
    /// Serves `leaf` to any client, forwarding to `upstream` (`host:port`).
    pub fn start(leaf: &Leaf, upstream: &str) -> Self {
        Self::serve(server_config(leaf, None), upstream)
    }

    /// Like [`start`](Self::start), but only clients presenting a certificate that
    /// `client_ca` (PEM) signed complete the handshake.
    pub fn start_mtls(leaf: &Leaf, client_ca: &Path, upstream: &str) -> Self {
        Self::serve(server_config(leaf, Some(client_ca)), upstream)
    }

    fn serve(config: rustls::ServerConfig, upstream: &str) -> Self {
        // Bound here, not on the thread, so the port is known and taken on return.
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        listener
            .set_nonblocking(true)
            .expect("make the listener non-blocking");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .expect("build a tokio runtime");
        let (stop, stopped) = oneshot::channel();
        let counts = Arc::new(Counts::default());
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let (upstream, thread_counts) = (upstream.to_owned(), counts.clone());
        let thread = std::thread::Builder::new()
            .name(format!("tls-terminator-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(proxy(listener, acceptor, upstream, thread_counts, stopped));
                // Dropping the runtime drops every connection's task, closing its
                // sockets, before the thread ends.
                drop(runtime);
            })
            .expect("spawn the TLS terminator thread");
        Self {
            addr,
            counts,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `127.0.0.1:port`
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// How many handshakes completed.
    pub fn accepted(&self) -> usize {
        self.counts.accepted.load(Ordering::SeqCst)
    }

    /// How many handshakes failed (the client refused the certificate, or had no
    /// acceptable one of its own). The server learns of a failure after the client
    /// does, so a test waits for this count rather than reading it once.
    pub fn failed_handshakes(&self) -> usize {
        self.counts.failed.load(Ordering::SeqCst)
    }

    /// Closes the listener and every connection, and joins the thread.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for TlsTerminator {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn proxy(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    upstream: String,
    counts: Arc<Counts>,
    mut stopped: oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("hand the listener to tokio");
    loop {
        // A dropped sender stops the proxy too.
        let conn = tokio::select! {
            _ = &mut stopped => return,
            conn = listener.accept() => conn,
        };
        let Ok((tcp, _)) = conn else { continue };
        let (acceptor, upstream, counts) = (acceptor.clone(), upstream.clone(), counts.clone());
        tokio::spawn(async move {
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                counts.failed.fetch_add(1, Ordering::SeqCst);
                return;
            };
            counts.accepted.fetch_add(1, Ordering::SeqCst);
            // An unreachable upstream closes the client's connection, as socat does.
            let Ok(mut plain) = tokio::net::TcpStream::connect(&upstream).await else {
                return;
            };
            let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
        });
    }
}

fn server_config(leaf: &Leaf, client_ca: Option<&Path>) -> rustls::ServerConfig {
    // ring, as ureq's rustls uses: rustls deprecates its provider for lacking
    // post-quantum key exchange, of no matter to a test server on loopback.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions");
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in read_certs(ca) {
                roots.add(cert).expect("a usable client CA certificate");
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .expect("build the client certificate verifier");
            builder.with_client_cert_verifier(verifier)
        }
    };
    let key = PrivateKeyDer::from_pem_file(&leaf.key)
        .unwrap_or_else(|e| panic!("read the key {}: {e}", leaf.key.display()));
    let mut config = builder
        .with_single_cert(read_certs(&leaf.cert), key)
        .expect("the leaf's certificate and key go together");
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config
}

fn read_certs(path: &Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect())
        .unwrap_or_else(|e| panic!("read certificates from {}: {e}", path.display()))
}

/// An HTTPS server answering every request with one status (and a body `ok`,
/// `connection: close`): a [`TestListener`] behind a [`TlsTerminator`]. Stopped
/// on drop.
pub struct HttpsAnswerer {
    // Declared first so it is dropped first: the clients' connections end before
    // the listener behind them stops.
    tls: TlsTerminator,
    listener: TestListener,
    requests: AtomicUsize,
}

impl HttpsAnswerer {
    /// Serves `leaf` on a free 127.0.0.1 port, answering with `status`.
    pub fn start(leaf: &Leaf, status: u16) -> Self {
        let listener = TestListener::start(ListenerMode::Answer(status));
        let tls = TlsTerminator::start(leaf, &listener.addr());
        Self {
            tls,
            listener,
            requests: AtomicUsize::new(0),
        }
    }

    /// Answers later requests with `status` instead.
    pub fn set_status(&self, status: u16) {
        self.listener.set_mode(ListenerMode::Answer(status));
    }

    /// `127.0.0.1:port`
    pub fn addr(&self) -> SocketAddr {
        self.tls.addr()
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.tls.port()
    }

    /// The TLS side, for its handshake counts.
    pub fn terminator(&self) -> &TlsTerminator {
        &self.tls
    }

    /// How many requests were answered so far.
    pub fn requests(&self) -> usize {
        // The listener hands each request over before answering it.
        while self.listener.next_request(Duration::ZERO).is_some() {
            self.requests.fetch_add(1, Ordering::SeqCst);
        }
        self.requests.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};

    use super::*;

    /// Like [`crate::http`], trusting only `ca` and presenting `client`, if any.
    fn https(ca: &Path, client: Option<&Leaf>) -> ureq::Agent {
        let pem = |path: &Path| std::fs::read(path).expect("read a PEM file");
        let cert = |path: &Path| Certificate::from_pem(&pem(path)).expect("parse a certificate");
        let client = client.map(|leaf| {
            let key = PrivateKey::from_pem(&pem(&leaf.key)).expect("parse the client key");
            ClientCert::new_with_certs(&[cert(&leaf.cert)], key)
        });
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(RootCerts::new_with_certs(&[cert(ca)]))
            .client_cert(client)
            .build();
        ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into()
    }

    fn status(agent: &ureq::Agent, url: &str) -> Result<u16, ureq::Error> {
        agent.get(url).call().map(|resp| resp.status().as_u16())
    }

    fn wait_for(what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn answers_over_https_by_name_and_by_ip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = TestCa::new(dir.path());
        let answerer = HttpsAnswerer::start(&ca.server("srv", &["localhost", "127.0.0.1"]), 204);
        let agent = https(ca.ca_path(), None);
        let port = answerer.port();
        assert_eq!(
            status(&agent, &format!("https://localhost:{port}/")).unwrap(),
            204
        );
        answerer.set_status(503);
        assert_eq!(
            status(&agent, &format!("https://127.0.0.1:{port}/x")).unwrap(),
            503
        );
        assert_eq!(answerer.requests(), 2);
        assert_eq!(answerer.terminator().accepted(), 2);
        assert_eq!(answerer.terminator().failed_handshakes(), 0);
    }

    #[test]
    fn refuses_wrong_ca_expired_certificate_and_wrong_host() {
        let dir = tempfile::tempdir().expect("tempdir");
        let other_dir = tempfile::tempdir().expect("tempdir");
        let ca = TestCa::new(dir.path());
        let other_ca = TestCa::new(other_dir.path());
        let hosts = ["localhost", "127.0.0.1"];
        let cases = [
            ("UnknownIssuer", other_ca.server("srv", &hosts)),
            ("Expired", ca.expired_server("old", &hosts)),
            ("NotValidForName", ca.server("other", &["other.example"])),
        ];
        let agent = https(ca.ca_path(), None);
        for (what, leaf) in cases {
            let answerer = HttpsAnswerer::start(&leaf, 200);
            let url = format!("https://localhost:{}/", answerer.port());
            let got = status(&agent, &url);
            // rustls's reason, which ureq wraps in an I/O error.
            assert!(format!("{got:?}").contains(what), "{what}: {got:?}");
            wait_for(&format!("{what}: the failed handshake"), || {
                answerer.terminator().failed_handshakes() == 1
            });
            assert_eq!(answerer.terminator().accepted(), 0, "{what}");
            assert_eq!(answerer.requests(), 0, "{what}");
        }
    }

    #[test]
    fn mutual_tls_needs_a_client_certificate_from_the_ca() {
        let dir = tempfile::tempdir().expect("tempdir");
        let other_dir = tempfile::tempdir().expect("tempdir");
        let ca = TestCa::new(dir.path());
        let other_ca = TestCa::new(other_dir.path());
        let upstream = TestListener::start(ListenerMode::Answer(200));
        let server = ca.server("srv", &["localhost"]);
        let tls = TlsTerminator::start_mtls(&server, ca.ca_path(), &upstream.addr());
        let url = format!("https://localhost:{}/", tls.port());

        // The server's alert reaches the client as its request's error.
        let strangers = [
            ("CertificateRequired", None),
            ("UnknownCA", Some(other_ca.client("stranger"))),
        ];
        for (i, (alert, client)) in strangers.iter().enumerate() {
            let got = status(&https(ca.ca_path(), client.as_ref()), &url);
            assert!(format!("{got:?}").contains(alert), "{alert}: {got:?}");
            wait_for("the failed handshake", || tls.failed_handshakes() == i + 1);
        }
        let client = ca.client("agent");
        assert_eq!(
            status(&https(ca.ca_path(), Some(&client)), &url).unwrap(),
            200
        );
        assert_eq!(tls.accepted(), 1);
        assert!(upstream.next_request(Duration::from_secs(5)).is_some());
    }

    #[test]
    fn negotiates_h2_for_grpc_clients() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = TestCa::new(dir.path());
        let upstream = TestListener::start(ListenerMode::Hang);
        let tls = TlsTerminator::start(&ca.server("srv", &["localhost"]), &upstream.addr());
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(read_certs(ca.ca_path()));
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let name = "localhost".try_into().expect("a server name");
        let mut conn = rustls::ClientConnection::new(config.into(), name).expect("a connection");
        let mut tcp = std::net::TcpStream::connect(tls.addr()).expect("connect");
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp).expect("handshake");
        }
        assert_eq!(conn.alpn_protocol(), Some(&b"h2"[..]));
    }
}
