//! The front door: accepts TCP connections up to a cap, serves HTTP on them with a deadline for
//! each request's headers, tells every request its peer's address, and keeps count of what is
//! still open (WebSockets included) so that shutdown can wait for it.
//!
//! Why not `axum::serve`: it offers neither a header timeout nor a connection cap (a client that
//! sends half an upgrade and goes silent held its socket forever), and it stops tracking a
//! connection once it is upgraded, so the process could exit before its WebSockets had sent
//! their 1001 close. The loop below is the same hyper-util builder axum uses, plus those three.

use crate::metrics::{Limit, Metrics};
use app::api::ssr::ClientAddr;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Counts what is open: every accepted connection, and every WebSocket task, holds a [`Open`]
/// token; [`Tracker::all_closed`] resolves once none is left.
#[derive(Clone)]
pub struct Tracker {
    tokens: Arc<watch::Sender<()>>,
}

/// Held while a connection (or a WebSocket's task) is alive.
pub struct Open(#[allow(dead_code)] watch::Receiver<()>);

impl Default for Tracker {
    fn default() -> Self {
        Tracker {
            tokens: Arc::new(watch::channel(()).0),
        }
    }
}

impl Tracker {
    pub fn open(&self) -> Open {
        Open(self.tokens.subscribe())
    }

    /// Resolves once every [`Open`] token has been dropped.
    pub async fn all_closed(&self) {
        self.tokens.closed().await
    }
}

/// A connection's socket with its place under the node's cap: the place is freed when the
/// socket is dropped, which for a WebSocket is when the WebSocket ends (hyper hands the socket
/// itself on to the upgraded connection).
struct Counted {
    tcp: TcpStream,
    _place: OwnedSemaphorePermit,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}

/// How the front door is set up.
pub struct Door {
    pub max_connections: usize,
    pub header_timeout: Duration,
    /// Where refusals at the cap are counted.
    pub metrics: Arc<Metrics>,
}

/// Accepts and serves until `shutdown` is cancelled; then stops accepting and asks every open
/// HTTP connection to finish its request and close. Returns at once after that: wait on the
/// tracker for the connections (and WebSockets) to end.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    door: Door,
    tracker: Tracker,
    shutdown: CancellationToken,
) {
    let places = Arc::new(Semaphore::new(door.max_connections.max(1)));
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(door.header_timeout);
    let builder = Arc::new(builder);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => return,
        };
        let Ok(place) = places.clone().try_acquire_owned() else {
            // At the cap: close it now rather than leave it waiting in the kernel's backlog.
            door.metrics.refused(Limit::ConnectionsPerNode);
            drop(tcp);
            continue;
        };
        // Chat frames are small: without TCP_NODELAY, Nagle's algorithm and delayed ACKs can
        // hold a frame back ~40 ms.
        let _ = tcp.set_nodelay(true);
        let io = TokioIo::new(Counted { tcp, _place: place });
        // As `into_make_service_with_connect_info` does: every request learns its peer.
        let service =
            router
                .clone()
                .map_request(move |mut request: axum::http::Request<Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request
                });
        let service = TowerToHyperService::new(service);
        let builder = builder.clone();
        let open = tracker.open();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let connection = builder.serve_connection_with_upgrades(io, service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(open);
        });
    }
}

/// The address of the listener's peer as requests see it.
pub type Peer = ConnectInfo<SocketAddr>;

/// Puts the caller's address into every request as [`ClientAddr`], for per-address limits: the
/// connection's peer, or, when the peer is one of `trusted` proxies, the nearest address in
/// `X-Forwarded-For` that is not itself a trusted proxy. Anyone else's `X-Forwarded-For` is
/// ignored: it is a header any client can write.
pub async fn client_addr(
    axum::extract::State(trusted): axum::extract::State<Arc<[IpAddr]>>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if let Some(ConnectInfo(peer)) = request.extensions().get::<Peer>().copied() {
        let addr = client_of(peer.ip(), request.headers(), &trusted);
        request.extensions_mut().insert(ClientAddr(addr));
    }
    next.run(request).await
}

fn client_of(peer: IpAddr, headers: &axum::http::HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    // Each proxy appends the address it heard from: walk back from the nearest.
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|hop| hop.trim().parse().ok())
        .collect();
    hops.iter()
        .rev()
        .find(|hop| !trusted.contains(hop))
        .or(hops.first())
        .copied()
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "6.6.6.6, 1.2.3.4, 10.0.0.2".parse().unwrap(),
        );
        let trusted = [ip("10.0.0.1"), ip("10.0.0.2")];
        assert_eq!(client_of(ip("9.9.9.9"), &headers, &trusted), ip("9.9.9.9"));
        assert_eq!(client_of(ip("10.0.0.1"), &headers, &trusted), ip("1.2.3.4"));
        assert_eq!(
            client_of(ip("10.0.0.1"), &axum::http::HeaderMap::new(), &trusted),
            ip("10.0.0.1")
        );
    }
}
