//! Writing the browser's answer: an [`Answer`] the proxy made whole, or an upstream answer whose
//! head `answer` built and whose body is spliced through with wasi:io's blocking splice, so no
//! body is ever held whole (for the response cache, a copy of at most `cache_max_body_bytes` is
//! kept while it passes).
//!
//! This module writes what it is given and logs the answer's line; it builds no status or
//! header itself. When a streamed answer fails before its status is committed, the
//! [`ResponseOutparam`] comes back with the error ([`Unsent`]) so the caller can still answer
//! with JSON; after that, a failure can only cut the body short, which it reports as
//! [`Written::CutShort`] for the access log.

use spin_sdk::wit::wasi::http0_2_0::types::{OutgoingBody, OutgoingResponse, ResponseOutparam};
use wasi::io::streams::{InputStream, OutputStream, StreamError};

use super::convert::fields_out;
use super::log;
use super::outbound::{write_body, UpstreamResponse};
use super::request::CHUNK;
use crate::access_log::Written;
use crate::answer::Answer;
use crate::error::{Error, Failure};

/// A streamed answer that failed before anything was sent: the outparam is still ours.
pub struct Unsent {
    pub out: ResponseOutparam,
    pub error: Error,
}

/// Sends a whole answer that the proxy made itself (errors, preflights).
pub async fn respond(out: ResponseOutparam, answer: &Answer) -> Written {
    log_line(answer);
    let Ok(fields) = fields_out(&answer.headers) else {
        log("could not build response headers");
        return Written::CutShort;
    };
    let response = OutgoingResponse::new(fields);
    let _ = response.set_status_code(answer.status.as_u16());
    let Ok(out_body) = response.body() else {
        return Written::CutShort;
    };
    ResponseOutparam::set(out, Ok(response));
    if write_body(out_body, &answer.body, None, u64::MAX).is_err() {
        log("the client went away before the answer was written");
        return Written::CutShort;
    }
    Written::Complete
}

/// Streams the upstream's answer back: the status and headers of `answer`, then the upstream's
/// body.
pub async fn respond_streaming(
    out: ResponseOutparam,
    answer: &Answer,
    upstream: UpstreamResponse,
) -> Result<Written, Unsent> {
    respond_streaming_kept(out, answer, upstream, None)
        .await
        .map(|(written, _)| written)
}

/// [`respond_streaming`], and with `keep = Some(limit)` also a copy of the body for the response
/// cache: `Some(body)` when the whole body went to the client and was at most `limit` bytes.
/// Past the limit the copy is dropped and the rest is spliced as usual, so a large answer is
/// never held.
pub async fn respond_streaming_kept(
    out: ResponseOutparam,
    answer: &Answer,
    upstream: UpstreamResponse,
    keep: Option<u64>,
) -> Result<(Written, Option<Vec<u8>>), Unsent> {
    log_line(answer);
    let unsent = |out, error| Err(Unsent { out, error });
    let Ok(fields) = fields_out(&answer.headers) else {
        let reason = "it sent a header that cannot be passed on";
        return unsent(out, Error::upstream(Failure::failed(reason)));
    };
    let response = OutgoingResponse::new(fields);
    let _ = response.set_status_code(answer.status.as_u16());
    let (Ok(out_body), Ok(in_body)) = (response.body(), upstream.incoming.consume()) else {
        return unsent(out, Error::internal("a response body was already taken"));
    };
    let Ok(in_stream) = in_body.stream() else {
        return unsent(
            out,
            Error::internal("the upstream body stream was already taken"),
        );
    };
    // From here the status is sent; a failure can only cut the body short.
    ResponseOutparam::set(out, Ok(response));
    let cut_short = || Ok((Written::CutShort, None));
    let Ok(out_stream) = out_body.write() else {
        return cut_short();
    };
    let mut kept = keep.map(|limit| (limit, Vec::new()));
    loop {
        let step = match &mut kept {
            Some((limit, copy)) => {
                let step = tee(&in_stream, &out_stream, copy);
                if copy.len() as u64 > *limit {
                    kept = None;
                }
                step
            }
            None => match out_stream.blocking_splice(&in_stream, CHUNK) {
                Ok(_) => Step::More,
                // Closed is either side: the upstream's body ended, or the client went away
                // (the host closes our output). Only the first is a complete answer.
                Err(StreamError::Closed) if out_stream.check_write().is_err() => Step::Broke,
                Err(StreamError::Closed) => Step::End,
                Err(StreamError::LastOperationFailed(_)) => Step::Broke,
            },
        };
        match step {
            Step::More => {}
            Step::End => break,
            Step::Broke => {
                // Not finishing the body tells the client the answer is incomplete.
                log("the response body broke off mid-stream");
                return cut_short();
            }
        }
    }
    drop(out_stream);
    drop(in_stream);
    drop(in_body);
    if OutgoingBody::finish(out_body, None).is_err() {
        return cut_short();
    }
    Ok((Written::Complete, kept.map(|(_, copy)| copy)))
}

enum Step {
    More,
    End,
    Broke,
}

/// Moves one chunk from `from` to `to`, keeping a copy. Only the end of `from` is [`Step::End`];
/// a client that stops reading is [`Step::Broke`], so a cut-off copy is never stored.
fn tee(from: &InputStream, to: &OutputStream, copy: &mut Vec<u8>) -> Step {
    let chunk = match from.blocking_read(CHUNK) {
        Ok(chunk) => chunk,
        Err(StreamError::Closed) => return Step::End,
        Err(StreamError::LastOperationFailed(_)) => return Step::Broke,
    };
    // blocking-write-and-flush takes at most 4096 bytes per call (wasi:io streams).
    for piece in chunk.chunks(4096) {
        if to.blocking_write_and_flush(piece).is_err() {
            return Step::Broke;
        }
    }
    copy.extend_from_slice(&chunk);
    Step::More
}

fn log_line(answer: &Answer) {
    if let Some(line) = &answer.log {
        log(line);
    }
}
