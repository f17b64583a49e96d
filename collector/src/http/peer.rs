//! Who is on the other end of a connection.
//!
//! On loopback every client has the same address, so the address alone cannot
//! tell the user's own programs from another local user's. On Linux the kernel
//! knows which user owns the peer's socket: one `sock_diag` netlink query for the
//! exact connection answers it in microseconds (what `ss -e` shows). That owner
//! decides whether the connection needs the token (another user's does) and is
//! the key of the per-client viewer limit.

use std::net::SocketAddr;

pub use crate::hub::ClientKey;

/// The client behind one connection.
#[derive(Clone, Copy, Debug)]
pub struct Peer {
    /// Its address; `None` on the Unix socket.
    pub addr: Option<SocketAddr>,
    /// The local user owning its socket, when the kernel says (Linux, loopback,
    /// socket still open; on the Unix socket).
    pub uid: Option<u32>,
}

impl Peer {
    /// The peer of a connection accepted on `local` from `addr`, with its owner
    /// looked up when it is on this machine.
    pub fn accepted(addr: SocketAddr, local: SocketAddr) -> Self {
        let uid = addr
            .ip()
            .is_loopback()
            .then(|| socket_owner(addr, local))
            .flatten();
        Self {
            addr: Some(addr),
            uid,
        }
    }

    /// The peer of a connection on the Unix socket, whose owner the kernel gives
    /// with the connection (`SO_PEERCRED`). Only the collector's user and root can
    /// open the socket (it is 0600 in a private directory), so one whose owner the
    /// kernel did not give counts as the collector's own (see [`key`](Self::key)).
    pub fn local(uid: Option<u32>) -> Self {
        Self { addr: None, uid }
    }

    /// Whether the socket belongs to another local user than the collector's
    /// (root counts as the user's own: it can read the store anyway).
    pub fn other_user(&self) -> bool {
        self.uid.is_some_and(|u| u != 0 && u != own_uid())
    }

    /// The key its viewers are counted under: its user, else its address, else
    /// (on the Unix socket) the collector's own user.
    pub fn key(&self) -> ClientKey {
        match (self.uid, self.addr) {
            (Some(u), _) => ClientKey::User(u),
            (None, Some(a)) => ClientKey::Addr(a.ip()),
            (None, None) => ClientKey::User(own_uid()),
        }
    }
}

/// The collector's own uid.
pub fn own_uid() -> u32 {
    #[cfg(unix)]
    {
        // SAFETY: getuid cannot fail.
        unsafe { libc::getuid() }
    }
    #[cfg(not(unix))]
    {
        0
    }
}

/// The uid owning the socket whose local end is `peer` and whose remote end is
/// `local`, from the kernel's socket table; `None` off Linux, when the query
/// fails, or when that socket is already closed (a closing socket has no owner).
pub fn socket_owner(peer: SocketAddr, local: SocketAddr) -> Option<u32> {
    #[cfg(target_os = "linux")]
    {
        sock_diag::owner(peer, local)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (peer, local);
        None
    }
}

#[cfg(target_os = "linux")]
mod sock_diag {
    //! The `NETLINK_SOCK_DIAG` query for one TCP socket (linux/inet_diag.h).

    use std::net::{IpAddr, SocketAddr};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    /// `INET_DIAG_NOCOOKIE`: match by addresses and ports, not by cookie.
    const NO_COOKIE: u32 = !0;
    /// `TCP_TIME_WAIT`, whose entries carry no owner.
    const TIME_WAIT: u8 = 6;

    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct SockId {
        sport: u16,
        dport: u16,
        src: [u32; 4],
        dst: [u32; 4],
        interface: u32,
        cookie: [u32; 2],
    }

    #[repr(C)]
    struct Request {
        header: libc::nlmsghdr,
        family: u8,
        protocol: u8,
        ext: u8,
        pad: u8,
        states: u32,
        id: SockId,
    }

    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Reply {
        family: u8,
        state: u8,
        timer: u8,
        retrans: u8,
        id: SockId,
        expires: u32,
        rqueue: u32,
        wqueue: u32,
        uid: u32,
        inode: u32,
    }

    /// An address as the kernel's `__be32[4]`: network byte order, IPv4 in the first word.
    fn words(ip: IpAddr) -> [u32; 4] {
        let mut w = [0u32; 4];
        match ip {
            IpAddr::V4(v4) => w[0] = u32::from_ne_bytes(v4.octets()),
            IpAddr::V6(v6) => {
                for (i, c) in v6.octets().chunks_exact(4).enumerate() {
                    w[i] = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]);
                }
            }
        }
        w
    }

    pub(super) fn owner(peer: SocketAddr, local: SocketAddr) -> Option<u32> {
        // A v4-mapped peer on a dual-stack socket is an IPv6 socket on the peer's side
        // only if it connected over IPv6; both sides share one family, the accepted one.
        let family = match (peer.ip(), local.ip()) {
            (IpAddr::V4(_), IpAddr::V4(_)) => libc::AF_INET,
            (IpAddr::V6(_), IpAddr::V6(_)) => libc::AF_INET6,
            _ => return None,
        };
        // SAFETY: a plain socket call; the descriptor is owned at once.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                libc::NETLINK_SOCK_DIAG,
            )
        };
        if fd < 0 {
            return None;
        }
        // SAFETY: fd was just opened and is owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let timeout = libc::timeval {
            tv_sec: 0,
            tv_usec: 200_000,
        };
        // SAFETY: setsockopt reads `timeout` for its size.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const timeout).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            );
        }
        let req = Request {
            header: libc::nlmsghdr {
                nlmsg_len: size_of::<Request>() as u32,
                nlmsg_type: SOCK_DIAG_BY_FAMILY,
                nlmsg_flags: libc::NLM_F_REQUEST as u16,
                nlmsg_seq: 1,
                nlmsg_pid: 0,
            },
            family: family as u8,
            protocol: libc::IPPROTO_TCP as u8,
            ext: 0,
            pad: 0,
            states: !0,
            id: SockId {
                sport: peer.port().to_be(),
                dport: local.port().to_be(),
                src: words(peer.ip()),
                dst: words(local.ip()),
                interface: 0,
                cookie: [NO_COOKIE, NO_COOKIE],
            },
        };
        // SAFETY: an all-zero sockaddr_nl is valid; the kernel is port 0.
        let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        kernel.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: sends `req`'s bytes to the kernel address given with its size.
        let sent = unsafe {
            libc::sendto(
                fd.as_raw_fd(),
                (&raw const req).cast(),
                size_of::<Request>(),
                0,
                (&raw const kernel).cast(),
                size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return None;
        }
        let mut buf = [0u64; 128];
        // SAFETY: receives into `buf`, which is 1 KiB and 8-aligned.
        let n = unsafe {
            libc::recv(
                fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                size_of_val(&buf),
                0,
            )
        };
        let n = usize::try_from(n).ok()?;
        let header_len = size_of::<libc::nlmsghdr>();
        if n < header_len + size_of::<Reply>() {
            // Too short for an answer: NLMSG_ERROR (no such socket) or nothing.
            return None;
        }
        // SAFETY: buf holds at least a header, is aligned for it, and any bytes
        // are a valid nlmsghdr.
        let header: libc::nlmsghdr = unsafe { std::ptr::read(buf.as_ptr().cast()) };
        if header.nlmsg_type != SOCK_DIAG_BY_FAMILY {
            return None;
        }
        // SAFETY: n covers the reply after the header; any bytes are a valid Reply.
        let reply: Reply =
            unsafe { std::ptr::read_unaligned(buf.as_ptr().cast::<u8>().add(header_len).cast()) };
        (reply.state != TIME_WAIT && reply.inode != 0).then_some(reply.uid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    #[cfg(target_os = "linux")]
    fn the_owner_of_a_loopback_connection_is_this_user() {
        for bind in ["127.0.0.1:0", "[::1]:0"] {
            let Ok(listener) = TcpListener::bind(bind) else {
                continue; // no IPv6 loopback here
            };
            let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (server, peer) = listener.accept().unwrap();
            let local = server.local_addr().unwrap();
            assert_eq!(socket_owner(peer, local), Some(own_uid()), "{bind}");
            let p = Peer::accepted(peer, local);
            assert!(!p.other_user());
            assert_eq!(p.key(), ClientKey::User(own_uid()));
            // The reverse direction names the server's socket, also ours; a port
            // nobody uses names nothing.
            let wrong = SocketAddr::new(peer.ip(), 1);
            assert_eq!(socket_owner(wrong, local), None);
            drop(client);
        }
    }

    #[test]
    fn a_remote_peer_is_known_by_its_address() {
        let p = Peer::accepted(
            "192.0.2.7:5000".parse().unwrap(),
            "192.0.2.1:4780".parse().unwrap(),
        );
        assert_eq!(p.uid, None);
        assert!(!p.other_user());
        assert_eq!(p.key(), ClientKey::Addr("192.0.2.7".parse().unwrap()));
    }
}
