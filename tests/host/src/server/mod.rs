//! The top layer: the HTTP side of `spin up`. [`routes`] maps paths to components and computes
//! the `spin-*` headers, [`instance`] puts an instance's state together and links it,
//! [`invoke`] runs one request in one fresh instance (WASIp2), [`invoke_p3`] one request in a
//! reused instance of a WASIp3 component's pool ([`reuse`]), [`app`] holds the loaded components
//! and decides what answers each request (and serves service-chained ones), [`listen`] accepts
//! connections. Only this layer knows every Spin interface at once.

pub mod app;
pub mod instance;
pub mod invoke;
pub mod invoke_p3;
pub mod listen;
pub mod reuse;
pub mod routes;

pub use app::{App, ServedRequest};
