//! Start-up as a load balancer sees it: from spawn, `GET /status` on the plugin's webhook listener
//! (plain HTTP, as `--insecure-no-tls` serves it in both binaries) every [`EVERY`], until the
//! first answer 200. A hand-written HTTP/1.1 request over a fresh connection each time, so the
//! harness needs no HTTP client.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// Time between attempts (a refused connection costs next to nothing).
const EVERY: Duration = Duration::from_millis(2);
/// Longest wait for one answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);
/// Polling stops after this long without a 200.
const GIVE_UP: Duration = Duration::from_secs(120);

/// The background poll; stops when dropped.
#[derive(Debug)]
pub struct StatusProbe {
    seen: Arc<Mutex<Option<Instant>>>,
    task: JoinHandle<()>,
}

impl StatusProbe {
    /// When `/status` first answered 200, once it has.
    pub fn ok_at(&self) -> Option<Instant> {
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for StatusProbe {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Polls `http://127.0.0.1:<port>/status` in the background until the first 200.
pub fn spawn(port: u16) -> StatusProbe {
    let seen = Arc::new(Mutex::new(None));
    let record = Arc::clone(&seen);
    let task = tokio::spawn(async move {
        let started = Instant::now();
        while started.elapsed() < GIVE_UP {
            if let Ok(Ok(200)) = tokio::time::timeout(ANSWER_TIMEOUT, status_code(port)).await {
                *record.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
                return;
            }
            tokio::time::sleep(EVERY).await;
        }
    });
    StatusProbe { seen, task }
}

/// The status code of one `GET /status`.
async fn status_code(port: u16) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream
        .write_all(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await?;
    let mut head = [0u8; 32];
    let mut read = 0;
    while read < 12 {
        let got = stream.read(&mut head[read..]).await?;
        if got == 0 {
            break;
        }
        read += got;
    }
    parse_status(&head[..read]).ok_or_else(|| std::io::Error::other("not an HTTP answer"))
}

/// `HTTP/1.1 200 OK` → 200.
fn parse_status(head: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(head).ok()?;
    let rest = text.strip_prefix("HTTP/1.")?;
    rest.get(2..5)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_status_line() {
        assert_eq!(parse_status(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(parse_status(b"HTTP/1.0 401 Unauth"), Some(401));
        assert_eq!(parse_status(b"\x15\x03\x01\x00\x02\x02"), None);
        assert_eq!(parse_status(b"HTTP/1.1 2"), None);
    }

    #[tokio::test]
    async fn sees_the_first_200() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.ok();
        let Some(listener) = listener else { return };
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 256];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await;
            }
        });
        let probe = spawn(port);
        for _ in 0..500 {
            if probe.ok_at().is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        panic!("no 200 seen");
    }
}
