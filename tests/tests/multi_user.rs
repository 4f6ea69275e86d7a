//! Two users of one computer (a terminal server), each with a card and an agent of their own, and the
//! machine-wide broker on the usual port. Each user's page (curl run as that user, with the portal's
//! Origin) asks the broker where its agent is, logs in there as its own holder (mTLS accepted by nginx),
//! and is refused with OTHER_USER by the other user's agent, which asks no PIN. The users (alice, bob)
//! are created with useradd in a private /etc of the isolated namespace; setpriv runs the agents and
//! the pages as them.

use std::path::Path;
use std::process::{Child, Stdio};

use base64::Engine;
use cpx_tests::agent::{server_pki, AgentProcess, Nginx, PortalProcess};
use cpx_tests::browser::Browser;
use cpx_tests::{binary, insert, out_dir, stack};
use serde_json::{json, Value};

const ORIGIN: &str = "https://portal.test";
/// The tests of this file run one at a time: every agent sees every card of the shared pcscd.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
const ALICE: u32 = 2001;
const BOB: u32 = 2002;
const USER_PORTS: (u16, u16) = (47800, 47899);

fn challenge() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// A request as a page of `uid`'s browser makes it (curl run as that user, with the site's Origin).
fn page_as(uid: u32, ca: &Path, method: &str, port: u16, path: &str, body: Option<&str>) -> (u16, Value) {
    let mut c = std::process::Command::new("setpriv");
    c.args([
        "--reuid",
        &uid.to_string(),
        "--regid",
        &uid.to_string(),
        "--clear-groups",
        "curl",
        "-sS",
        "--max-time",
        "60",
        "--cacert",
    ])
    .arg(ca)
    .args(["-X", method, "-H", &format!("Origin: {ORIGIN}"), "-w", "\n%{http_code}"]);
    if let Some(b) = body {
        c.args(["-H", "Content-Type: application/json", "--data-binary", b]);
    }
    let out = c.arg(format!("https://127.0.0.1:{port}{path}")).output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text
        .rsplit_once('\n')
        .unwrap_or_else(|| panic!("curl: {text} {}", String::from_utf8_lossy(&out.stderr)));
    let status = status
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("curl: {text} {}", String::from_utf8_lossy(&out.stderr)));
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

struct Broker {
    child: Child,
    port: u16,
    ca: std::path::PathBuf,
}

impl Broker {
    fn start(dir: &Path) -> Self {
        use std::io::BufRead;
        std::fs::create_dir_all(dir).unwrap();
        let port = cpx_tests::agent::free_port();
        let mut child = binary("cpx-agent")
            .args([
                "broker",
                "--port",
                &port.to_string(),
                "--user-ports",
                &format!("{}-{}", USER_PORTS.0, USER_PORTS.1),
                "--data-dir",
            ])
            .arg(dir.join("data"))
            .env("CPX_AGENT_LOG_DIR", dir.join("logs"))
            .env("CPX_AGENT_LOG", "debug")
            .stdout(Stdio::piped())
            .spawn()
            .expect("cpx-agent broker");
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut first).unwrap();
        assert!(first.contains(&format!("https://127.0.0.1:{port}")), "broker did not start: {first:?}");
        Self { child, port, ca: dir.join("data/local-ca.pem") }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn assert_other_user(answer: (u16, Value), what: &str) {
    let (status, v) = answer;
    assert_eq!((status, v["error"]["code"].as_str()), (403, Some("OTHER_USER")), "{what}: {v}");
    assert!(v["error"]["message"].as_str().is_some_and(|m| m.contains("autre utilisateur")), "{v}");
}

/// Creates the two users with useradd, in a private copy of /etc: the test binary runs in the mount
/// namespace of `stack.sh isolated` (the stack's marker proves it), so the machine's /etc is untouched.
fn create_users(dir: &Path) {
    assert!(Path::new("/run/pcscd/.cpx-test-stack").exists(), "only inside stack.sh isolated");
    let etc = dir.join("etc");
    let run = |cmd: &mut std::process::Command| {
        let out = cmd.output().expect("command");
        assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(std::process::Command::new("cp").arg("-a").arg("/etc/.").arg(&etc));
    run(std::process::Command::new("mount").arg("--bind").arg(&etc).arg("/etc"));
    for (name, uid) in [("alice", ALICE), ("bob", BOB)] {
        run(std::process::Command::new("useradd").args([
            "--no-create-home",
            "--user-group",
            "--uid",
            &uid.to_string(),
            name,
        ]));
        let id = std::process::Command::new("id").args(["-u", name]).output().expect("id");
        assert_eq!(String::from_utf8_lossy(&id.stdout).trim(), uid.to_string());
    }
}

#[test]
fn each_user_logs_in_with_its_own_agent_and_is_refused_by_the_others() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let stack = stack();
    let dir = out_dir("multi-user");
    create_users(&dir);
    let pki = server_pki(&dir.join("pki"));
    let nginx = Nginx::start(&dir.join("nginx"), &pki);
    let broker = Broker::start(&dir.join("broker"));
    let config = format!(
        "user_ports = [{}, {}]\n[[site]]\norigin = \"{ORIGIN}\"\nmtls_endpoint = \"https://127.0.0.1:{}/cpx/login\"\nserver_roots = \"{}\"\n",
        USER_PORTS.0,
        USER_PORTS.1,
        nginx.port,
        pki.ca_pem.display()
    );
    let alice = AgentProcess::start_as(&dir.join("alice"), &config, None, &[], Some(ALICE));
    let bob = AgentProcess::start_as(&dir.join("bob"), &config, None, &[], Some(BOB));
    assert_ne!(alice.port, bob.port);
    for agent in [&alice, &bob] {
        assert!((USER_PORTS.0..=USER_PORTS.1).contains(&agent.port), "{}", agent.port);
    }
    // The local CA's certificate, where the other account can read it: the agent's data folder is its
    // user's only (0700), the certificate public.
    let ca = |agent: &AgentProcess| {
        let public = agent.dir.with_extension("local-ca.pem");
        std::fs::copy(agent.dir.join("data/local-ca.pem"), &public).expect("local CA");
        std::fs::set_permissions(&public, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        public
    };

    // Each page asks the broker, on the usual port, where its user's agent is.
    for (uid, agent) in [(ALICE, &alice), (BOB, &bob)] {
        let (status, v) = page_as(uid, &broker.ca, "GET", broker.port, "/v1/status", None);
        assert_eq!((status, v["agent_port"].as_u64()), (200, Some(u64::from(agent.port))), "user {uid}: {v}");
        // A login sent to the broker is pointed at the user's agent.
        let (status, v) = page_as(
            uid,
            &broker.ca,
            "POST",
            broker.port,
            "/v1/authenticate",
            Some(&json!({"challenge": challenge()}).to_string()),
        );
        assert_eq!(
            (status, v["error"]["code"].as_str(), v["error"]["agent_port"].as_u64()),
            (421, Some("USE_USER_AGENT"), Some(u64::from(agent.port))),
            "{v}"
        );
    }
    // A user without an agent is told so.
    let (status, v) = page_as(2003, &broker.ca, "GET", broker.port, "/v1/status", None);
    assert_eq!((status, v["error"]["code"].as_str()), (503, Some("USER_AGENT_NOT_RUNNING")), "{v}");

    let reader = stack.reader();
    {
        let _card = insert("cps3", &reader);
        // Bob's page on Alice's agent: refused, whatever it asks, and Alice is asked nothing.
        alice.answer_pins(&["1234"]);
        assert_other_user(
            page_as(BOB, &ca(&alice), "GET", alice.port, "/v1/status", None),
            "Bob reads Alice's status",
        );
        assert_other_user(
            page_as(
                BOB,
                &ca(&alice),
                "POST",
                alice.port,
                "/v1/authenticate",
                Some(&json!({"challenge": challenge()}).to_string()),
            ),
            "Bob logs in on Alice's agent",
        );
        assert!(
            alice.dialogs().is_empty(),
            "no PIN dialog for another user's request: {:?}",
            alice.dialogs()
        );
        // Alice's own page: her holder, her login.
        let (status, v) = page_as(ALICE, &ca(&alice), "GET", alice.port, "/v1/status", None);
        let holder = v["readers"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["holder"]["national_id"] == "899700123456");
        assert_eq!((status, holder), (200, true), "{v}");
        let (status, v) = page_as(
            ALICE,
            &ca(&alice),
            "POST",
            alice.port,
            "/v1/authenticate",
            Some(&json!({"challenge": challenge()}).to_string()),
        );
        assert_eq!(status, 200, "Alice logs in: {v}");
        let portal = v["portal"]["text"].as_str().map_or_else(|| v["portal"].to_string(), str::to_owned);
        assert!(portal.contains("\"verify\":\"SUCCESS\"") && portal.contains("CN=899700123456"), "{portal}");
        assert_eq!(alice.dialogs().len(), 1);
    }
    {
        let _card = insert("cps4", &reader);
        bob.answer_pins(&["1234"]);
        assert_other_user(
            page_as(
                ALICE,
                &ca(&bob),
                "POST",
                bob.port,
                "/v1/authenticate",
                Some(&json!({"challenge": challenge()}).to_string()),
            ),
            "Alice logs in on Bob's agent",
        );
        assert!(bob.dialogs().is_empty(), "{:?}", bob.dialogs());
        let (status, v) = page_as(
            BOB,
            &ca(&bob),
            "POST",
            bob.port,
            "/v1/authenticate",
            Some(&json!({"challenge": challenge()}).to_string()),
        );
        assert_eq!(status, 200, "Bob logs in: {v}");
        let portal = v["portal"]["text"].as_str().map_or_else(|| v["portal"].to_string(), str::to_owned);
        assert!(portal.contains("\"verify\":\"SUCCESS\"") && portal.contains("CN=899700234567"), "{portal}");
    }
    // root (this test process) is neither of them.
    let r = alice.request_unchecked("GET", "/v1/status", &[("Origin", ORIGIN)], None);
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (403, Some("OTHER_USER")), "{}", r.body);
    assert!(alice.logs().contains("another user of this computer"), "the refusal is logged");
}

/// The page client in a real browser on a shared computer: the portal's login page calls the broker at
/// the usual address, follows `agent_port` to this user's agent and logs in there (Chromium, the demo
/// portal, the broker and an agent in `user_ports` mode, all as this test's user).
#[test]
fn the_page_client_follows_the_broker_to_its_users_agent_in_chromium() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let stack = stack();
    let dir = out_dir("multi-user-browser");
    let pki = server_pki(&dir.join("pki"));
    let broker = Broker::start(&dir.join("broker"));
    let portal = PortalProcess::start_with_agent(&dir.join("portal"), &pki, broker.port);
    let config = format!("user_ports = [{}, {}]\n{}", USER_PORTS.0, USER_PORTS.1, portal.agent_site(&pki));
    let agent = AgentProcess::start_as(&dir.join("agent"), &config, None, &[], None);
    assert_ne!(agent.port, broker.port);
    let browser = Browser::start(
        &dir.join("browser"),
        &[&agent.dir.join("data/local-ca.pem"), &broker.ca, &pki.ca_pem],
    );
    let reader = stack.reader();
    let _card = insert("cps3", &reader);
    browser.goto(&format!("{}/", portal.origin));
    browser.wait_text("#card-state", "Carte CPS insérée et reconnue — JEAN DUPONT");
    agent.answer_pins(&["1234"]);
    browser.click("#card-login");
    browser.wait_path("/premiere-connexion");
    browser.screenshot("01-premiere-connexion-via-le-broker");
    let dialog = agent.dialogs().pop().expect("the user's agent asked the PIN");
    assert!(dialog.contains(&format!("Le site {}", portal.origin)), "{dialog}");
    let broker_log = cpx_tests::log_text(&dir.join("broker/logs"));
    assert!(
        broker_log.contains(&format!("\"agent_port\":\"Some({})\"", agent.port)),
        "the page asked the broker first: {broker_log}"
    );
}
