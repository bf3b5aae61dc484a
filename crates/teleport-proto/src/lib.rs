//! Wire types and gRPC stubs for the part of Teleport's Auth Service that an access-request plugin uses.
//!
//! The `.proto` files under `proto/` are a hand-written subset with Teleport's package names, message names
//! and field numbers. Only numbers and types reach the wire, except the service paths
//! (`/proto.AuthService/<Method>` and the `teleport.*.v1` services'), which is why the packages keep
//! Teleport's names. Decoders skip the fields left out, so the subset talks to any Teleport version
//! that has these fields.

#![allow(missing_docs, clippy::all, clippy::pedantic, unreachable_pub)]

pub mod codec;

/// Teleport's `wrappers` package (label values).
pub mod wrappers {
    tonic::include_proto!("wrappers");
}

/// Teleport's `types` package (access requests, reviews, plugin data, watch kinds, users).
pub mod types {
    tonic::include_proto!("types");
}

/// Teleport's `proto` package: request/response wrappers and the `AuthService` client and server.
pub mod proto {
    tonic::include_proto!("proto");
}

/// Teleport's newer `teleport.*.v1` packages.
pub mod teleport {
    /// Resource headers of the newer resources.
    pub mod header {
        pub mod v1 {
            tonic::include_proto!("teleport.header.v1");
        }
    }
    /// User traits.
    pub mod r#trait {
        pub mod v1 {
            // `trait` is a Rust keyword, so the generated file is named with its raw form.
            include!(concat!(env!("OUT_DIR"), "/teleport.r#trait.v1.rs"));
        }
    }
    /// A user's roles and traits as of their last login.
    pub mod userloginstate {
        pub mod v1 {
            tonic::include_proto!("teleport.userloginstate.v1");
        }
    }
    /// Access Monitoring Rules and their service.
    pub mod accessmonitoringrules {
        pub mod v1 {
            tonic::include_proto!("teleport.accessmonitoringrules.v1");
        }
    }
}
