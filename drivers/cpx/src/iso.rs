//! ISO 7816-4 commands shared by the drivers: SELECT, READ BINARY of a whole file, status word checks.
//! `cla` carries the logical channel (0 on the basic channel, 1 for the CPS4's ChipDoc).

use cpx_pcsc::{Command, Response, StatusWord, Transport};

use crate::error::CardError;
use crate::fcp;

/// Largest READ BINARY a CPx card serves in one call (Cryptolib's max_recv_size, cpx-card.md §10).
pub const MAX_READ: usize = 0xE7;
/// Files larger than this are not CPx files: refuse instead of reading forever.
const MAX_FILE: usize = 16 * 1024;

pub fn send(t: &mut dyn Transport, cmd: &Command) -> Result<Response, CardError> {
    Ok(t.transmit(cmd)?)
}

/// Sends and requires `90 00`.
pub fn expect_ok(t: &mut dyn Transport, name: &'static str, cmd: &Command) -> Result<Vec<u8>, CardError> {
    let r = send(t, cmd)?;
    if r.sw.is_ok() {
        Ok(r.data)
    } else {
        Err(CardError::status(name, r.sw))
    }
}

pub const FILE_NOT_FOUND: StatusWord = StatusWord(0x6A82);

/// SELECT by path from the MF (P1 09, path including 3F00, as OpenSC and Cryptolib do), FCP wanted.
pub fn select_path(t: &mut dyn Transport, cla: u8, path: &[u8]) -> Result<Response, CardError> {
    let data = if path.starts_with(&[0x3F, 0x00]) || path.is_empty() { path.to_vec() } else { [&[0x3F, 0x00][..], path].concat() };
    if data.len() > 0xFF {
        return Err(CardError::malformed("PKCS#15 path", "too long"));
    }
    send(t, &Command::new(cla, 0xA4, 0x09, 0x04).with_data(data))
}

/// SELECT an application by AID, no FCP.
pub fn select_aid(t: &mut dyn Transport, cla: u8, aid: &[u8]) -> Result<(), CardError> {
    expect_ok(t, "SELECT application", &Command::new(cla, 0xA4, 0x04, 0x0C).with_data(aid)).map(drop)
}

/// Selects the EF at `path` and reads all of it.
pub fn read_file(t: &mut dyn Transport, cla: u8, path: &[u8]) -> Result<Vec<u8>, CardError> {
    let r = select_path(t, cla, path)?;
    if !r.sw.is_ok() {
        return Err(CardError::status("SELECT file", r.sw));
    }
    read_selected(t, cla, &r.data)
}

/// Reads the EF whose FCP is `fcp_bytes` (just selected).
pub fn read_selected(t: &mut dyn Transport, cla: u8, fcp_bytes: &[u8]) -> Result<Vec<u8>, CardError> {
    let size = fcp::parse(fcp_bytes)?.size.ok_or_else(|| CardError::malformed("FCP", "no file size"))?;
    if size > MAX_FILE {
        return Err(CardError::malformed("FCP", format!("file of {size} bytes")));
    }
    let mut out = Vec::with_capacity(size);
    while out.len() < size {
        let n = (size - out.len()).min(MAX_READ);
        let offset = out.len() as u16;
        let r = send(t, &Command::new(cla, 0xB0, (offset >> 8) as u8, offset as u8).with_le(n as u8))?;
        if !r.sw.is_ok() {
            return Err(CardError::status("READ BINARY", r.sw));
        }
        if r.data.is_empty() || r.data.len() > n {
            return Err(CardError::malformed("READ BINARY", format!("asked {n} bytes, got {}", r.data.len())));
        }
        out.extend_from_slice(&r.data);
    }
    Ok(out)
}

/// READ BINARY by short file identifier (no SELECT), `len` bytes from offset 0.
pub fn read_sfi(t: &mut dyn Transport, cla: u8, sfi: u8, len: u8) -> Result<Response, CardError> {
    send(t, &Command::new(cla, 0xB0, 0x80 | (sfi & 0x1F), 0).with_le(len))
}
