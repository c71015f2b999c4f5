//! A canned HTTP endpoint for tests, shared by this crate's unit tests and the end-to-end tests
//! (`tests/e2e/main.rs` includes this file): real HTTP on loopback, so the AWS SDK signs and
//! sends as it would to AWS.

/// A loopback HTTP endpoint standing in for AWS where moto cannot (GetCostForecast, throttling):
/// it answers each request, one per connection, with the next canned
/// `(status, body)` and records the requests. The SDK still signs and sends real HTTP.
pub struct CannedEndpoint {
    pub port: u16,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CannedEndpoint {
    pub fn start(answers: Vec<(u16, String)>) -> CannedEndpoint {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = requests.clone();
        let thread = std::thread::spawn(move || {
            for (status, body) in answers {
                let Ok((mut socket, _)) = listener.accept() else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 8192];
                loop {
                    let n = socket.read(&mut buf).unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&request).to_string());
                let response = format!(
                    "HTTP/1.1 {status} {}\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    if status == 200 { "OK" } else { "Bad Request" },
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes());
            }
        });
        CannedEndpoint {
            port,
            requests,
            thread: Some(thread),
        }
    }

    /// Every request it was sent, once it has given all its answers.
    pub fn requests(&mut self) -> Vec<String> {
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        self.requests.lock().unwrap().clone()
    }
}
