//! A fault-injecting HTTP proxy between a client and the real MLflow server.
//!
//! Each request the proxy receives takes the next scripted [`Fault`] from its queue; when
//! the queue is empty the request is forwarded unchanged. Faults can answer in place of
//! the server (a 503 with `Retry-After`, a 429), forward the request and then lose or
//! replace the answer (so the server acted but the client cannot know), or drop the
//! connection. The proxy speaks just enough HTTP/1.1 for reqwest and MLflow: one request
//! per upstream connection, `Content-Length` bodies.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the proxy does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer `status` without forwarding (the server never sees the request), with an
    /// MLflow-shaped JSON error body and an optional `Retry-After` in seconds.
    Status {
        /// The HTTP status.
        status: u16,
        /// `Retry-After` seconds.
        retry_after: Option<u64>,
    },
    /// Close the connection without forwarding or answering.
    Close,
    /// Forward the request (the server acts on it), then answer `status` instead of the
    /// server's answer.
    ForwardThenStatus(u16),
    /// Forward the request (the server acts on it), then close without answering.
    ForwardThenClose,
}

impl Fault {
    /// Answers `status` in place of the server, without `Retry-After`.
    pub fn status(status: u16) -> Fault {
        Fault::Status {
            status,
            retry_after: None,
        }
    }
}

/// A running proxy; stopped when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`, to use as the registry URI.
    pub uri: String,
    faults: Arc<Mutex<VecDeque<Fault>>>,
    requests: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (`http://127.0.0.1:PORT`) on the current
    /// tokio runtime.
    pub async fn start(upstream: &str) -> FaultProxy {
        let upstream = upstream
            .strip_prefix("http://")
            .expect("an http:// upstream")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let faults = Arc::new(Mutex::new(VecDeque::new()));
        let requests = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn({
            let faults = Arc::clone(&faults);
            let requests = Arc::clone(&requests);
            async move {
                while let Ok((socket, _)) = listener.accept().await {
                    tokio::spawn(serve_connection(
                        socket,
                        upstream.clone(),
                        Arc::clone(&faults),
                        Arc::clone(&requests),
                    ));
                }
            }
        });
        FaultProxy {
            uri: format!("http://127.0.0.1:{port}"),
            faults,
            requests,
            task,
        }
    }

    /// Queues faults for the next requests, in order.
    pub fn push(&self, faults: impl IntoIterator<Item = Fault>) {
        self.faults.lock().expect("fault queue").extend(faults);
    }

    /// How many faults are still queued.
    pub fn pending(&self) -> usize {
        self.faults.lock().expect("fault queue").len()
    }

    /// How many requests the proxy has received.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_connection(
    mut client: TcpStream,
    upstream: String,
    faults: Arc<Mutex<VecDeque<Fault>>>,
    requests: Arc<AtomicU64>,
) {
    let mut buffer = Vec::new();
    while let Some(request) = read_request(&mut client, &mut buffer).await {
        requests.fetch_add(1, Ordering::SeqCst);
        let fault = faults.lock().ok().and_then(|mut queue| queue.pop_front());
        match fault {
            Some(Fault::Status {
                status,
                retry_after,
            }) => {
                if client
                    .write_all(&error_response(status, retry_after))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Some(Fault::Close) => return,
            Some(Fault::ForwardThenStatus(status)) => {
                let _ = forward(&upstream, &request).await;
                if client
                    .write_all(&error_response(status, None))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Some(Fault::ForwardThenClose) => {
                let _ = forward(&upstream, &request).await;
                return;
            }
            None => {
                // The upstream answer carries `connection: close`, so the client does not
                // reuse this connection either.
                if let Some(response) = forward(&upstream, &request).await {
                    let _ = client.write_all(&response).await;
                }
                return;
            }
        }
    }
}

/// Reads one request (head and `Content-Length` body) off the connection; `None` at EOF.
async fn read_request(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<Vec<u8>> {
    loop {
        if let Some(head_end) = find(buffer, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|value| value.trim().parse().ok())
                .unwrap_or(0);
            let total = head_end + 4 + length;
            while buffer.len() < total {
                if !read_more(stream, buffer).await {
                    return None;
                }
            }
            return Some(buffer.drain(..total).collect());
        }
        if !read_more(stream, buffer).await {
            return None;
        }
    }
}

async fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> bool {
    let mut chunk = [0_u8; 8192];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buffer.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Sends the request on a fresh upstream connection with `Connection: close` and returns
/// the whole answer.
async fn forward(upstream: &str, request: &[u8]) -> Option<Vec<u8>> {
    let head_end = find(request, b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&request[..head_end]);
    let mut rewritten: Vec<u8> = Vec::with_capacity(request.len() + 32);
    for line in head.split("\r\n") {
        if line.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        rewritten.extend_from_slice(line.as_bytes());
        rewritten.extend_from_slice(b"\r\n");
    }
    rewritten.extend_from_slice(b"Connection: close\r\n\r\n");
    rewritten.extend_from_slice(&request[head_end + 4..]);
    let mut server = TcpStream::connect(upstream).await.ok()?;
    server.write_all(&rewritten).await.ok()?;
    let mut response = Vec::new();
    server.read_to_end(&mut response).await.ok()?;
    Some(response)
}

fn error_response(status: u16, retry_after: Option<u64>) -> Vec<u8> {
    let body = format!(
        r#"{{"error_code": "INJECTED", "message": "fault injected by the test proxy: {status}"}}"#
    );
    let mut head = format!(
        "HTTP/1.1 {status} Injected\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(seconds) = retry_after {
        head.push_str(&format!("Retry-After: {seconds}\r\n"));
    }
    head.push_str("\r\n");
    let mut response = head.into_bytes();
    response.extend_from_slice(body.as_bytes());
    response
}
