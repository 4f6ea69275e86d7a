//! The virtual CPx card: a client of pcsc-lite's vpcd reader driver that answers APDUs like a CPS3 or a
//! CPS4, signs with real RSA keys from a test IGC-Santé PKI, and can misbehave on purpose (personas).
//!
//! It shares no code with the card driver (`drivers/cpx`): it is the outside world the driver is tested
//! against, and a simulator that reused the driver's parsers would share its mistakes.

#![warn(missing_docs)]

pub mod card;
pub mod der;
pub mod fault;
pub mod fs;
pub mod latency;
pub mod persona;
pub mod pkcs15;
pub mod pki;
pub mod vpcd;

pub use card::{CardOs, CardSpec};
pub use fault::{Fault, Garble};
pub use latency::Latency;
pub use persona::{find, Options, Persona, PERSONAS};
pub use pkcs15::Layout;
pub use vpcd::{insert, Inserted};
