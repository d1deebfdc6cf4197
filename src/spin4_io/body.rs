//! Bodies at the Spin 4 edge: the incoming request's head for the core and its body (held in
//! memory when small enough to replay after a 401, streamed otherwise), and the WASIp3 streams a
//! body is written to and read from.
//!
//! The request body is read against `max_body_bytes` as it arrives, because a chunked body has
//! no declared length to check in advance. This module does not decide what is forwarded.

use http_body_util::BodyExt;
use spin_sdk::wasip3::http::types::{ErrorCode, Trailers};
use spin_sdk::wasip3::http_compat::IncomingRequestBody;
use spin_sdk::wasip3::wit_bindgen::{
    FutureReader, FutureWriter, StreamReader, StreamResult, StreamWriter,
};
use spin_sdk::wasip3::{wit_future, wit_stream};

use super::Incoming;
use crate::decision::RequestHead;
use crate::error::{Error, Result};

/// Bytes read per call: large enough to keep the host busy, small enough to stay streaming.
pub(super) const CHUNK: usize = 64 * 1024;
/// A body up to this size is held in memory so a 401 retry can replay it.
const REPLAY_LIMIT: u64 = 1024 * 1024;

/// The request line and headers, which spin-sdk has already converted to `http` types.
pub fn request_head(req: &Incoming) -> Result<RequestHead> {
    let query = req
        .uri()
        .query()
        .map(str::to_string)
        .filter(|q| !q.is_empty());
    Ok(RequestHead {
        method: req.method().clone(),
        query,
        headers: req.headers().clone(),
    })
}

/// The client's body: nothing, all of it in memory (replayable), or a prefix in memory and the
/// rest still in the client's stream.
pub enum RequestBody {
    Empty,
    Buffered(Vec<u8>),
    Streaming {
        prefix: Vec<u8>,
        rest: IncomingRequestBody,
    },
}

impl RequestBody {
    /// Reads up to the replay limit. Counts against `max` and refuses as soon as it is passed.
    pub async fn read(req: Incoming, max: u64) -> Result<RequestBody> {
        let mut body = req.into_body();
        let hold = max.min(REPLAY_LIMIT);
        let mut buf = Vec::new();
        loop {
            match body.frame().await {
                None => break,
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        buf.extend_from_slice(&data);
                    }
                    if buf.len() as u64 > max {
                        return Err(Error::BodyTooLarge { limit: max });
                    }
                    if buf.len() as u64 > hold {
                        return Ok(RequestBody::Streaming {
                            prefix: buf,
                            rest: body,
                        });
                    }
                }
                Some(Err(_)) => {
                    return Err(Error::BadRequest {
                        reason: "the request body could not be read".into(),
                    })
                }
            }
        }
        Ok(if buf.is_empty() {
            RequestBody::Empty
        } else {
            RequestBody::Buffered(buf)
        })
    }

    /// tower's `clone_request` question: can this body be sent a second time?
    pub fn can_replay(&self) -> bool {
        matches!(self, RequestBody::Empty | RequestBody::Buffered(_))
    }
}

/// The writing end of a body: its bytes, then its end (or an error, which aborts it).
pub(super) struct BodyOut {
    pub bytes: StreamWriter<u8>,
    pub end: FutureWriter<std::result::Result<Option<Trailers>, ErrorCode>>,
}

/// The reading end, for a `Request::new` or `Response::new`.
pub(super) type BodyIn = (
    StreamReader<u8>,
    FutureReader<std::result::Result<Option<Trailers>, ErrorCode>>,
);

/// A new body pipe. Dropping the writer without [`BodyOut::finish`] ends the body with an error,
/// so a body cut short is never taken for a whole one.
pub(super) fn body_pipe() -> (BodyOut, BodyIn) {
    let (bytes, bytes_in) = wit_stream::new();
    let (end, end_in) = wit_future::new(|| Err(ErrorCode::InternalError(None)));
    (BodyOut { bytes, end }, (bytes_in, end_in))
}

impl BodyOut {
    /// Writes all of `data`; `false` when the reader has gone.
    pub async fn write(&mut self, data: Vec<u8>) -> bool {
        data.is_empty() || self.bytes.write_all(data).await.is_empty()
    }

    /// Ends the body; `false` when the reader has gone.
    pub async fn finish(self) -> bool {
        drop(self.bytes);
        self.end.write(Ok(None)).await.is_ok()
    }
}

/// The reading end of a body from the runtime (an upstream answer).
pub struct BodyReader {
    bytes: StreamReader<u8>,
    /// Taken once the bytes are over.
    end: Option<FutureReader<std::result::Result<Option<Trailers>, ErrorCode>>>,
}

/// One read of a [`BodyReader`].
pub enum Chunk {
    Data(Vec<u8>),
    End,
    Broke,
}

impl BodyReader {
    pub fn new((bytes, end): BodyIn) -> BodyReader {
        BodyReader {
            bytes,
            end: Some(end),
        }
    }

    pub async fn next(&mut self) -> Chunk {
        loop {
            let (result, data) = self.bytes.read(Vec::with_capacity(CHUNK)).await;
            match result {
                StreamResult::Complete(_) if data.is_empty() => continue,
                StreamResult::Complete(_) => return Chunk::Data(data),
                StreamResult::Dropped | StreamResult::Cancelled => break,
            }
        }
        // The bytes are over: whether the body is whole is the end future's to say, once.
        match self.end.take() {
            Some(end) => match end.await {
                Ok(_) => Chunk::End,
                Err(_) => Chunk::Broke,
            },
            None => Chunk::End,
        }
    }
}

/// Reads a whole body of at most `limit` bytes; `Err` with `true` when it is larger, `false`
/// when it broke off.
pub(super) async fn read_whole(
    body: &mut BodyReader,
    limit: usize,
) -> std::result::Result<Vec<u8>, bool> {
    let mut buf = Vec::new();
    loop {
        match body.next().await {
            Chunk::Data(data) => {
                buf.extend_from_slice(&data);
                if buf.len() > limit {
                    return Err(true);
                }
            }
            Chunk::End => return Ok(buf),
            Chunk::Broke => return Err(false),
        }
    }
}

/// Writes `prefix`, then the rest of `rest` while the total stays within `max`, and ends the
/// body. On any failure the body is aborted: the upstream never takes a cut body for a whole one.
pub(super) async fn write_request_body(
    mut out: BodyOut,
    prefix: &[u8],
    rest: Option<&mut IncomingRequestBody>,
    max: u64,
) -> Result<()> {
    let broke = || {
        Error::upstream(crate::error::Failure::failed(
            "the upstream stopped reading the request body",
        ))
    };
    if !out.write(prefix.to_vec()).await {
        return Err(broke());
    }
    if let Some(rest) = rest {
        let mut total = prefix.len() as u64;
        loop {
            match rest.frame().await {
                None => break,
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    total += data.len() as u64;
                    if total > max {
                        return Err(Error::BodyTooLarge { limit: max });
                    }
                    if !out.write(data.to_vec()).await {
                        return Err(broke());
                    }
                }
                Some(Err(_)) => {
                    return Err(Error::BadRequest {
                        reason: "the request body could not be read".into(),
                    })
                }
            }
        }
    }
    if out.finish().await {
        Ok(())
    } else {
        Err(broke())
    }
}
