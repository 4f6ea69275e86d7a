//! ISO 7816-4 commands shared by the drivers: SELECT, READ BINARY of a whole file, status word checks.
//! `cla` carries the logical channel (0 on the basic channel, 1 for the CPS4's ChipDoc).

use cpx_pcsc::{Command, Response, StatusWord, Transport};

use crate::error::CardError;
use crate::fcp;

/// Largest READ BINARY a CPx card serves in one call (Cryptolib's max_recv_size,
/// docs/card-facts.md#files-of-the-mf).
pub const MAX_READ: usize = 0xE7;
/// Files larger than this are not CPx files: refuse instead of reading forever.
const MAX_FILE: usize = 16 * 1024;

/// Sends `cmd` and returns the response, its status word not checked.
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

/// `6A 82`: file or application not found.
pub const FILE_NOT_FOUND: StatusWord = StatusWord(0x6A82);

/// SELECT by path from the MF (P1 09, path including 3F00, as OpenSC and Cryptolib do), FCP wanted.
/// Only absolute paths: a file id is resolved against its application DF (see `open.rs`), never by
/// prefixing 3F00 to it.
pub fn select_path(t: &mut dyn Transport, cla: u8, path: &[u8]) -> Result<Response, CardError> {
    if !path.starts_with(&[0x3F, 0x00]) || !path.len().is_multiple_of(2) {
        return Err(CardError::malformed(
            "PKCS#15 path",
            format!("{} is not a path from the MF", hex::encode_upper(path)),
        ));
    }
    if path.len() > 0xFF {
        return Err(CardError::malformed("PKCS#15 path", "too long"));
    }
    send(t, &Command::new(cla, 0xA4, 0x09, 0x04).with_data(path))
}

/// SELECT a file of the current DF by its file id (P1 02), FCP wanted.
pub fn select_fid(t: &mut dyn Transport, cla: u8, fid: u16) -> Result<Response, CardError> {
    send(t, &Command::new(cla, 0xA4, 0x02, 0x04).with_data(fid.to_be_bytes()))
}

/// SELECT by a path from the current DF (P1 09, the file ids below it), FCP wanted.
pub fn select_below(t: &mut dyn Transport, cla: u8, fids: &[u8]) -> Result<Response, CardError> {
    if fids.is_empty() || !fids.len().is_multiple_of(2) || fids.len() > 0xFF {
        return Err(CardError::malformed("PKCS#15 path", format!("{} bytes of file ids", fids.len())));
    }
    send(t, &Command::new(cla, 0xA4, 0x09, 0x04).with_data(fids))
}

/// SELECT an application by AID, no FCP.
pub fn select_aid(t: &mut dyn Transport, cla: u8, aid: &[u8]) -> Result<(), CardError> {
    if aid.is_empty() || aid.len() > 16 {
        return Err(CardError::malformed("AID", format!("{} bytes", aid.len())));
    }
    expect_ok(t, "SELECT application", &Command::new(cla, 0xA4, 0x04, 0x0C).with_data(aid)).map(drop)
}

/// Selects the EF at the absolute `path` and reads all of it.
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
    read_range(t, cla, 0, size)
}

/// Reads `len` bytes from `start` of the current EF, in calls of at most [`MAX_READ`] bytes.
pub fn read_range(t: &mut dyn Transport, cla: u8, start: usize, len: usize) -> Result<Vec<u8>, CardError> {
    if len > MAX_FILE {
        return Err(CardError::malformed("FCP", format!("file of {len} bytes")));
    }
    if start + len > 0x8000 {
        return Err(CardError::malformed(
            "PKCS#15 path",
            format!("bytes {start}..{} beyond the largest offset", start + len),
        ));
    }
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let n = (len - out.len()).min(MAX_READ);
        let offset = (start + out.len()) as u16;
        let r = send(t, &Command::new(cla, 0xB0, (offset >> 8) as u8, offset as u8).with_le(n as u8))?;
        if !r.sw.is_ok() {
            return Err(CardError::status("READ BINARY", r.sw));
        }
        if r.data.is_empty() || r.data.len() > n {
            return Err(CardError::malformed(
                "READ BINARY",
                format!("asked {n} bytes, got {}", r.data.len()),
            ));
        }
        out.extend_from_slice(&r.data);
    }
    Ok(out)
}

/// READ BINARY by short file identifier (no SELECT), `len` bytes from offset 0.
pub fn read_sfi(t: &mut dyn Transport, cla: u8, sfi: u8, len: u8) -> Result<Response, CardError> {
    send(t, &Command::new(cla, 0xB0, 0x80 | (sfi & 0x1F), 0).with_le(len))
}

/// The whole EF with short file identifier `sfi`, of a size not known beforehand: `None` when the card
/// has no file with that SFI (or refuses reading by SFI), so that the caller can select it by path.
pub fn read_sfi_file(t: &mut dyn Transport, cla: u8, sfi: u8) -> Result<Option<Vec<u8>>, CardError> {
    // Le 00: up to 256 bytes; a T=0 card answers 6Cxx with the size and the transport asks again.
    let first = read_sfi(t, cla, sfi, 0)?;
    let mut out = match first.sw.0 {
        0x9000 | 0x6282 => first.data,
        _ => return Ok(None),
    };
    if first.sw.0 == 0x6282 || out.is_empty() {
        return Ok(Some(out));
    }
    // The file is now the current EF: go on by offset until the card says it has no more.
    while out.len() < MAX_FILE {
        let offset = out.len() as u16;
        let r = send(t, &Command::new(cla, 0xB0, (offset >> 8) as u8, offset as u8).with_le(0))?;
        match r.sw.0 {
            0x9000 | 0x6282 if !r.data.is_empty() => {
                out.extend_from_slice(&r.data);
                if r.sw.0 == 0x6282 {
                    break;
                }
            }
            // Offset past the end (6B00), or nothing more (6282 without data): the file is complete.
            0x6B00 | 0x6282 | 0x9000 => break,
            _ => return Err(CardError::status("READ BINARY", r.sw)),
        }
    }
    Ok(Some(out))
}
