//! Windows: the scheduled task that keeps the browsers' rules in step with the machine policy after the
//! install. A GPO or Intune changes `HKLM\Software\Policies\Agent CPx` at any time; the browsers' Local
//! Network Access policies follow only when `cpx-agent browser-policies apply` runs again as
//! LocalSystem. The MSI registers this task (`browser-policies schedule`) and removes it at uninstall
//! (`unschedule`). It runs `apply` at boot, after each Group Policy refresh that brought new computer
//! settings (event 1502 of `Microsoft-Windows-GroupPolicy/Operational`), and every hour for the channels
//! that raise no event (Intune's ADMX-backed policies, a script writing the key). Linux has the
//! `agent-cpx-policy.path` unit for the same job; on macOS the configuration profile carries the rules.

use std::path::{Path, PathBuf};

/// The task's path in the Task Scheduler library.
pub const TASK_NAME: &str = r"Agent CPx\Browser policies";

/// What can go wrong when the task is registered or removed.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// A file (the task's definition, the system folder, the program) could not be used.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `schtasks.exe` refused.
    #[error("schtasks.exe {action} \"{TASK_NAME}\" failed ({status}): {output}; is the Task Scheduler service (Schedule) running?")]
    Schtasks {
        /// `/Create` or `/Delete`.
        action: &'static str,
        /// Its exit status.
        status: String,
        /// What it printed.
        output: String,
    },
    /// Not Windows.
    #[error("the scheduled task is Windows' (on Linux the agent-cpx-policy.path unit of the package rewrites the rules, on macOS the configuration profile carries them)")]
    Unsupported,
}

/// The task's definition (Task Scheduler schema 1.2): `exe browser-policies apply` as LocalSystem at
/// boot, after a Group Policy refresh with new computer settings, and every hour.
pub fn task_xml(exe: &Path) -> String {
    let exe = escape(&exe.display().to_string());
    let query = escape(
        "<QueryList><Query Id=\"0\" Path=\"Microsoft-Windows-GroupPolicy/Operational\">\
         <Select Path=\"Microsoft-Windows-GroupPolicy/Operational\">*[System[(EventID=1502)]]</Select>\
         </Query></QueryList>",
    );
    format!(
        r#"<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo>
    <Author>Agent CPx</Author>
    <Description>Rewrites the browsers' Local Network Access policies from the Agent CPx machine policy (cpx-agent browser-policies apply) after a policy change.</Description>
    <URI>\{TASK_NAME}</URI>
  </RegistrationInfo>
  <Triggers>
    <BootTrigger><Enabled>true</Enabled></BootTrigger>
    <EventTrigger><Enabled>true</Enabled><Subscription>{query}</Subscription></EventTrigger>
    <TimeTrigger>
      <StartBoundary>2024-01-01T00:00:00</StartBoundary>
      <Repetition><Interval>PT1H</Interval><StopAtDurationEnd>false</StopAtDurationEnd></Repetition>
      <Enabled>true</Enabled>
    </TimeTrigger>
  </Triggers>
  <Principals>
    <Principal id="System"><UserId>S-1-5-18</UserId><RunLevel>HighestAvailable</RunLevel></Principal>
  </Principals>
  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <StartWhenAvailable>true</StartWhenAvailable>
    <ExecutionTimeLimit>PT5M</ExecutionTimeLimit>
  </Settings>
  <Actions Context="System">
    <Exec><Command>{exe}</Command><Arguments>browser-policies apply</Arguments></Exec>
  </Actions>
</Task>
"#
    )
}

/// The file `schtasks /XML` reads: UTF-16 little-endian with its byte-order mark.
pub fn utf16_file(xml: &str) -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(xml.encode_utf16().flat_map(u16::to_le_bytes));
    bytes
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Registers (or replaces) the task for this `cpx-agent.exe`. Windows, as an administrator.
#[cfg(windows)]
pub fn schedule() -> Result<(), TaskError> {
    let exe =
        std::env::current_exe().map_err(|source| TaskError::Io { path: "cpx-agent.exe".into(), source })?;
    let file = std::env::temp_dir().join(format!("agent-cpx-task-{}.xml", std::process::id()));
    std::fs::write(&file, utf16_file(&task_xml(&exe)))
        .map_err(|source| TaskError::Io { path: file.clone(), source })?;
    let result = schtasks("/Create", &["/Create", "/F", "/TN", TASK_NAME, "/XML"], Some(&file));
    let _ = std::fs::remove_file(&file);
    result
}

/// Removes the task.
#[cfg(windows)]
pub fn unschedule() -> Result<(), TaskError> {
    schtasks("/Delete", &["/Delete", "/F", "/TN", TASK_NAME], None)
}

#[cfg(windows)]
fn schtasks(action: &'static str, args: &[&str], file: Option<&Path>) -> Result<(), TaskError> {
    let program = super::known_folders::system()
        .map_err(|source| TaskError::Io { path: "System32".into(), source })?
        .join("schtasks.exe");
    let out = std::process::Command::new(&program)
        .args(args)
        .args(file)
        .output()
        .map_err(|source| TaskError::Io { path: program, source })?;
    if out.status.success() {
        return Ok(());
    }
    let output =
        String::from_utf8_lossy(&out.stderr).trim().to_owned() + String::from_utf8_lossy(&out.stdout).trim();
    Err(TaskError::Schtasks { action, status: out.status.to_string(), output })
}

/// Not Windows: [`TaskError::Unsupported`].
#[cfg(not(windows))]
pub fn schedule() -> Result<(), TaskError> {
    Err(TaskError::Unsupported)
}

/// Not Windows: [`TaskError::Unsupported`].
#[cfg(not(windows))]
pub fn unschedule() -> Result<(), TaskError> {
    Err(TaskError::Unsupported)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_task_runs_apply_with_this_exe_as_local_system() {
        let xml = task_xml(Path::new(r"D:\Logiciels & Co\Agent CPx\cpx-agent.exe"));
        assert!(xml.contains(r"<Command>D:\Logiciels &amp; Co\Agent CPx\cpx-agent.exe</Command>"), "{xml}");
        assert!(xml.contains("<Arguments>browser-policies apply</Arguments>"));
        assert!(xml.contains("<UserId>S-1-5-18</UserId>"), "LocalSystem: it writes HKLM");
        assert!(xml.contains(r"<URI>\Agent CPx\Browser policies</URI>"));
    }

    #[test]
    fn the_task_runs_at_boot_after_a_gpo_refresh_and_hourly() {
        let xml = task_xml(Path::new(r"C:\Program Files\Agent CPx\cpx-agent.exe"));
        assert!(xml.contains("<BootTrigger>"));
        // The event query is XML inside XML: escaped once, so the Task Scheduler reads it back whole.
        assert!(xml.contains(
            "&lt;Select Path=&quot;Microsoft-Windows-GroupPolicy/Operational&quot;&gt;*[System[(EventID=1502)]]&lt;/Select&gt;"
        ), "{xml}");
        assert!(xml.contains("<Interval>PT1H</Interval>"));
        assert!(!xml.contains("<Select"), "the query must not be XML of the task itself");
    }

    #[test]
    fn the_file_is_utf16_with_its_mark() {
        let bytes = utf16_file("<é/>");
        assert_eq!(&bytes[..2], &[0xFF, 0xFE]);
        assert_eq!(&bytes[2..], &[b'<', 0, 0xE9, 0, b'/', 0, b'>', 0]);
    }

    #[cfg(not(windows))]
    #[test]
    fn elsewhere_it_says_what_does_the_job() {
        let e = schedule().unwrap_err().to_string();
        assert!(e.contains("agent-cpx-policy.path") && e.contains("profile"), "{e}");
    }
}
