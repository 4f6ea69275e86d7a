//! PC/SC transport for CPx cards.
//!
//! This crate is the only place that talks to the PC/SC service (pcsc-lite, WinSCard, CryptoTokenKit's
//! PC/SC layer). It knows nothing about CPx cards: it moves APDUs, watches readers and turns every
//! PC/SC failure into a [`PcscError`].
//!
//! - [`apdu`]: command and response APDUs, status words.
//! - [`connection`]: a connected card, with T=0 response chaining (`61xx`, `6Cxx`) inside a transaction,
//!   and a timeout on every call.
//! - [`transaction`]: the transaction guard, which ends itself (resetting the card when asked).
//! - [`readers`]: a one-shot view of the readers and what is in them.
//! - [`monitor`]: an event-driven reader/card monitor on `SCardGetStatusChange`.
//! - [`pinpad`]: PIN-pad readers (PC/SC part 10): the reader's features, its PIN properties, and the
//!   verification of the code porteur on its keypad.

#![warn(missing_docs)]

pub mod apdu;
pub mod connection;
pub mod error;
pub mod monitor;
pub mod pinpad;
pub mod readers;
pub mod transaction;

pub use apdu::{Command, Response, StatusWord};
pub use connection::{Connection, ConnectionOptions, Protocol, Transport};
pub use error::PcscError;
pub use monitor::{Monitor, MonitorEvent, MonitorOptions, ReaderWatch, POLL_PERIOD};
pub use pinpad::{PinPadFeatures, PinProperties, ReaderPinPad};
pub use readers::{Context, ReaderInfo, SlotState};
pub use transaction::{Disposition, Transaction};
