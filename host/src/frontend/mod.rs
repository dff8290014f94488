//! The frontends: the only code that owns sockets, TLS and wire protocols.
//!
//! # Layout
//! - `http`: HTTP/1.1 and HTTP/2 listeners, the access log and request metrics.
//! - `routing`: a request's host, and routing it by Host and path prefix to an instance.
//! - `idle`: closing connections that stay silent or idle (no request in progress).
//! - `drain`: request bodies a response left unread (keep HTTP/1.1 connections usable).
//! - `tls`: SNI certificate selection and the generated local certificate authority.
//! - `ssh`: the SSH listener (russh), its host key and the session abstraction.

mod drain;
pub mod http;
mod idle;
mod routing;
pub mod ssh;
pub mod tls;
