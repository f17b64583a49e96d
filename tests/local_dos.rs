//! A local user who opens connections and sends nothing cannot lock others out:
//! a request's headers must arrive within the header timeout, and at the
//! connection cap the idlest connection makes room. Bounded: at most 1,100
//! sockets, all closed by the test.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use swarm_obs_suite::{Collector, TestHome};

/// Slowloris: connections that send half a request are closed after the header
/// timeout, and a normal request is served all along.
#[test]
fn half_sent_headers_are_timed_out_and_others_are_served_meanwhile() {
    let home = TestHome::new();
    let c = Collector::start(&home);
    let mut slow: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut s = TcpStream::connect(c.addr()).unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                .unwrap();
            s
        })
        .collect();
    let resp = c.get("/healthz").call().expect("a normal request");
    assert_eq!(resp.status(), 200);
    let started = Instant::now();
    for s in &mut slow {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut buf = [0u8; 256];
        // Closed (0 bytes or a reset), perhaps after a 408 answer.
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(15),
        "half-sent requests held for {took:?}"
    );
}

/// 1,100 idle sockets against a collector limited to 1,300 descriptors: the
/// idlest are shed, and requests are still served.
#[test]
fn idle_sockets_beyond_the_cap_shed_the_idlest_and_requests_still_work() {
    let home = TestHome::new();
    let c = Collector::start_with_fd_limit(&home, 1300);
    let mut idle = Vec::new();
    for _ in 0..1100 {
        match TcpStream::connect(c.addr()) {
            Ok(s) => idle.push(s),
            Err(e) => panic!("connect failed after {} sockets: {e}", idle.len()),
        }
    }
    // Every request during the flood is answered.
    for _ in 0..20 {
        let resp = c.get("/healthz").call().expect("served during the flood");
        assert_eq!(resp.status(), 200);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.metric("swarm_obs_connections_shed_total") == 0 {
        assert!(Instant::now() < deadline, "{}", c.metrics());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(c.metric("swarm_obs_connections") <= 1300, "{}", c.metrics());
    drop(idle);
    let resp = c.get("/healthz").call().expect("served after the flood");
    assert_eq!(resp.status(), 200);
}

fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// A figure of /proc/<pid>/status in KiB (`VmRSS:` now, `VmHWM:` the peak).
fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Twelve 15 MB bodies at once: they share a memory budget (a body waits for its
/// share, or gets 503), each is answered, and the memory is given back after.
#[cfg(target_os = "linux")]
#[test]
fn a_burst_of_big_bodies_is_bounded_and_its_memory_given_back() {
    let home = TestHome::new();
    let c = Collector::start(&home);
    let pid = c.pid();
    let before = rss_kib(pid);
    let ev = swarm_obs::Event::new("big", swarm_obs::Kind::Log, "m".repeat(15 << 20));
    let body = serde_json::to_vec(&ev).unwrap();
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let posts: Vec<_> = (0..12)
            .map(|_| s.spawn(|| c.post("/v1/events", "application/json", &body).0))
            .collect();
        posts.into_iter().map(|p| p.join().unwrap()).collect()
    });
    assert!(
        statuses.iter().all(|s| matches!(s, 202 | 503)),
        "{statuses:?}"
    );
    assert!(statuses.contains(&202), "{statuses:?}");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let after = rss_kib(pid);
    let peak = status_kib(pid, "VmHWM:");
    eprintln!(
        "collector RSS: {before} KiB before, {peak} KiB at the peak, {after} KiB after the burst"
    );
    // Without the budget all twelve were held at once (over 500 MB).
    assert!(peak < 320 * 1024, "peak RSS {peak} KiB");
    assert!(
        after < before + 100 * 1024,
        "RSS stayed high: {before} KiB before, {after} KiB after"
    );
}
