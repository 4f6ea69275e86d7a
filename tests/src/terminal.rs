//! A program on a real terminal: a tmux session on a tmux server of its own (`-L`), so that no other test's
//! session shares its server (a shared server exits with its last session, taking along the session a
//! parallel test opens at that moment; the default server may be another test run's, in another PC/SC
//! stack's namespaces). What the terminal shows is read back; keys are typed into it.

use std::process::Command;
use std::time::Duration;

/// A tmux session running a shell command, killed (with its server) on drop.
pub struct Terminal {
    session: String,
}

impl Terminal {
    /// Runs `command` (a shell command line) in a `columns`×`rows` terminal; `name` tells sessions apart.
    pub fn start(name: &str, command: &str, columns: u16, rows: u16) -> Self {
        let session = format!("cpx-{name}-{}", std::process::id());
        let t = Self { session };
        let (x, y) = (columns.to_string(), rows.to_string());
        t.tmux(&["new-session", "-d", "-s", &t.session, "-x", &x, "-y", &y, command]);
        t
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.session])
            .args(args)
            .output()
            .expect("tmux (apt-get install tmux)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// What the terminal shows now.
    pub fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", &self.session])
    }

    /// Waits until the terminal shows `text`, and returns the screen.
    pub fn wait_for(&self, text: &str) -> String {
        let mut last = String::new();
        let found = crate::try_poll(Duration::from_secs(20), || {
            last = self.screen();
            last.contains(text).then(|| last.clone())
        });
        found.unwrap_or_else(|| panic!("« {text} » not on the terminal:\n{last}"))
    }

    /// Types `keys` then Enter.
    pub fn type_line(&self, keys: &str) {
        self.tmux(&["send-keys", "-t", &self.session, keys, "Enter"]);
    }

    /// Waits for the prompt `label`, then types `keys` and Enter; returns the screen it waited for.
    pub fn answer(&self, label: &str, keys: &str) -> String {
        let screen = self.wait_for(label);
        self.type_line(keys);
        screen
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        self.tmux(&["kill-server"]);
    }
}
