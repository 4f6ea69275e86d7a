//! Writes the card-side seeds of the fuzz targets (fuzz/corpus/card_*, docs/fuzzing.md) from every
//! persona: its ATR, the FCP of every file, EF.SN.ICC, the PKCS#15 files and the certificates. Ignored:
//! run it after changing the simulator's files, and commit the result:
//!
//!   cargo test -p cpx-sim --test fuzz_seeds -- --ignored

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use cpx_sim::fs::Body;
use cpx_sim::{Options, PERSONAS};

fn corpus(target: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Which target a file of the card feeds, by its file id.
fn target_of(fid: u16, content: &[u8]) -> &'static str {
    match fid {
        0x2F00 | 0x5031 | 0x7002 | 0x7003 | 0x7004 => "card_pkcs15",
        0xD003 => "card_efsn",
        _ if content.starts_with(&[0x30, 0x82]) && content.len() > 256 => "card_identity",
        _ => "card_tlv",
    }
}

#[test]
#[ignore = "writes fuzz/corpus: run by hand"]
fn write_fuzz_seeds() {
    let mut seen = HashSet::new();
    let mut write = |target: &str, name: String, bytes: &[u8]| {
        if !bytes.is_empty() && seen.insert((target.to_owned(), bytes.to_vec())) {
            std::fs::write(corpus(target).join(name), bytes).unwrap();
        }
    };
    for persona in PERSONAS {
        let card = persona.card(&Options::default());
        write("card_atr", format!("{}-atr", persona.name), &card.spec.atr);
        for (id, node) in card.spec.fs.nodes.iter().enumerate() {
            write("card_tlv", format!("{}-{:04X}-fcp", persona.name, node.fid), &card.spec.fs.fcp(id));
            if let Body::Ef { content, .. } = &node.body {
                write(target_of(node.fid, content), format!("{}-{:04X}", persona.name, node.fid), content);
            }
        }
    }
}
