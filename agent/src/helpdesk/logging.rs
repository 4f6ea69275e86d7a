//! Log files: JSON lines, one file a day, the last 7 kept, in the OS log folder (Linux
//! `$XDG_STATE_HOME/cpx-agent/logs`, macOS `~/Library/Logs/Agent CPx`, Windows
//! `%LOCALAPPDATA%\Agent CPx\logs`; `CPX_AGENT_LOG_DIR` overrides). Level from the configuration's
//! `log_level`, overridden by `CPX_AGENT_LOG`. Never a secret: the code porteur has no Debug output,
//! APDUs are logged by header and status only, and nothing of what the card signs is written.
//!
//! The logs name the holder and the sites used: on Unix the folder is created 0700 and every log file
//! 0600 (owner only) — each day's file is created with that mode before the appender opens it, and files
//! left by older versions are set to it at start.

use std::io::Write;
use std::path::{Path, PathBuf};

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
        std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".local/state"))
            .join("cpx-agent/logs")
    }
}

pub const FILE_PREFIX: &str = "cpx-agent.log";

/// Starts writing log files; keep the guard alive as long as the process logs.
pub fn init(config_level: Option<&str>) -> Result<tracing_appender::non_blocking::WorkerGuard, String> {
    let level = std::env::var("CPX_AGENT_LOG")
        .ok()
        .or_else(|| config_level.map(str::to_owned))
        .unwrap_or_else(|| "info".into());
    let filter = tracing_subscriber::EnvFilter::try_new(format!(
        "warn,cpx_agent={level},cpx_pcsc={level},cpx_card={level},cpx_tray={level}"
    ))
    .map_err(|e| format!("log level {level:?}: {e}"))?;
    let appender = PrivateFiles::open(&log_dir())?;
    let (writer, guard) = tracing_appender::non_blocking(appender);
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .try_init()
        .map_err(|e| e.to_string())?;
    Ok(guard)
}

/// The daily rolling appender, with each day's file created owner-only before the appender opens it.
pub struct PrivateFiles {
    inner: tracing_appender::rolling::RollingFileAppender,
    dir: PathBuf,
    /// The UTC day (days since 1970) whose file exists with the right mode.
    day: i64,
}

/// The appender's file for a UTC day: `cpx-agent.log.YYYY-MM-DD` (tracing-appender's daily naming).
fn file_for_day(dir: &Path, day: i64) -> PathBuf {
    let date =
        time::OffsetDateTime::from_unix_timestamp(day * 86_400).map(|t| t.date()).unwrap_or(time::Date::MIN);
    dir.join(format!("{FILE_PREFIX}.{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day()))
}

fn today() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp().div_euclid(86_400)
}

/// Creates `path` (if absent) readable and writable by its owner only, and sets an existing one so.
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let file = options.open(path)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    options.open(path)?;
    Ok(())
}

impl PrivateFiles {
    /// The appender writing in `dir` (created 0700 if absent), today's file created 0600, older log
    /// files set to 0600.
    pub fn open(dir: &Path) -> Result<Self, String> {
        let at = |e: std::io::Error| format!("{}: {e}", dir.display());
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        // The appender prunes old files at start: the folder must exist by then.
        builder.create(dir).map_err(at)?;
        for entry in std::fs::read_dir(dir).map_err(at)?.flatten() {
            if entry.file_name().to_string_lossy().starts_with(FILE_PREFIX)
                && entry.file_type().is_ok_and(|t| t.is_file())
            {
                create_private(&entry.path()).map_err(at)?;
            }
        }
        let day = today();
        create_private(&file_for_day(dir, day)).map_err(at)?;
        let inner = tracing_appender::rolling::Builder::new()
            .rotation(tracing_appender::rolling::Rotation::DAILY)
            .filename_prefix(FILE_PREFIX)
            .max_log_files(7)
            .build(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(Self { inner, dir: dir.to_path_buf(), day })
    }
}

impl Write for PrivateFiles {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // A new day: its file is made owner-only before the appender rolls over to it.
        let day = today();
        if day != self.day {
            create_private(&file_for_day(&self.dir, day))?;
            self.day = day;
        }
        self.inner.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The last `n` lines of the newest log files.
pub fn recent_lines(n: usize) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(log_dir())
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.file_name().is_some_and(|f| f.to_string_lossy().starts_with(FILE_PREFIX)))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut lines: Vec<String> = files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f).unwrap_or_default().lines().map(str::to_owned).collect::<Vec<_>>()
        })
        .collect();
    let skip = lines.len().saturating_sub(n);
    lines.drain(..skip);
    lines
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn log_files_and_their_folder_are_owner_only() {
        let dir = std::env::temp_dir().join(format!("cpx-logs-{}", std::process::id())).join("logs");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // A file left by an older version, world-readable.
        let old = dir.join(format!("{FILE_PREFIX}.2020-01-01"));
        std::fs::write(&old, "{}\n").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
        let fresh = dir.join("sub");
        let mut w = PrivateFiles::open(&fresh).unwrap();
        w.write_all(b"{\"message\":\"hello\"}\n").unwrap();
        w.flush().unwrap();
        assert_eq!(mode(&fresh), 0o700, "a folder the agent creates");
        let today = file_for_day(&fresh, today());
        assert!(
            std::fs::read_to_string(&today).unwrap().contains("hello"),
            "the appender writes in the file made for today"
        );
        assert_eq!(mode(&today), 0o600);
        // A new day (seen as the day before having passed): its file is made owner-only before the write.
        std::fs::remove_file(&today).unwrap();
        w.day -= 1;
        w.write_all(b"{}\n").unwrap();
        assert_eq!(mode(&today), 0o600);
        drop(w);
        PrivateFiles::open(&dir).unwrap();
        assert_eq!(mode(&old), 0o600, "older files are set to 0600 at start");
        let _ = std::fs::remove_dir_all(dir.parent().unwrap());
    }
}
