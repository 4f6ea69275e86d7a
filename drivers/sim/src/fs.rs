//! The card's file system: an arena of DFs and transparent EFs, and the FCPs a real IAS-ECC card returns.

use crate::der::tlv;

/// Who may read an EF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadAccess {
    /// Readable at any time.
    Always,
    /// Only over the contact interface (the CPS3's 3F00/0001/7001 test of Cryptolib).
    ContactOnly,
    /// Never readable (a file whose content only the card uses).
    Never,
}

/// What a node is: a DF or a transparent EF.
#[derive(Clone, Debug)]
pub enum Body {
    /// A dedicated file, selectable by AID when it has one.
    Df {
        /// The AID it is selected by, if any.
        aid: Option<Vec<u8>>,
    },
    /// A transparent elementary file: its bytes, its short file identifier, who may read it.
    Ef {
        /// The file's bytes.
        content: Vec<u8>,
        /// Short file identifier (READ BINARY with P1 = 80 | SFI).
        sfi: Option<u8>,
        /// Who may read it.
        read: ReadAccess,
    },
}

/// One file of the tree.
#[derive(Clone, Debug)]
pub struct Node {
    /// File identifier.
    pub fid: u16,
    /// Index of the parent DF (None for the MF).
    pub parent: Option<usize>,
    /// DF or EF.
    pub body: Body,
}

/// The file tree; node 0 is the MF (3F00).
#[derive(Clone, Debug)]
pub struct FileSystem {
    /// Every file; a file's index is its handle.
    pub nodes: Vec<Node>,
}

/// Handle of the MF.
pub const MF: usize = 0;

impl FileSystem {
    /// A tree with only the MF (with an AID when given).
    pub fn new(mf_aid: Option<Vec<u8>>) -> Self {
        Self { nodes: vec![Node { fid: 0x3F00, parent: None, body: Body::Df { aid: mf_aid } }] }
    }

    /// Adds a DF under `parent`; returns its handle.
    pub fn add_df(&mut self, parent: usize, fid: u16, aid: Option<Vec<u8>>) -> usize {
        self.nodes.push(Node { fid, parent: Some(parent), body: Body::Df { aid } });
        self.nodes.len() - 1
    }

    /// Adds an always-readable EF with no SFI under `parent`; returns its handle.
    pub fn add_ef(&mut self, parent: usize, fid: u16, content: Vec<u8>) -> usize {
        self.add_ef_with(parent, fid, content, None, ReadAccess::Always)
    }

    /// Adds an EF with its SFI and read access under `parent`; returns its handle.
    pub fn add_ef_with(
        &mut self,
        parent: usize,
        fid: u16,
        content: Vec<u8>,
        sfi: Option<u8>,
        read: ReadAccess,
    ) -> usize {
        self.nodes.push(Node { fid, parent: Some(parent), body: Body::Ef { content, sfi, read } });
        self.nodes.len() - 1
    }

    /// The node is a DF.
    pub fn is_df(&self, id: usize) -> bool {
        matches!(self.nodes[id].body, Body::Df { .. })
    }

    /// The DF a node is in (itself for a DF).
    pub fn df_of(&self, id: usize) -> usize {
        if self.is_df(id) {
            id
        } else {
            self.nodes[id].parent.unwrap_or(MF)
        }
    }

    /// The file `fid` directly under `df`.
    pub fn child(&self, df: usize, fid: u16) -> Option<usize> {
        self.nodes.iter().position(|n| n.parent == Some(df) && n.fid == fid)
    }

    /// The DF with this AID.
    pub fn by_aid(&self, aid: &[u8]) -> Option<usize> {
        self.nodes.iter().position(|n| matches!(&n.body, Body::Df { aid: Some(a) } if a == aid))
    }

    /// The EF of `df` with this short file identifier.
    pub fn by_sfi(&self, df: usize, sfi: u8) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.parent == Some(df) && matches!(n.body, Body::Ef { sfi: Some(s), .. } if s == sfi))
    }

    /// Follows a path of FIDs from `start`; a leading 3F00 restarts at the MF, a leading 3FFF (ISO 7816-4:
    /// the current DF) stays at `start`.
    pub fn walk(&self, start: usize, path: &[u8]) -> Option<usize> {
        if path.is_empty() || !path.len().is_multiple_of(2) {
            return None;
        }
        let mut at = start;
        for (i, pair) in path.chunks(2).enumerate() {
            let fid = u16::from_be_bytes([pair[0], pair[1]]);
            at = if i == 0 && fid == 0x3F00 {
                MF
            } else if i == 0 && fid == 0x3FFF && self.is_df(at) {
                at
            } else if self.is_df(at) {
                self.child(at, fid)?
            } else {
                return None;
            };
        }
        Some(at)
    }

    /// True when `id` is `ancestor` or lies below it.
    pub fn is_under(&self, mut id: usize, ancestor: usize) -> bool {
        loop {
            if id == ancestor {
                return true;
            }
            match self.nodes[id].parent {
                Some(p) => id = p,
                None => return false,
            }
        }
    }

    /// The FCP template (tag 62) a SELECT with P2=04 returns, with the compact ACL (tag 8C) that
    /// OpenSC's iasecc driver insists on (docs/simulator.md).
    pub fn fcp(&self, id: usize) -> Vec<u8> {
        let n = &self.nodes[id];
        let mut body = Vec::new();
        match &n.body {
            Body::Ef { content, read, sfi } => {
                body.extend(tlv(&[0x80], &(content.len() as u16).to_be_bytes()));
                body.extend(tlv(&[0x82], &[0x01]));
                body.extend(tlv(&[0x83], &n.fid.to_be_bytes()));
                // Short file identifier in bits 8-4, as the real CPS3 FCPs show (EF.SN.ICC: 88 01 E0).
                if let Some(sfi) = sfi {
                    body.extend(tlv(&[0x88], &[sfi << 3]));
                }
                body.extend(tlv(&[0x8A], &[0x05]));
                let read_scb = if *read == ReadAccess::Always { 0x00 } else { 0xFF };
                body.extend(tlv(&[0x8C], &[0x7B, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, read_scb]));
            }
            Body::Df { aid } => {
                body.extend(tlv(&[0x82], &[0x38]));
                body.extend(tlv(&[0x83], &n.fid.to_be_bytes()));
                if let Some(aid) = aid {
                    body.extend(tlv(&[0x84], aid));
                }
                body.extend(tlv(&[0x8A], &[0x05]));
                body.extend(tlv(&[0x8C], &[0x6B, 0xFF, 0xFF, 0xFF, 0xFF, 0x00]));
            }
        }
        tlv(&[0x62], &body)
    }
}
