//! Wire types and gRPC stubs for the part of Teleport's Auth Service that an access-request plugin uses.
//!
//! The `.proto` files under `proto/` are a hand-written subset with Teleport's package names, message names
//! and field numbers. Only numbers and types reach the wire, except the service path
//! `/proto.AuthService/<Method>`, which is why the package must be called `proto`.
//! Decoders skip the fields left out, so the subset talks to any Teleport version that has these fields.

#![allow(missing_docs, clippy::all, clippy::pedantic, unreachable_pub)]

/// Teleport's `wrappers` package (label values).
pub mod wrappers {
    tonic::include_proto!("wrappers");
}

/// Teleport's `types` package (access requests, reviews, plugin data, watch kinds).
pub mod types {
    tonic::include_proto!("types");
}

/// Teleport's `proto` package: request/response wrappers and the `AuthService` client and server.
pub mod proto {
    tonic::include_proto!("proto");
}
