//! The one place where wasi:http's shapes and the `http` crate's meet: methods and header
//! fields, converted once on the way in and once on the way out.
//!
//! Conversions keep every repeated value, in order (`HeaderMap::append`), because the core reads
//! the client's first `Origin` and Spin's last `spin-*` value. They decide nothing else.

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use spin_sdk::wit::wasi::http0_2_0::types::{Fields, Method as WasiMethod};

use crate::error::{Error, Result};

/// wasi:http's header list as a `HeaderMap`. The runtime already refused names and values that
/// are not valid HTTP, so a failure here is a request we cannot read.
pub fn headers_in(entries: Vec<(String, Vec<u8>)>) -> Result<HeaderMap> {
    let mut headers = HeaderMap::with_capacity(entries.len());
    for (name, value) in entries {
        let name = HeaderName::from_bytes(name.as_bytes());
        let value = HeaderValue::from_bytes(&value);
        let (Ok(name), Ok(value)) = (name, value) else {
            return Err(Error::BadRequest {
                reason: "a header is not valid HTTP".into(),
            });
        };
        headers.append(name, value);
    }
    Ok(headers)
}

/// A `HeaderMap` as wasi:http fields; `Err` if the runtime refuses one (a forbidden field).
pub fn fields_out(headers: &HeaderMap) -> std::result::Result<Fields, ()> {
    let list: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
        .collect();
    Fields::from_list(&list).map_err(|_| ())
}

pub fn method_in(m: &WasiMethod) -> Result<Method> {
    Ok(match m {
        WasiMethod::Get => Method::GET,
        WasiMethod::Head => Method::HEAD,
        WasiMethod::Post => Method::POST,
        WasiMethod::Put => Method::PUT,
        WasiMethod::Delete => Method::DELETE,
        WasiMethod::Connect => Method::CONNECT,
        WasiMethod::Options => Method::OPTIONS,
        WasiMethod::Trace => Method::TRACE,
        WasiMethod::Patch => Method::PATCH,
        // Methods are case-sensitive (RFC 9110 §9.1): `get` is the extension method `get`.
        WasiMethod::Other(other) => {
            Method::from_bytes(other.as_bytes()).map_err(|_| Error::BadRequest {
                reason: "the method is not an HTTP method token".into(),
            })?
        }
    })
}

pub fn method_out(m: &Method) -> WasiMethod {
    match *m {
        Method::GET => WasiMethod::Get,
        Method::HEAD => WasiMethod::Head,
        Method::POST => WasiMethod::Post,
        Method::PUT => WasiMethod::Put,
        Method::DELETE => WasiMethod::Delete,
        Method::OPTIONS => WasiMethod::Options,
        Method::PATCH => WasiMethod::Patch,
        _ => WasiMethod::Other(m.as_str().to_string()),
    }
}
