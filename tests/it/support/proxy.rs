//! A fault-injecting HTTP proxy between a client and the real MLflow server.
//!
//! Each request the proxy receives takes the next scripted [`Fault`]: first from the queue
//! of the first [`FaultProxy::push_matching`] rule whose path fragment it matches, then
//! from the general queue ([`FaultProxy::push`]), then, when a [`RandomFaults`] rule is set
//! and matches, one drawn from a seeded generator; otherwise it is forwarded unchanged.
//! Faults can answer in place of the server (a 503 with `Retry-After`, a 429), forward the
//! request and then lose, delay, cut or replace the answer (so the server acted but the
//! client cannot know), or drop the connection. Every request is recorded (method, target,
//! head, body, arrival time) for assertions such as "no wrong transition was ever sent" or
//! "the Authorization header was sent". The proxy speaks just enough HTTP/1.1 for reqwest
//! and MLflow: one request per upstream connection, `Content-Length` bodies.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

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
    /// Answer `status` with MLflow's error body for `code` (such as
    /// `INVALID_PARAMETER_VALUE`) without forwarding: a server refusing the request.
    Refuse {
        /// The HTTP status.
        status: u16,
        /// The MLflow `error_code`.
        code: &'static str,
    },
    /// Close the connection without forwarding or answering.
    Close,
    /// Forward the request (the server acts on it), then answer `status` instead of the
    /// server's answer.
    ForwardThenStatus(u16),
    /// Forward the request (the server acts on it), then close without answering.
    ForwardThenClose,
    /// Forward the request (the server acts on it) and hold its answer this long before
    /// passing it on: a slow server, or, past the client's timeout, a lost answer.
    Delay(Duration),
    /// Forward the request, then send the answer's head and only the first half of its
    /// body and close: the connection is cut mid-response (`Content-Length` promises more).
    CutBody,
    /// Forward the request, then send a well-formed answer whose body is the first half of
    /// the server's (`Content-Length` rewritten to match): a truncated body that only the
    /// JSON decoder can tell from a whole one.
    TruncateBody,
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

/// Faults at random: each request whose target contains `matching` (every request when
/// empty) gets, with probability `probability`, one of `faults` chosen uniformly, from a
/// generator seeded with `seed` (the sequence of draws is fixed; which concurrent request
/// gets which draw is not).
#[derive(Debug, Clone)]
pub struct RandomFaults {
    /// The generator's seed.
    pub seed: u64,
    /// The chance that a matching request gets a fault (1.0: every one).
    pub probability: f64,
    /// The faults to choose from.
    pub faults: Vec<Fault>,
    /// A fragment of the request target (`model-versions/search`); empty matches all.
    pub matching: String,
}

/// One request the proxy received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The request target: path and query (`/api/2.0/mlflow/registered-models/search?...`).
    pub target: String,
    /// The request line and headers, as received.
    pub head: String,
    /// The body.
    pub body: Vec<u8>,
    /// When the proxy had read the whole request.
    pub at: Instant,
    /// The fault applied to it, if any.
    pub fault: Option<Fault>,
}

impl Recorded {
    /// The body parsed as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.split("\r\n").skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }
}

/// What decides the fault of each request, shared with the connection tasks.
#[derive(Debug, Default)]
struct Script {
    matching: Vec<(String, VecDeque<Fault>)>,
    queue: VecDeque<Fault>,
    random: Option<(RandomFaults, StdRng)>,
    log: Vec<Recorded>,
}

impl Script {
    /// The fault of a request for `target`: a matching rule's next one, else the queue's,
    /// else a random one.
    fn next(&mut self, target: &str) -> Option<Fault> {
        if let Some(fault) = self
            .matching
            .iter_mut()
            .find(|(fragment, faults)| !faults.is_empty() && target.contains(fragment.as_str()))
            .and_then(|(_, faults)| faults.pop_front())
        {
            return Some(fault);
        }
        if let Some(fault) = self.queue.pop_front() {
            return Some(fault);
        }
        let (rule, rng) = self.random.as_mut()?;
        if !target.contains(rule.matching.as_str()) || rule.faults.is_empty() {
            return None;
        }
        if rng.random::<f64>() >= rule.probability {
            return None;
        }
        let index = rng.random_range(0..rule.faults.len());
        Some(rule.faults[index].clone())
    }
}

/// A running proxy; stopped when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`, to use as the registry URI.
    pub uri: String,
    script: Arc<Mutex<Script>>,
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
        let script = Arc::new(Mutex::new(Script::default()));
        let requests = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn({
            let script = Arc::clone(&script);
            let requests = Arc::clone(&requests);
            async move {
                while let Ok((socket, _)) = listener.accept().await {
                    tokio::spawn(serve_connection(
                        socket,
                        upstream.clone(),
                        Arc::clone(&script),
                        Arc::clone(&requests),
                    ));
                }
            }
        });
        FaultProxy {
            uri: format!("http://127.0.0.1:{port}"),
            script,
            requests,
            task,
        }
    }

    fn script(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().expect("fault script")
    }

    /// Queues faults for the next requests, in order.
    pub fn push(&self, faults: impl IntoIterator<Item = Fault>) {
        self.script().queue.extend(faults);
    }

    /// Queues faults for the next requests whose target contains `fragment` (such as
    /// `model-versions/transition-stage`), in order; other requests are not affected.
    pub fn push_matching(&self, fragment: &str, faults: impl IntoIterator<Item = Fault>) {
        let mut script = self.script();
        if let Some((_, queue)) = script
            .matching
            .iter_mut()
            .find(|(existing, _)| existing == fragment)
        {
            queue.extend(faults);
        } else {
            script
                .matching
                .push((fragment.to_owned(), faults.into_iter().collect()));
        }
    }

    /// Injects faults at random from now on (replacing any earlier rule); `None` stops.
    pub fn set_random(&self, rule: Option<RandomFaults>) {
        self.script().random = rule.map(|rule| {
            let rng = StdRng::seed_from_u64(rule.seed);
            (rule, rng)
        });
    }

    /// How many faults are still queued (general and matching queues).
    pub fn pending(&self) -> usize {
        let script = self.script();
        script.queue.len()
            + script
                .matching
                .iter()
                .map(|(_, queue)| queue.len())
                .sum::<usize>()
    }

    /// Every request received so far, in arrival order.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.script().log.clone()
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

/// Records `request` and decides its fault.
fn admit(script: &Mutex<Script>, request: &[u8]) -> Option<Fault> {
    let head_end = find(request, b"\r\n\r\n").unwrap_or(request.len());
    let head = String::from_utf8_lossy(&request[..head_end]).into_owned();
    let mut words = head.split_whitespace();
    let method = words.next().unwrap_or_default().to_owned();
    let target = words.next().unwrap_or_default().to_owned();
    let body = request.get(head_end + 4..).unwrap_or_default().to_vec();
    let mut script = script.lock().ok()?;
    let fault = script.next(&target);
    script.log.push(Recorded {
        method,
        target,
        head,
        body,
        at: Instant::now(),
        fault: fault.clone(),
    });
    fault
}

async fn serve_connection(
    mut client: TcpStream,
    upstream: String,
    script: Arc<Mutex<Script>>,
    requests: Arc<AtomicU64>,
) {
    let mut buffer = Vec::new();
    while let Some(request) = read_request(&mut client, &mut buffer).await {
        requests.fetch_add(1, Ordering::SeqCst);
        let fault = admit(&script, &request);
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
            Some(Fault::Refuse { status, code }) => {
                if client
                    .write_all(&error_response_with(status, code, None))
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
            Some(Fault::Delay(delay)) => {
                let response = forward(&upstream, &request).await;
                tokio::time::sleep(delay).await;
                if let Some(response) = response {
                    let _ = client.write_all(&response).await;
                }
                return;
            }
            Some(Fault::CutBody) => {
                if let Some(response) = forward(&upstream, &request).await {
                    let (head, body) = split_response(&response);
                    let _ = client.write_all(head).await;
                    let _ = client.write_all(&body[..body.len() / 2]).await;
                    let _ = client.flush().await;
                }
                return;
            }
            Some(Fault::TruncateBody) => {
                if let Some(response) = forward(&upstream, &request).await {
                    let _ = client.write_all(&truncate_response(&response)).await;
                }
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

/// An answer's head (with the blank line) and body.
fn split_response(response: &[u8]) -> (&[u8], &[u8]) {
    match find(response, b"\r\n\r\n") {
        Some(end) => response.split_at(end + 4),
        None => (response, &[]),
    }
}

/// The answer with only the first half of its body and a `Content-Length` to match.
fn truncate_response(response: &[u8]) -> Vec<u8> {
    let (head, body) = split_response(response);
    let kept = &body[..body.len() / 2];
    let head = String::from_utf8_lossy(head);
    let mut rewritten = Vec::with_capacity(response.len());
    for line in head.trim_end_matches("\r\n").split("\r\n") {
        if line.to_ascii_lowercase().starts_with("content-length:") {
            rewritten.extend_from_slice(format!("content-length: {}", kept.len()).as_bytes());
        } else {
            rewritten.extend_from_slice(line.as_bytes());
        }
        rewritten.extend_from_slice(b"\r\n");
    }
    rewritten.extend_from_slice(b"\r\n");
    rewritten.extend_from_slice(kept);
    rewritten
}

fn error_response(status: u16, retry_after: Option<u64>) -> Vec<u8> {
    error_response_with(status, "INJECTED", retry_after)
}

fn error_response_with(status: u16, code: &str, retry_after: Option<u64>) -> Vec<u8> {
    let body = format!(
        r#"{{"error_code": "{code}", "message": "fault injected by the test proxy: {status}"}}"#
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
