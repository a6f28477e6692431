//! `stat --serve ADDR`: a small HTTP server (tiny_http) that answers `GET /metrics` with the
//! latest snapshot of the counters, for a Prometheus server to scrape.
//!
//! The measurement publishes a complete text after every interval; a scrape gets the latest
//! one whole, with its Content-Length (never chunked), so it can never see half a line — not
//! even while ruperf shuts down: [`Server::shutdown`] stops taking requests, finishes the one
//! being answered and those already queued, and only then returns. The server's threads block SIGINT, SIGTERM
//! and SIGHUP, so the measurement's own signal handling gets them.

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use nix::sys::signal::{SigSet, SigmaskHow, Signal};

use crate::error::{Error, Result};

/// A body and its content types, ready to send.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// OpenMetrics text (sent when the scraper asks for it, as Prometheus does).
    pub openmetrics: String,
    /// The same in the Prometheus text format 0.0.4 (sent otherwise).
    pub text: String,
}

/// The content types of [`Snapshot`]'s two bodies.
#[derive(Debug, Clone, Copy)]
pub struct ContentTypes {
    /// For `openmetrics`.
    pub openmetrics: &'static str,
    /// For `text`.
    pub text: &'static str,
}

#[derive(Debug, Default)]
struct Shared {
    /// None until the measurement publishes its first snapshot.
    latest: Mutex<Option<Arc<Snapshot>>>,
    stop: AtomicBool,
}

/// The running exporter.
pub struct Server {
    addr: SocketAddr,
    http: Arc<tiny_http::Server>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    types: ContentTypes,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).finish()
    }
}

/// Parses `HOST:PORT`, `[V6]:PORT` or `:PORT` (every IPv4 address).
pub fn parse_addr(text: &str) -> Result<SocketAddr> {
    let bad = || {
        Error::Usage(format!(
            "--serve '{text}': give an address and port, e.g. 127.0.0.1:9464 or :9464"
        ))
    };
    let full = match text.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => text.to_owned(),
    };
    full.to_socket_addrs()
        .map_err(|_| bad())?
        .next()
        .ok_or_else(bad)
}

/// Runs `f` with SIGINT, SIGTERM and SIGHUP blocked in this thread, so that threads it
/// starts inherit the block.
fn with_signals_blocked<T>(f: impl FnOnce() -> T) -> T {
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    let old = set.thread_swap_mask(SigmaskHow::SIG_BLOCK).ok();
    let out = f();
    if let Some(old) = old {
        let _ = old.thread_set_mask();
    }
    out
}

fn wants_openmetrics(rq: &tiny_http::Request) -> bool {
    rq.headers().iter().any(|h| {
        h.field.equiv("Accept") && h.value.as_str().contains("application/openmetrics-text")
    })
}

fn header(name: &str, value: &str) -> Option<tiny_http::Header> {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).ok()
}

fn answer(rq: tiny_http::Request, shared: &Shared, types: ContentTypes) {
    let path = rq.url().split('?').next().unwrap_or("");
    let get = matches!(
        rq.method(),
        tiny_http::Method::Get | tiny_http::Method::Head
    );
    let (status, body, ctype) = match (get, path) {
        (true, "/metrics") => {
            let snap = shared.latest.lock().ok().and_then(|s| s.clone());
            match snap {
                Some(snap) if wants_openmetrics(&rq) => {
                    (200, snap.openmetrics.clone(), types.openmetrics)
                }
                Some(snap) => (200, snap.text.clone(), types.text),
                None => (503, "starting: no counts yet\n".to_owned(), "text/plain"),
            }
        }
        (true, "/") => (
            200,
            "ruperf stat exporter: the metrics are at /metrics\n".to_owned(),
            "text/plain; charset=utf-8",
        ),
        (true, _) => (404, "not found: try /metrics\n".to_owned(), "text/plain"),
        (false, _) => (405, "only GET and HEAD\n".to_owned(), "text/plain"),
    };
    let mut resp = tiny_http::Response::from_string(body)
        .with_status_code(status)
        // Always a Content-Length: a scraper knows when it has the whole text.
        .with_chunked_threshold(usize::MAX);
    if let Some(h) = header("Content-Type", ctype) {
        resp = resp.with_header(h);
    }
    let _ = rq.respond(resp);
}

impl Server {
    /// Binds `addr` and starts answering; fails at once (exit 71) when the port is taken.
    pub fn start(addr: &str, types: ContentTypes) -> Result<Server> {
        let sa = parse_addr(addr)?;
        let listener = TcpListener::bind(sa).map_err(|e| match e.kind() {
            std::io::ErrorKind::AddrInUse => Error::Os(format!(
                "--serve {addr}: the address is already in use (stop the other exporter or choose another port)"
            )),
            std::io::ErrorKind::PermissionDenied => Error::Permission(format!(
                "--serve {addr}: permission denied (ports below 1024 need root; choose another port)"
            )),
            _ => Error::Os(format!("--serve {addr}: {e}")),
        })?;
        let local = listener.local_addr().unwrap_or(sa);
        let shared = Arc::new(Shared::default());
        let (http, thread) = with_signals_blocked(|| -> Result<_> {
            let http = Arc::new(
                tiny_http::Server::from_listener(listener, None)
                    .map_err(|e| Error::Os(format!("--serve {addr}: {e}")))?,
            );
            let (h, s) = (Arc::clone(&http), Arc::clone(&shared));
            let thread = std::thread::Builder::new()
                .name("ruperf-serve".into())
                .spawn(move || {
                    while !s.stop.load(Ordering::Acquire) {
                        if let Ok(rq) = h.recv() {
                            answer(rq, &s, types);
                        }
                    }
                })
                .map_err(|e| Error::Os(format!("starting the --serve thread: {e}")))?;
            Ok((http, thread))
        })?;
        Ok(Server {
            addr: local,
            http,
            shared,
            thread: Some(thread),
            types,
        })
    }

    /// The bound address (with the port chosen when `:0` was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Makes `snap` the answer to every later scrape.
    pub fn publish(&self, snap: Snapshot) {
        if let Ok(mut l) = self.shared.latest.lock() {
            *l = Some(Arc::new(snap));
        }
    }

    /// Stops answering: the scrape being answered is finished first.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.http.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
            // Scrapes already queued get the last snapshot too. One that arrives after this,
            // while tiny_http closes its listener, gets a whole error response or none.
            while let Ok(Some(rq)) = self.http.try_recv() {
                answer(rq, &self.shared, self.types);
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    const TYPES: ContentTypes = ContentTypes {
        openmetrics: "application/openmetrics-text; version=1.0.0; charset=utf-8",
        text: "text/plain; version=0.0.4; charset=utf-8",
    };

    fn get(addr: SocketAddr, path: &str, accept: &str) -> String {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nAccept: {accept}\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn addresses() {
        assert_eq!(parse_addr(":9464").unwrap().to_string(), "0.0.0.0:9464");
        assert_eq!(parse_addr("127.0.0.1:1").unwrap().port(), 1);
        assert_eq!(parse_addr("[::1]:80").unwrap().to_string(), "[::1]:80");
        assert!(parse_addr("9464").is_err());
        assert!(parse_addr("127.0.0.1:99999").is_err());
    }

    #[test]
    fn serves_the_latest_snapshot_and_refuses_a_taken_port() {
        let srv = Server::start("127.0.0.1:0", TYPES).unwrap();
        let addr = srv.addr();
        assert!(get(addr, "/metrics", "*/*").contains(" 503 "));
        srv.publish(Snapshot {
            openmetrics: "a_total 1\n# EOF\n".into(),
            text: "a_total 1\n".into(),
        });
        let om = get(
            addr,
            "/metrics",
            "application/openmetrics-text;version=1.0.0",
        );
        assert!(
            om.starts_with("HTTP/1.0 200") || om.starts_with("HTTP/1.1 200"),
            "{om}"
        );
        assert!(om.contains("Content-Length: 16"), "{om}");
        assert!(
            om.contains("application/openmetrics-text") && om.ends_with("# EOF\n"),
            "{om}"
        );
        let txt = get(addr, "/metrics?x=1", "text/plain");
        assert!(
            txt.contains("version=0.0.4") && txt.ends_with("\r\n\r\na_total 1\n"),
            "{txt}"
        );
        assert!(get(addr, "/nope", "*/*").contains(" 404 "));
        let e = Server::start(&addr.to_string(), TYPES).unwrap_err();
        assert_eq!(e.exit_code(), 71, "{e}");
        assert!(e.to_string().contains("already in use"), "{e}");
        srv.shutdown();
        // The listener closes once tiny_http's accept thread has seen the stop.
        let closed = (0..100).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(10));
            std::net::TcpStream::connect(addr).is_err()
        });
        assert!(closed, "still listening on {addr}");
    }
}
