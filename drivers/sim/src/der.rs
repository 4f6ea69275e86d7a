//! A small DER writer for the PKCS#15 and FCP structures the virtual card serves.

/// One TLV: `tag` (one or more bytes) and `content`, with a definite DER length.
pub fn tlv(tag: &[u8], content: &[u8]) -> Vec<u8> {
    let mut out = tag.to_vec();
    let n = content.len();
    match n {
        0..=0x7F => out.push(n as u8),
        0x80..=0xFF => out.extend_from_slice(&[0x81, n as u8]),
        _ => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(content);
    out
}

/// SEQUENCE of already encoded parts.
pub fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(&[0x30], &parts.concat())
}

/// Context-specific constructed `[n]` of already encoded parts.
pub fn ctx(n: u8, parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(&[0xA0 | n], &parts.concat())
}

/// OCTET STRING.
pub fn octets(bytes: &[u8]) -> Vec<u8> {
    tlv(&[0x04], bytes)
}

/// UTF8String.
pub fn utf8(s: &str) -> Vec<u8> {
    tlv(&[0x0C], s.as_bytes())
}

/// INTEGER, in the fewest bytes (a leading 00 when the high bit is set).
pub fn integer(v: u32) -> Vec<u8> {
    let mut bytes: Vec<u8> = v.to_be_bytes().iter().copied().skip_while(|b| *b == 0).collect();
    if bytes.first().is_none_or(|b| b & 0x80 != 0) {
        bytes.insert(0, 0);
    }
    tlv(&[0x02], &bytes)
}

/// ENUMERATED (one byte).
pub fn enumerated(v: u8) -> Vec<u8> {
    tlv(&[0x0A], &[v])
}

/// A BIT STRING holding the named bits (bit 0 is the most significant bit of the first byte), DER-minimal.
pub fn bits(set: &[u8]) -> Vec<u8> {
    let Some(&max) = set.iter().max() else { return tlv(&[0x03], &[0]) };
    let len = max as usize / 8 + 1;
    let mut bytes = vec![0u8; len];
    for &b in set {
        bytes[b as usize / 8] |= 0x80 >> (b % 8);
    }
    let unused = 7 - (max % 8);
    let mut content = vec![unused];
    content.extend(bytes);
    tlv(&[0x03], &content)
}

/// A PKCS#15 Path holding the file path `p` (absolute from 3F00, or a file id relative to the current DF).
pub fn path(p: &[u8]) -> Vec<u8> {
    seq(&[octets(p)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_bits() {
        assert_eq!(tlv(&[4], &[1; 3]), [4, 3, 1, 1, 1]);
        assert_eq!(&tlv(&[4], &[0; 200])[..3], &[4, 0x81, 200]);
        assert_eq!(&tlv(&[4], &[0; 300])[..4], &[4, 0x82, 1, 44]);
        assert_eq!(integer(0x82), [2, 2, 0, 0x82]);
        assert_eq!(integer(2048), [2, 2, 8, 0]);
        assert_eq!(bits(&[1, 2]), [3, 2, 5, 0x60]);
        assert_eq!(bits(&[9]), [3, 3, 6, 0, 0x40]);
    }
}
