//! Writing the browser's answer on Spin 4: an [`Answer`] the proxy made whole, or an upstream
//! answer whose head `answer` built and whose body is passed through chunk by chunk (for the
//! response cache, a copy of at most `cache_max_body_bytes` is kept while it passes).
//!
//! The answer's head goes to the entry through the outparam, which returns it to Spin; this task
//! then writes the body. This module builds no status or header itself. When the head cannot be
//! built, the outparam comes back with the error ([`Unsent`]) so the caller can still answer
//! with JSON; after that, a failure can only cut the body short ([`Written::CutShort`]).

use futures::future::join;
use spin_sdk::wasip3::http::types::{ErrorCode, Fields, Response};

use super::body::{body_pipe, BodyOut, Chunk};
use super::outbound::UpstreamResponse;
use super::{log, Outparam};
use crate::access_log::Written;
use crate::answer::Answer;
use crate::error::{Error, Failure};

/// A streamed answer that failed before anything was sent: the outparam is still ours.
pub struct Unsent {
    pub out: Outparam,
    pub error: Error,
}

/// Sends a whole answer that the proxy made itself (errors, preflights, cache hits).
pub async fn respond(out: Outparam, answer: &Answer) -> Written {
    log_line(answer);
    let Ok(fields) = fields_out(answer) else {
        log("could not build response headers");
        return Written::CutShort;
    };
    let (body, written) = send_with(out, answer, fields, answer.body.clone()).await;
    let complete = match body {
        Some(body) => written && body.finish().await,
        None => false,
    };
    if !complete {
        log("the client went away before the answer was written");
        return Written::CutShort;
    }
    Written::Complete
}

/// Streams the upstream's answer back: the status and headers of `answer`, then the upstream's
/// body; with `keep = Some(limit)` also a copy of the body for the response cache: `Some(body)`
/// when the whole body went to the client and was at most `limit` bytes.
pub async fn respond_streaming_kept(
    out: Outparam,
    answer: &Answer,
    upstream: UpstreamResponse,
    keep: Option<u64>,
) -> Result<(Written, Option<Vec<u8>>), Unsent> {
    log_line(answer);
    let Ok(fields) = fields_out(answer) else {
        let reason = "it sent a header that cannot be passed on";
        return Err(Unsent {
            out,
            error: Error::upstream(Failure::failed(reason)),
        });
    };
    // From here the status is sent; a failure can only cut the body short.
    let (Some(mut body), _) = send_with(out, answer, fields, Vec::new()).await else {
        log("the client went away mid-answer");
        return Ok((Written::CutShort, None));
    };
    let mut from = upstream.body;
    let mut kept = keep.map(|limit| (limit, Vec::new()));
    loop {
        match from.next().await {
            Chunk::Data(data) => {
                tee(&mut kept, &data);
                if !body.write(data).await {
                    log("the client went away mid-answer");
                    return Ok((Written::CutShort, None));
                }
            }
            Chunk::End => break,
            Chunk::Broke => {
                // Dropping the body unfinished tells the client the answer is incomplete.
                log("the response body broke off mid-stream");
                return Ok((Written::CutShort, None));
            }
        }
    }
    if !body.finish().await {
        return Ok((Written::CutShort, None));
    }
    Ok((Written::Complete, kept.map(|(_, copy)| copy)))
}

/// Adds `data` to the cache's copy, dropped once it passes its limit.
fn tee(kept: &mut Option<(u64, Vec<u8>)>, data: &[u8]) {
    if let Some((limit, copy)) = kept {
        copy.extend_from_slice(data);
        if copy.len() as u64 > *limit {
            *kept = None;
        }
    }
}

/// Sends the head with `first` bytes of the body already on offer, so a runtime that looks for
/// body bytes before it writes the head can send both in one TCP segment. Returns the body to go
/// on writing (`None`: nobody takes the answer any more) and whether `first` was taken.
async fn send_with(
    out: Outparam,
    answer: &Answer,
    fields: Fields,
    first: Vec<u8>,
) -> (Option<BodyOut>, bool) {
    let (mut body, (bytes, end)) = body_pipe();
    let (response, _) = Response::new(fields, Some(bytes), end);
    let _ = response.set_status_code(answer.status.as_u16());
    // `join` polls the write first: it is on offer before the head is handed over.
    let (written, sent) = join(body.write(first), async {
        out.send(Ok::<Response, ErrorCode>(response)).is_ok()
    })
    .await;
    (sent.then_some(body), written)
}

fn fields_out(answer: &Answer) -> Result<Fields, ()> {
    let list: Vec<(String, Vec<u8>)> = answer
        .headers
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
        .collect();
    Fields::from_list(&list).map_err(|_| ())
}

fn log_line(answer: &Answer) {
    if let Some(line) = &answer.log {
        log(line);
    }
}
