//! The incoming request at the edge: its head as the core's [`RequestHead`], and its body, held
//! in memory when small enough to replay after a 401 and streamed otherwise.
//!
//! The body is read against `max_body_bytes` as it arrives, because a chunked body has no
//! declared length to check in advance. This module does not decide what is forwarded.

use spin_sdk::http::IncomingRequest;
use spin_sdk::wit::wasi::http0_2_0::types::IncomingBody;
use wasi::io::streams::{InputStream, StreamError};

use super::convert::{headers_in, method_in};
use crate::decision::RequestHead;
use crate::error::{Error, Result};

/// Bytes moved per read or splice: large enough to keep the host busy, small enough to stay
/// streaming.
pub(super) const CHUNK: u64 = 64 * 1024;
/// A body up to this size is held in memory so a 401 retry can replay it.
const REPLAY_LIMIT: u64 = 1024 * 1024;

/// The request line and headers, converted once for the core.
pub fn request_head(req: &IncomingRequest) -> Result<RequestHead> {
    let path_with_query = req.path_with_query().unwrap_or_default();
    let query = path_with_query
        .split_once('?')
        .map(|(_, q)| q.to_string())
        .filter(|q| !q.is_empty());
    Ok(RequestHead {
        method: method_in(&req.method())?,
        query,
        headers: headers_in(req.headers().entries())?,
    })
}

/// The client's body: nothing, all of it in memory (replayable), or a prefix in memory and the
/// rest still in the client's stream.
pub enum RequestBody {
    Empty,
    Buffered(Vec<u8>),
    Streaming {
        prefix: Vec<u8>,
        stream: InputStream,
        // Kept alive while `stream` is read: dropping the body closes the stream.
        _body: IncomingBody,
    },
}

impl RequestBody {
    /// Reads up to the replay limit. Counts against `max` and refuses as soon as it is passed.
    pub fn read(req: IncomingRequest, max: u64) -> Result<RequestBody> {
        let body = req
            .consume()
            .map_err(|_| Error::internal("request body already taken"))?;
        let stream = body
            .stream()
            .map_err(|_| Error::internal("request body stream already taken"))?;
        let hold = max.min(REPLAY_LIMIT);
        match read_up_to(&stream, hold) {
            Ok(Read::Whole(buf)) => {
                drop(stream);
                drop(body);
                Ok(if buf.is_empty() {
                    RequestBody::Empty
                } else {
                    RequestBody::Buffered(buf)
                })
            }
            Ok(Read::Over(buf)) if buf.len() as u64 > max => {
                Err(Error::BodyTooLarge { limit: max })
            }
            Ok(Read::Over(prefix)) => Ok(RequestBody::Streaming {
                prefix,
                stream,
                _body: body,
            }),
            Err(()) => Err(Error::BadRequest {
                reason: "the request body could not be read".into(),
            }),
        }
    }

    /// tower's `clone_request` question: can this body be sent a second time?
    pub fn can_replay(&self) -> bool {
        matches!(self, RequestBody::Empty | RequestBody::Buffered(_))
    }
}

/// What [`read_up_to`] got: the whole stream, or more than the limit (and the stream is left
/// positioned after what was read).
pub(super) enum Read {
    Whole(Vec<u8>),
    Over(Vec<u8>),
}

/// Reads a stream to its end, or until it has more than `limit` bytes. `Err` if it broke off.
pub(super) fn read_up_to(stream: &InputStream, limit: u64) -> std::result::Result<Read, ()> {
    let mut buf = Vec::new();
    loop {
        match stream.blocking_read(CHUNK) {
            Ok(chunk) => {
                buf.extend_from_slice(&chunk);
                if buf.len() as u64 > limit {
                    return Ok(Read::Over(buf));
                }
            }
            Err(StreamError::Closed) => return Ok(Read::Whole(buf)),
            Err(StreamError::LastOperationFailed(_)) => return Err(()),
        }
    }
}
