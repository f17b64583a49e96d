//! OpenTelemetry (OTLP/HTTP, protobuf) for swarm-obs events: the message types,
//! events as log records ([`logs_request`]), where to send them ([`OtlpTarget`]),
//! and a sink that lets a worker export without a collector ([`OtlpSink`]).
//!
//! Enabled by the `otlp` feature, which adds only `prost` to the dependency tree.

mod exporter;
mod logs;
pub mod proto;
mod target;

pub use exporter::{OtlpSink, PROTOBUF, PostOutcome, post, split_url};
pub use logs::{
    SCOPE_NAME, any_to_json, json_to_any, level_of_severity, log_record, logs_request, resource_of,
    scope, severity_number,
};
pub use prost::Message;
pub use target::{DEFAULT_TIMEOUT, OtlpProtocol, OtlpTarget, OtlpTargetError};
