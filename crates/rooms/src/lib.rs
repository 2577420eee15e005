//! # phonebridge-rooms
//!
//! OpenVidu-2-compatible sessions without I/O: sessions, connections (pending tokens and
//! active participants), published streams and subscriptions, in OpenVidu's identifier
//! formats; the JSON objects of its REST API; the webhook events and JSON-RPC notifications
//! each operation causes, in OpenVidu's order.
//!
//! Time comes in as wall-clock milliseconds and identifiers from a seeded RNG; nothing here
//! opens a socket, reads a clock or spawns. The SFU (media) and the JSON-RPC transport build
//! on this model.

pub mod ids;
pub mod model;
pub mod requests;
pub mod rooms;
pub mod rpc;
pub mod sfu;

pub use model::{Connection, ConnectionType, MediaOptions, Role, Session, Status, Stream};
pub use rooms::{ConnectionProps, Joined, LeaveReason, Output, Rooms, RoomsError, SessionProps};
