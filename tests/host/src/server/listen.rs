//! The network side: accepts HTTP/1.1 connections on the host's listener and hands every request
//! to the [`App`] with the peer's address. It knows nothing of routing or components.

use std::convert::Infallible;
use std::sync::Arc;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::app::App;

/// Accepts connections until `stop` fires (or its sender is dropped); then drops every open
/// connection too, so a stopped host answers nothing, even on a kept-alive connection. Unless
/// `nagle`, every connection gets `TCP_NODELAY` (why: `HostOptions::nagle`).
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    nagle: bool,
    mut stop: oneshot::Receiver<()>,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = &mut stop => break,
            Some(_) = connections.join_next() => continue,
            a = listener.accept() => a,
        };
        let (stream, client_addr) = match accepted {
            Ok(a) => a,
            Err(_) => {
                // e.g. out of file descriptors: back off instead of spinning.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        if !nagle {
            // A connection without it still works: only its small writes may wait.
            let _ = stream.set_nodelay(true);
        }
        let app = app.clone();
        connections.spawn(async move {
            let service = service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(app.handle_external(req, client_addr).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
