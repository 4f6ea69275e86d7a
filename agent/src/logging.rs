//! Log files: JSON lines, one file a day, the last 7 kept, in the OS log folder (Linux
//! `$XDG_STATE_HOME/cpx-agent/logs`, macOS `~/Library/Logs/Agent CPx`, Windows
//! `%LOCALAPPDATA%\Agent CPx\logs`; `CPX_AGENT_LOG_DIR` overrides). Level from the configuration's
//! `log_level`, overridden by `CPX_AGENT_LOG`. Never a secret: the code porteur has no Debug output,
//! APDUs are logged by header and status only, and nothing of what the card signs is written.

use std::path::PathBuf;

pub fn log_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CPX_AGENT_LOG_DIR") {
        return d.into();
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| ".".into());
    if cfg!(target_os = "macos") {
        home.join("Library/Logs/Agent CPx")
    } else if cfg!(windows) {
        std::env::var_os("LOCALAPPDATA").map(PathBuf::from).unwrap_or(home).join("Agent CPx").join("logs")
    } else {
        std::env::var_os("XDG_STATE_HOME").map(PathBuf::from).unwrap_or_else(|| home.join(".local/state")).join("cpx-agent/logs")
    }
}

pub const FILE_PREFIX: &str = "cpx-agent.log";

/// Starts writing log files; keep the guard alive as long as the process logs.
pub fn init(config_level: Option<&str>) -> Result<tracing_appender::non_blocking::WorkerGuard, String> {
    let level = std::env::var("CPX_AGENT_LOG").ok().or_else(|| config_level.map(str::to_owned)).unwrap_or_else(|| "info".into());
    let filter = tracing_subscriber::EnvFilter::try_new(format!("warn,cpx_agent={level},cpx_pcsc={level},cpx_card={level},cpx_tray={level}")).map_err(|e| format!("log level {level:?}: {e}"))?;
    // The appender prunes old files at start: the folder must exist by then.
    let _ = std::fs::create_dir_all(log_dir());
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix(FILE_PREFIX)
        .max_log_files(7)
        .build(log_dir())
        .map_err(|e| format!("{}: {e}", log_dir().display()))?;
    let (writer, guard) = tracing_appender::non_blocking(appender);
    tracing_subscriber::fmt().json().with_env_filter(filter).with_writer(writer).with_ansi(false).try_init().map_err(|e| e.to_string())?;
    Ok(guard)
}

/// The last `n` lines of the newest log files.
pub fn recent_lines(n: usize) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(log_dir())
        .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.file_name().is_some_and(|f| f.to_string_lossy().starts_with(FILE_PREFIX))).collect())
        .unwrap_or_default();
    files.sort();
    let mut lines: Vec<String> = files.iter().flat_map(|f| std::fs::read_to_string(f).unwrap_or_default().lines().map(str::to_owned).collect::<Vec<_>>()).collect();
    let skip = lines.len().saturating_sub(n);
    lines.drain(..skip);
    lines
}
