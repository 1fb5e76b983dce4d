//! A CQL v4 server on a free port, backed by `kassandra` (an in-memory, single-node Cassandra
//! written in Rust), for running the ScyllaDB backend's statements through the real `scylla`
//! driver where no cluster can be installed.
//!
//! `kassandra` (patched: vendor/kassandra/PATCHES.md) ships the engine and the frame codecs; the
//! accept loop is ours (the crate's own tester pins an older driver and engine). It serves every
//! connection on one thread, one request at a time, which is what the engine (a `&mut` session)
//! allows, and which makes its lightweight transactions atomic without Paxos. What it cannot
//! check (Paxos under contention, consistency levels, replicas) is listed where the test
//! that uses it says what ran.

use futures::{SinkExt, StreamExt};
use kassandra::error::DbError;
use kassandra::frame::request::Request;
use kassandra::frame::response::error::Error;
use kassandra::frame::response::Response;
use kassandra::frame::{request_stream, response_sink};
use kassandra::KassandraSession;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;

/// A running kassandra server. Its thread (and every connection) ends with the process; the
/// data is in memory only.
pub struct KassandraServer {
    addr: SocketAddr,
}

impl KassandraServer {
    /// Starts the server on a free port of 127.0.0.1 and returns once it accepts connections.
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let addr = listener.local_addr().expect("local address");
        listener.set_nonblocking(true).expect("non-blocking listener");
        std::thread::Builder::new()
            .name("kassandra".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                let local = tokio::task::LocalSet::new();
                local.block_on(&rt, serve(listener));
            })
            .expect("spawn the kassandra thread");
        Self { addr }
    }

    /// `host:port`, as the driver's known node.
    pub fn uri(&self) -> String {
        self.addr.to_string()
    }
}

async fn serve(listener: std::net::TcpListener) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    let session = Rc::new(RefCell::new(KassandraSession::new()));
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        tokio::task::spawn_local(client(session.clone(), stream));
    }
}

async fn client(session: Rc<RefCell<KassandraSession>>, mut stream: tokio::net::TcpStream) {
    let (read, write) = stream.split();
    let mut requests = request_stream(read);
    let mut responses = response_sink(write);
    while let Some(frame) = requests.next().await {
        let Ok((params, opcode, data)) = frame else { break };
        let response =
            match Request::deserialize(opcode, &data, params.flags) {
                // The engine has `todo!()`s (types it does not decode): a panic answers that one
                // request with a server error instead of dropping every connection's pool.
                Ok(request) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    answer(&mut session.borrow_mut(), request)
                }))
                .unwrap_or_else(|p| {
                    let what =
                        p.downcast_ref::<&str>().copied().or_else(|| p.downcast_ref::<String>().map(String::as_str));
                    Response::Error(Error::new(
                        DbError::ServerError,
                        format!("kassandra panicked: {}", what.unwrap_or("?")),
                    ))
                }),
                Err(e) => Response::Error(Error::new(DbError::ProtocolError, format!("unreadable request: {e:?}"))),
            };
        if responses.send((response, params.stream)).await.is_err() {
            break;
        }
    }
}

fn answer(kass: &mut KassandraSession, request: Request<'_>) -> Response {
    let result = match request {
        Request::StartUp(_) | Request::Register { .. } => return Response::Ready,
        Request::Options => return Response::options(),
        Request::AuthResponse => {
            return Response::Error(Error::new(DbError::ProtocolError, "authentication is not supported"))
        }
        Request::Query(q) => kass.process(q),
        Request::Prepare(q) => kass.prepare(q),
        Request::Execute(e) => kass.execute(e),
        Request::Batch(b) => kass.process_batch(b),
    };
    match result {
        Ok(r) => Response::Result(r),
        Err(e) => Response::Error(e),
    }
}
