//! The CPx card driver: recognises CPS3 and CPS4 cards, reads the holder's identity from their PKCS#15
//! structure, reports, verifies, changes and unblocks the code porteur, and signs digests with the authentication key.
//!
//! One driver type per card generation ([`cps3::Cps3`], [`cps4::Cps4`]) behind one trait
//! ([`card::CpxCard`]); [`open::open`] picks the driver. Everything the card sends is parsed by code that
//! returns [`CardError`] and never panics ([`tlv`], [`fcp`], [`efsn`], [`path`], [`pkcs15`], [`identity`],
//! [`atr`]). The card facts the driver relies on, with their public sources, are in docs/card-facts.md.

#![warn(missing_docs)]

pub mod atr;
pub mod cache;
pub mod card;
pub mod card_type;
pub mod cps3;
pub mod cps4;
pub mod efsn;
pub mod error;
pub mod fcp;
pub mod identity;
pub mod iso;
pub mod open;
pub mod path;
pub mod pin;
pub mod pin_change;
pub mod pinpad;
pub mod pkcs15;
pub mod scheme;
pub mod tlv;

pub use atr::{Generation, Interface};
pub use cache::CertCache;
pub use card::{CardInfo, CodePorteur, CpxCard, Recognition};
pub use card_type::{CardType, IdNatKind, Structure, TypeSource};
pub use error::{generation_name, CardError, Credential};
pub use identity::{IdKind, Identity, Validity};
pub use open::open;
pub use pin::{Pin, PinStatus};
pub use pin_change::{PinChangeError, UnblockingCode, UNBLOCKING_CODE_LEN};
pub use pinpad::{PinPad, PinPadChangeError, PinPadError, PinPadModify};
pub use scheme::SignScheme;
