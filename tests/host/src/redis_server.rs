//! A real `redis-server` for tests: started on a free port of 127.0.0.1 with no persistence, in
//! a scratch directory, stopped when dropped. Tests that need it call [`RedisServer::start`],
//! which returns `None` after printing one line saying what was skipped and how to install
//! Redis when the program is missing, unless the environment variable `CI` is set: then a
//! missing program is a failure, so CI can never skip silently. It does not talk Redis itself.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server` child process.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

/// Where `redis-server` is, from `PATH` (Debian's package installs `/usr/bin/redis-server`).
fn find_program() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("redis-server"))
        .find(|p| p.is_file())
}

impl RedisServer {
    /// Starts a fresh server, or `None` (with one printed line) when `redis-server` is not
    /// installed and `CI` is not set. `test` names the test that needs it, for that line.
    /// Panics when the program exists but does not come up, or is missing under `CI`.
    pub fn start(test: &str) -> Option<RedisServer> {
        let Some(program) = find_program() else {
            let missing = "redis-server not found (install it: `apt-get install redis-server`)";
            if std::env::var_os("CI").is_some() {
                panic!("{test}: {missing}; CI is set, so this fails instead of skipping");
            }
            eprintln!("skipped {test}: {missing}");
            return None;
        };
        let mut last_error = String::new();
        // A free port can be taken between choosing it and redis binding it: try a few.
        for _ in 0..3 {
            match Self::spawn(&program) {
                Ok(server) => return Some(server),
                Err(e) => last_error = e,
            }
        }
        panic!("redis-server did not start: {last_error}");
    }

    fn spawn(program: &PathBuf) -> Result<RedisServer, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let dir =
            std::env::temp_dir().join(format!("spin-test-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let child = Command::new(program)
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
        let mut server = RedisServer { child, addr, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("redis-server exited at start ({status})"));
            }
            if ping(addr) {
                return Ok(server);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        server.stop();
        Err("redis-server did not answer PING within 10 s".to_string())
    }

    /// `redis://127.0.0.1:PORT`, as a runtime config's `url`.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether a Redis server answers `PING` at `addr`.
fn ping(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}
