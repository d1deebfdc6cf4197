//! The Spin edge: variables, key-value and clock behind the core's ports; wasi:http in `http`.
//!
//! Everything that touches `spin_sdk` or the wasi resources lives under this module and nowhere
//! else. It decides nothing: the core says what to send and what to answer. Errors from Spin are
//! turned into our own fixed descriptions, never their text.

mod http;

pub use http::{
    request_parts, respond, respond_streaming, response_headers, RequestBody, UpstreamSender,
    WasiTokenEndpoint,
};

use std::time::{SystemTime, UNIX_EPOCH};

use spin_sdk::key_value::{self, Store};
use spin_sdk::variables;

use crate::config::Variables;
use crate::error::{Error, Result};
use crate::token::TokenStore;

pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub fn log(line: &str) {
    eprintln!("credential-proxy: {line}");
}

/// Spin's component variables. An empty value counts as unset, which is what a template over an
/// empty secret gives; `undefined` means the variable is not listed for this component.
pub struct SpinVariables;

impl Variables for SpinVariables {
    fn get(&self, name: &str) -> Result<Option<String>> {
        match variables::get(name) {
            Ok(value) if value.trim().is_empty() => Ok(None),
            Ok(value) => Ok(Some(value)),
            Err(variables::Error::Undefined(_)) => Ok(None),
            Err(variables::Error::InvalidName(_)) => {
                Err(Error::config(name, "is not a valid Spin variable name"))
            }
            Err(_) => Err(Error::config(
                name,
                "could not be read from the Spin variables provider",
            )),
        }
    }
}

/// The token cache on a Spin key-value store.
pub struct KvTokenStore(Store);

impl KvTokenStore {
    pub fn open(label: &str) -> Result<KvTokenStore> {
        Store::open(label).map(KvTokenStore).map_err(|e| {
            let why = match e {
                key_value::Error::AccessDenied => {
                    "names a store this component may not use: add it to key_value_stores in \
                     spin.toml"
                }
                key_value::Error::NoSuchStore => {
                    "names a store the runtime does not have: define it in the runtime config"
                }
                _ => "names a store that could not be opened",
            };
            Error::config("kv_store", why)
        })
    }
}

impl TokenStore for KvTokenStore {
    fn load(&self, key: &str) -> std::result::Result<Option<Vec<u8>>, String> {
        self.0.get(key).map_err(|e| kv_error(&e))
    }

    fn save(&self, key: &str, value: &[u8]) -> std::result::Result<(), String> {
        self.0.set(key, value).map_err(|e| kv_error(&e))
    }

    fn remove(&self, key: &str) -> std::result::Result<(), String> {
        self.0.delete(key).map_err(|e| kv_error(&e))
    }
}

fn kv_error(e: &key_value::Error) -> String {
    match e {
        key_value::Error::StoreTableFull => "the store is full".into(),
        key_value::Error::AccessDenied => "access denied".into(),
        key_value::Error::NoSuchStore => "no such store".into(),
        key_value::Error::Other(_) => "the store reported an error".into(),
    }
}
