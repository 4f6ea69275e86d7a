//! The tray icons, drawn in code: a card (light body, dark outline, gold chip: readable on dark and on
//! light panels) with a round badge whose colour and glyph tell the state, so that two states never
//! differ by colour alone. Drawn at any size with anti-aliasing (signed distances), RGBA.

use cpx_agent::card::Overall;

#[derive(Clone, Copy)]
enum Glyph {
    Check,
    Cross,
    Bang,
    Question,
    Dots,
    Minus,
}

const GREEN: [f32; 3] = [0.12, 0.56, 0.24];
const GREY: [f32; 3] = [0.42, 0.44, 0.47];
const ORANGE: [f32; 3] = [0.85, 0.45, 0.0];
const RED: [f32; 3] = [0.75, 0.11, 0.11];

fn badge(state: Overall) -> ([f32; 3], Glyph) {
    match state {
        Overall::Ready => (GREEN, Glyph::Check),
        Overall::NoCard => (GREY, Glyph::Minus),
        Overall::NoReader => (GREY, Glyph::Cross),
        Overall::ServiceStopped => (GREY, Glyph::Bang),
        Overall::NotRecognised => (ORANGE, Glyph::Question),
        Overall::InUse => (ORANGE, Glyph::Dots),
        Overall::PinBlocked => (RED, Glyph::Cross),
        Overall::CertificateExpired => (RED, Glyph::Bang),
        // A CPx card recognised but unusable: orange like « not recognised », with « ! » (not « ? »).
        Overall::Unusable(_) => (ORANGE, Glyph::Bang),
    }
}

/// Distance from `p` to the segment `a`–`b`.
fn segment(p: (f32, f32), a: (f32, f32), b: (f32, f32)) -> f32 {
    let (pa, ba) = ((p.0 - a.0, p.1 - a.1), (b.0 - a.0, b.1 - a.1));
    let h = ((pa.0 * ba.0 + pa.1 * ba.1) / (ba.0 * ba.0 + ba.1 * ba.1)).clamp(0.0, 1.0);
    ((pa.0 - ba.0 * h).powi(2) + (pa.1 - ba.1 * h).powi(2)).sqrt()
}

/// Signed distance to a rounded rectangle centred on `c` with half sizes `h` and corner radius `r`.
fn rounded_rect(p: (f32, f32), c: (f32, f32), h: (f32, f32), r: f32) -> f32 {
    let q = ((p.0 - c.0).abs() - h.0 + r, (p.1 - c.1).abs() - h.1 + r);
    (q.0.max(0.0).powi(2) + q.1.max(0.0).powi(2)).sqrt() + q.0.max(q.1).min(0.0) - r
}

fn circle(p: (f32, f32), c: (f32, f32), r: f32) -> f32 {
    ((p.0 - c.0).powi(2) + (p.1 - c.1).powi(2)).sqrt() - r
}

/// Distance to the glyph's strokes, in a unit badge centred on 0 with radius 1.
fn glyph_distance(glyph: Glyph, p: (f32, f32)) -> f32 {
    match glyph {
        Glyph::Check => segment(p, (-0.5, 0.0), (-0.12, 0.4)).min(segment(p, (-0.12, 0.4), (0.5, -0.38))),
        Glyph::Cross => {
            segment(p, (-0.42, -0.42), (0.42, 0.42)).min(segment(p, (-0.42, 0.42), (0.42, -0.42)))
        }
        Glyph::Minus => segment(p, (-0.5, 0.0), (0.5, 0.0)),
        Glyph::Bang => segment(p, (0.0, -0.55), (0.0, 0.12)).min(circle(p, (0.0, 0.5), 0.0)),
        Glyph::Question => {
            // An arc over the top, a short stem, a dot.
            let ring = (circle(p, (0.0, -0.22), 0.3)).abs();
            let arc = if p.1 < -0.1 || p.0 > 0.0 { ring } else { f32::MAX };
            arc.min(segment(p, (0.05, 0.07), (0.0, 0.22))).min(circle(p, (0.0, 0.55), 0.0))
        }
        Glyph::Dots => {
            [-0.45f32, 0.0, 0.45].iter().map(|x| circle(p, (*x, 0.0), 0.0)).fold(f32::MAX, f32::min)
        }
    }
}

/// Coverage (0–1) of a shape at signed distance `d`, with a one-pixel soft edge.
fn cover(d: f32, px: f32) -> f32 {
    (0.5 - d / px).clamp(0.0, 1.0)
}

/// Paints `colour` at `alpha` over the pixel.
fn over(dst: &mut [f32; 4], colour: [f32; 3], alpha: f32) {
    let out_a = alpha + dst[3] * (1.0 - alpha);
    if out_a > 0.0 {
        for i in 0..3 {
            dst[i] = (colour[i] * alpha + dst[i] * dst[3] * (1.0 - alpha)) / out_a;
        }
    }
    dst[3] = out_a;
}

/// The icon of `state`, `size`×`size` RGBA.
pub fn draw(state: Overall, size: u32) -> Vec<u8> {
    let (badge_colour, glyph) = badge(state);
    let s = size as f32;
    let px = 1.0 / s; // one pixel in unit coordinates
    let mut out = Vec::with_capacity((size * size * 4) as usize);
    for y in 0..size {
        for x in 0..size {
            let p = ((x as f32 + 0.5) / s, (y as f32 + 0.5) / s);
            let mut c = [0.0f32; 4];
            // The card, landscape, towards the top left; dark outline then light body.
            let card = rounded_rect(p, (0.43, 0.40), (0.41, 0.28), 0.08);
            over(&mut c, [0.13, 0.15, 0.18], cover(card, px));
            over(&mut c, [0.96, 0.97, 0.98], cover(card + 0.07, px));
            over(&mut c, [0.85, 0.68, 0.20], cover(rounded_rect(p, (0.24, 0.38), (0.10, 0.08), 0.025), px));
            // The badge, bottom right, with a dark ring so it stands out on any panel.
            let (bc, br) = ((0.70, 0.70), 0.29);
            over(&mut c, [0.13, 0.15, 0.18], cover(circle(p, bc, br), px));
            over(&mut c, badge_colour, cover(circle(p, bc, br - 0.05), px));
            let g = ((p.0 - bc.0) / (br - 0.05), (p.1 - bc.1) / (br - 0.05));
            let stroke = 0.17;
            over(&mut c, [1.0, 1.0, 1.0], cover((glyph_distance(glyph, g) - stroke) * (br - 0.05), px));
            out.extend(c.iter().map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8));
        }
    }
    out
}

/// A PNG of the icon (for the app icon files and the screenshots in the tests).
pub fn png(state: Overall, size: u32) -> Vec<u8> {
    let rgba = draw(state, size);
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, size, size);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        if let Ok(mut writer) = encoder.write_header() {
            let _ = writer.write_image_data(&rgba);
        }
    }
    out
}

/// The app icon files of the bundle (`icons/`), all drawn here: `cpx-tray --write-icons src-tauri/icons`
/// writes them, a test checks the committed ones. The .ico (Windows: the .exe's resource, the installer)
/// and the .icns (macOS bundle) hold PNG images at the sizes each OS picks from.
pub const APP_ICON_FILES: &[&str] = &["32x32.png", "128x128.png", "icon.png", "icon.ico", "icon.icns"];

/// The sizes of the Windows icon: shell lists, taskbar, Alt+Tab, large tiles.
const ICO_SIZES: &[u32] = &[16, 24, 32, 48, 64, 256];

/// The macOS icon's entries: type and size (`icp4`…`ic09` at 1x, `ic11`…`ic14` at 2x).
const ICNS_ENTRIES: &[(&[u8; 4], u32)] = &[
    (b"icp4", 16),
    (b"icp5", 32),
    (b"icp6", 64),
    (b"ic07", 128),
    (b"ic08", 256),
    (b"ic09", 512),
    (b"ic11", 32),
    (b"ic12", 64),
    (b"ic13", 256),
    (b"ic14", 512),
];

/// The content of the app icon file `name` (one of [`APP_ICON_FILES`]).
pub fn app_icon(name: &str) -> Option<Vec<u8>> {
    let ready = Overall::Ready;
    match name {
        "32x32.png" => Some(png(ready, 32)),
        "128x128.png" => Some(png(ready, 128)),
        "icon.png" => Some(png(ready, 256)),
        "icon.ico" => Some(ico(&ICO_SIZES.iter().map(|s| (*s, png(ready, *s))).collect::<Vec<_>>())),
        "icon.icns" => {
            Some(icns(&ICNS_ENTRIES.iter().map(|(kind, s)| (**kind, png(ready, *s))).collect::<Vec<_>>()))
        }
        _ => None,
    }
}

/// A Windows .ico of PNG images (read by Windows Vista and later): a 6-byte header, a 16-byte entry per
/// image (width and height 0 meaning 256, 32 bits per pixel), then the images.
fn ico(images: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(0u16.to_le_bytes());
    out.extend(1u16.to_le_bytes()); // an icon
    out.extend((images.len() as u16).to_le_bytes());
    let mut offset = 6 + 16 * images.len() as u32;
    for (size, data) in images {
        let side = if *size >= 256 { 0 } else { *size as u8 };
        out.extend([side, side, 0, 0]);
        out.extend(1u16.to_le_bytes()); // colour planes
        out.extend(32u16.to_le_bytes()); // bits per pixel
        out.extend((data.len() as u32).to_le_bytes());
        out.extend(offset.to_le_bytes());
        offset += data.len() as u32;
    }
    for (_, data) in images {
        out.extend(data);
    }
    out
}

/// A macOS .icns: `icns` and the total length, then per image its type, its length (header included)
/// and the PNG; lengths big-endian.
fn icns(images: &[([u8; 4], Vec<u8>)]) -> Vec<u8> {
    let total = 8 + images.iter().map(|(_, d)| 8 + d.len()).sum::<usize>();
    let mut out = Vec::with_capacity(total);
    out.extend(b"icns");
    out.extend((total as u32).to_be_bytes());
    for (kind, data) in images {
        out.extend(kind);
        out.extend(((8 + data.len()) as u32).to_be_bytes());
        out.extend(data);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn luminance(rgb: [f32; 3]) -> f32 {
        0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]
    }

    /// The icon over a plain panel of luminance `bg`.
    fn on(icon: &[u8], bg: f32) -> Vec<f32> {
        icon.chunks(4)
            .map(|p| {
                let a = p[3] as f32 / 255.0;
                let l = luminance([p[0] as f32 / 255.0, p[1] as f32 / 255.0, p[2] as f32 / 255.0]);
                l * a + bg * (1.0 - a)
            })
            .collect()
    }

    #[test]
    fn every_state_has_its_own_icon_even_at_16_px() {
        let icons: Vec<_> = Overall::ALL.iter().map(|s| draw(*s, 16)).collect();
        // For people to look at: every state at 16 and 64 px.
        let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-out/tray-icons");
        let _ = std::fs::create_dir_all(&out);
        for state in Overall::ALL {
            for size in [16, 64] {
                let _ = std::fs::write(out.join(format!("{state:?}-{size}.png")), png(state, size));
            }
        }
        for (i, a) in icons.iter().enumerate() {
            for (j, b) in icons.iter().enumerate().skip(i + 1) {
                let differing = a
                    .chunks(4)
                    .zip(b.chunks(4))
                    .filter(|(p, q)| p.iter().zip(q.iter()).any(|(x, y)| x.abs_diff(*y) > 60))
                    .count();
                assert!(
                    differing >= 6,
                    "{:?} and {:?} differ in {differing} pixels only",
                    Overall::ALL[i],
                    Overall::ALL[j]
                );
            }
        }
    }

    #[test]
    fn readable_on_dark_and_light_panels() {
        for state in Overall::ALL {
            let icon = draw(state, 16);
            for bg in [0.05, 0.95] {
                let seen = on(&icon, bg);
                let contrasting = seen.iter().filter(|l| (**l - bg).abs() > 0.4).count();
                assert!(
                    contrasting >= 40,
                    "{state:?} on a panel of luminance {bg}: {contrasting} contrasting pixels"
                );
            }
        }
    }

    #[test]
    fn the_committed_app_icons_are_the_drawn_ones() {
        // `cargo run -p cpx-tray -- --write-icons src-tauri/icons` writes them.
        for name in APP_ICON_FILES {
            let committed =
                std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("icons").join(name))
                    .unwrap();
            assert!(
                Some(committed) == app_icon(name),
                "icons/{name} is stale: run cpx-tray --write-icons src-tauri/icons"
            );
        }
    }

    #[test]
    fn the_ico_and_icns_index_their_images() {
        let ico_file = app_icon("icon.ico").unwrap();
        let u16_at = |i: usize| u16::from_le_bytes([ico_file[i], ico_file[i + 1]]);
        let u32_at = |i: usize| {
            u32::from_le_bytes([ico_file[i], ico_file[i + 1], ico_file[i + 2], ico_file[i + 3]]) as usize
        };
        assert_eq!((u16_at(0), u16_at(2), u16_at(4) as usize), (0, 1, ICO_SIZES.len()));
        for (i, size) in ICO_SIZES.iter().enumerate() {
            let entry = 6 + 16 * i;
            assert_eq!(ico_file[entry] as u32, size % 256, "width of entry {i}");
            let (len, at) = (u32_at(entry + 8), u32_at(entry + 12));
            assert_eq!(
                &ico_file[at..at + len],
                png(Overall::Ready, *size).as_slice(),
                "the {size} px image is where its entry says"
            );
        }
        let icns_file = app_icon("icon.icns").unwrap();
        let be = |i: usize| {
            u32::from_be_bytes([icns_file[i], icns_file[i + 1], icns_file[i + 2], icns_file[i + 3]]) as usize
        };
        assert_eq!((&icns_file[..4], be(4)), (&b"icns"[..], icns_file.len()));
        let (mut at, mut kinds) = (8, Vec::new());
        while at < icns_file.len() {
            kinds.push(icns_file[at..at + 4].to_vec());
            assert_eq!(&icns_file[at + 8..at + 16], b"\x89PNG\r\n\x1a\n", "each entry is a PNG");
            at += be(at + 4);
        }
        assert_eq!(at, icns_file.len(), "the entries' lengths add up to the file");
        assert_eq!(kinds, ICNS_ENTRIES.iter().map(|(k, _)| k.to_vec()).collect::<Vec<_>>());
    }
}
