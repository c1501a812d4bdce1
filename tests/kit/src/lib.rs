//! What the tests and benchmarks share, written once: clients signed in to
//! the sandboxes. (The sandboxes themselves are `bridge-sandbox`; the world
//! of a bridge test — sandboxes, the server binary, users — is the server's
//! `tests/it/common`, which needs that crate's binary.)

pub mod sqlserver;
