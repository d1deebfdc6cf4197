//! The log buffer every instance's stdout and stderr go to, plus the host's own error lines
//! (guest traps, failed requests), readable by tests as one string. `spin up` writes component
//! output to `.spin/logs/<component>_stdout.txt` and `_stderr.txt`, opening both files for every
//! instance ([`ComponentLog`] does the same under the host's state directory); the tests need to
//! search it, so it is also kept in memory. It does not filter or parse what it is given.

use std::fs::File;
use std::io::Write as _;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// The shared buffer all instances' stdout and stderr go to.
#[derive(Clone, Default)]
pub struct LogSink {
    buf: Arc<Mutex<Vec<u8>>>,
    echo: bool,
}

impl LogSink {
    /// `SPIN_TEST_HOST_ECHO=1` also copies everything to the real stderr.
    pub fn new() -> LogSink {
        LogSink {
            buf: Arc::default(),
            echo: std::env::var("SPIN_TEST_HOST_ECHO").is_ok_and(|v| v == "1"),
        }
    }

    pub fn write(&self, bytes: &[u8]) {
        self.buf
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(bytes);
        if self.echo {
            let _ = std::io::stderr().write_all(bytes);
        }
    }

    /// Appends a host-side line (guest traps, request errors).
    pub fn host_line(&self, line: &str) {
        self.write(format!("[spin-test-host] {line}\n").as_bytes());
    }

    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

/// One instance's stdout or stderr: the shared [`LogSink`], and the component's log file, opened
/// for this instance (create, append) as `spin up` opens it for each instance it makes.
#[derive(Clone)]
pub struct ComponentLog {
    sink: LogSink,
    file: Option<Arc<File>>,
}

impl ComponentLog {
    /// `<dir>/<component>_<stream>.txt` (`stream`: `stdout` or `stderr`); without a directory,
    /// or when the file cannot be opened (said once in the log), only the sink.
    pub fn open(sink: &LogSink, dir: Option<&Path>, component: &str, stream: &str) -> ComponentLog {
        let file = dir.and_then(|dir| {
            let path = dir.join(format!("{component}_{stream}.txt"));
            match File::options().create(true).append(true).open(&path) {
                Ok(file) => Some(Arc::new(file)),
                Err(e) => {
                    sink.host_line(&format!("cannot open {}: {e}", path.display()));
                    None
                }
            }
        });
        ComponentLog {
            sink: sink.clone(),
            file,
        }
    }

    fn write(&self, bytes: &[u8]) {
        self.sink.write(bytes);
        if let Some(file) = &self.file {
            let _ = (&**file).write_all(bytes);
        }
    }
}

impl IsTerminal for ComponentLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for ComponentLog {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for ComponentLog {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_sink_collects_writes() {
        let sink = LogSink::new();
        sink.write(b"hello ");
        sink.clone().write(b"world");
        assert_eq!(sink.contents(), "hello world");
    }
}
