//! Agent CPx: the core with no GUI. For now the card side: scanning readers and cards, the message
//! catalogue and the CLI's output; the loopback HTTPS server, PIN prompt and mTLS client come next.

pub mod messages;
pub mod output;
pub mod scan;
