//! Tauri's build step, with a permission per app command so that each window's capability
//! (`capabilities/<window>.json`) grants only the commands its page needs.

const COMMANDS: &[&str] = &[
    "labels",
    "dialog_view",
    "pin_submit",
    "consent_answer",
    "choice_answer",
    "dialog_close",
    "status_view",
    "sites_view",
    "sites_remove",
    "about_view",
    "diagnostics_run",
    "diagnostics_copy",
    "pin_life_codes",
    "pin_life_confirm",
    "pin_life_start",
];

fn main() {
    tauri_build::try_build(
        tauri_build::Attributes::new().app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)),
    )
    .expect("tauri build step");
}
