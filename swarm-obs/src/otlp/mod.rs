//! OpenTelemetry (OTLP/HTTP, protobuf) for swarm-obs events: the message types,
//! events as log records ([`logs_request`]), where to send them ([`OtlpTarget`]),
//! how to send one signal ([`SignalSender`], plain or HTTPS, optionally gzipped),
//! and a sink that lets a worker export without a collector ([`OtlpSink`]).
//!
//! Enabled by the `otlp` feature: `prost` for the messages, `flate2` for gzip and
//! the `http-client` feature (ureq with rustls) for the requests.

mod exporter;
mod logs;
pub mod proto;
mod target;

pub use exporter::{OtlpSink, PROTOBUF, PostOutcome, SignalSender, gzip};
pub use logs::{
    SCOPE_NAME, any_to_json, json_to_any, level_of_severity, log_record, logs_request, resource_of,
    scope, severity_number,
};
pub use prost::Message;
pub use target::{
    Compression, DEFAULT_TIMEOUT, OtlpProtocol, OtlpTarget, OtlpTargetError, SignalTarget,
};
