//! A hospital's way out, for the proxy tests: a network namespace of its own (the « outside », where the
//! demo portal runs) joined to the test stack's namespace by a veth pair, and Debian's Squid as the only
//! way into it — as HTTP proxy with no authentication, with Basic (`basic_ncsa_auth`) or with Negotiate
//! (`negotiate_kerberos_auth`) against a real MIT Kerberos KDC (`krb5kdc`) with its own realm, database
//! and keytab in the test's folder.
//!
//! Addresses: the stack's side of the pair is `10.X.N.1/30`, the outside's `10.X.N.2/30` (X from the test
//! binary's pid, N: one per outside in this test binary); both exist only in the isolated stack's private namespaces. The portal's
//! mTLS endpoint listens on the outside's own loopback, which no process of the stack's namespace can
//! reach; its names (`portal.test`, `cpx.portal.test`) are in Squid's hosts file only.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::agent::{free_port, server_pki, PortalProcess, ServerPki};
use crate::poll;

/// A realm of the test KDC.
pub const REALM: &str = "CPX.TEST";
/// The user with a Kerberos principal, and its password (for `kinit`).
pub const KRB_USER: &str = "jean.dupont";
pub const KRB_PASSWORD: &str = "mot-de-passe-kerberos";
/// The Basic user of the proxy, and its password.
pub const BASIC_USER: &str = "jean";
pub const BASIC_PASSWORD: &str = "mot-de-passe-du-proxy";
/// A name Squid refuses every tunnel to (`403`).
pub const FORBIDDEN_HOST: &str = "interdit.test";
/// The portal's mTLS endpoint's name, in Squid's hosts file only (`portal.test`, its site, too).
pub const MTLS_HOST: &str = "cpx.portal.test";

static NEXT: AtomicU32 = AtomicU32::new(1);

/// Runs `cmd`, failing the test with its output if it fails.
fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Kills the child when its parent (the test binary) dies, whatever happens to the test.
#[allow(unsafe_code)] // libc: prctl between fork and exec
fn die_with_parent(cmd: &mut Command) -> &mut Command {
    // SAFETY: the closure only calls prctl, which is async-signal-safe, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        })
    }
}

/// The « outside »: a network namespace held by a `sleep` process, joined by a veth pair.
pub struct Outside {
    holder: Child,
    /// The stack's side of the pair (the agent's way to the proxy).
    pub inner_ip: String,
    /// The outside's address: where the proxy listens, and the portal's site.
    pub ip: String,
}

impl Outside {
    pub fn new() -> Self {
        assert!(
            Path::new("/run/pcscd/.cpx-test-stack").exists(),
            "the proxy tests build network namespaces: run them inside `tests/stack/stack.sh isolated`"
        );
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let mut holder = Command::new("unshare");
        holder.args(["--net", "sleep", "infinity"]).stdout(Stdio::null());
        let holder = die_with_parent(&mut holder).spawn().expect("unshare --net");
        let pid = holder.id();
        let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
        poll("the outside's network namespace", Duration::from_secs(10), || {
            std::fs::read_link(format!("/proc/{pid}/ns/net")).ok().filter(|ns| *ns != ours).map(|_| ())
        });
        // Names and addresses of this test binary's own (the namespaces of the previous binary in the same
        // stack may not be gone yet): the pid in the names, and in the second byte of the addresses.
        let me = std::process::id();
        let (a, b) = (format!("cx{me}p{n}a"), format!("cx{me}p{n}b"));
        let net = 100 + me % 100;
        let (inner_ip, ip) = (format!("10.{net}.{n}.1"), format!("10.{net}.{n}.2"));
        run(Command::new("ip").args([
            "link",
            "add",
            &a,
            "type",
            "veth",
            "peer",
            "name",
            &b,
            "netns",
            &pid.to_string(),
        ]));
        run(Command::new("ip").args(["addr", "add", &format!("{inner_ip}/30"), "dev", &a]));
        run(Command::new("ip").args(["link", "set", &a, "up"]));
        let outside = Self { holder, inner_ip, ip };
        for args in [
            vec!["ip", "link", "set", "lo", "up"],
            vec!["ip", "addr", "add", &format!("{}/30", outside.ip), "dev", &b],
            vec!["ip", "link", "set", &b, "up"],
        ] {
            run(outside.command(args[0]).args(&args[1..]));
        }
        outside
    }

    /// A command run inside the outside's network namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/proc/{}/ns/net", self.holder.id())).arg("--").arg(program);
        c
    }

    /// The holder's pid (its `/proc/PID/ns/net` is the namespace).
    pub fn pid(&self) -> u32 {
        self.holder.id()
    }
}

impl Default for Outside {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        // The namespace, its veth end (and so the pair) go with the last process in it.
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// How Squid asks for authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyAuth {
    None,
    Basic,
    Negotiate,
}

/// Debian's Squid in the outside, listening on `outside.ip:port`.
pub struct Squid {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
    /// `http://IP:PORT`.
    pub url: String,
}

impl Squid {
    /// Starts Squid with `auth`; `hosts` maps names to addresses of the outside (Squid's own hosts file).
    /// With Negotiate, `kdc` holds the proxy's keytab.
    pub fn start(dir: &Path, outside: &Outside, auth: ProxyAuth, hosts: &str, kdc: Option<&Kdc>) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let port = 3128;
        std::fs::write(dir.join("hosts"), hosts).unwrap();
        let auth_lines = match auth {
            ProxyAuth::None => String::new(),
            ProxyAuth::Basic => {
                let hash = run(Command::new("openssl").args(["passwd", "-1", BASIC_PASSWORD]));
                std::fs::write(dir.join("passwd"), format!("{BASIC_USER}:{}\n", hash.trim())).unwrap();
                format!(
                    "auth_param basic program /usr/lib/squid/basic_ncsa_auth {}\nauth_param basic realm Proxy du CHU de test\nauth_param basic children 2\nacl authenticated proxy_auth REQUIRED\n",
                    dir.join("passwd").display()
                )
            }
            ProxyAuth::Negotiate => {
                let kdc = kdc.expect("a KDC for Negotiate");
                let keytab = dir.join("proxy.keytab");
                kdc.keytab(&format!("HTTP/{}", outside.ip), &keytab);
                format!(
                    "auth_param negotiate program /usr/lib/squid/negotiate_kerberos_auth -k {} -s HTTP/{}@{REALM}\nauth_param negotiate children 2\nauth_param negotiate keep_alive on\nacl authenticated proxy_auth REQUIRED\n",
                    keytab.display(),
                    outside.ip
                )
            }
        };
        let access =
            if auth == ProxyAuth::None { "http_access allow all" } else { "http_access allow authenticated" };
        let config = format!(
            "http_port {ip}:{port}
pid_filename none
cache_log {dir}/cache.log
access_log stdio:{dir}/access.log
cache deny all
cache_mem 8 MB
coredump_dir {dir}
hosts_file {dir}/hosts
dns_nameservers 127.0.0.1
shutdown_lifetime 0 seconds
visible_hostname proxy.test
acl forbidden dstdomain {FORBIDDEN_HOST}
{auth_lines}http_access deny forbidden
{access}
http_access deny all
",
            ip = outside.ip,
            dir = dir.display(),
        );
        std::fs::write(dir.join("squid.conf"), config).unwrap();
        // Squid drops to the `proxy` user: its folder and files are its own.
        run(Command::new("chown").args(["-R", "proxy:proxy"]).arg(dir));
        let mut cmd = outside.command("squid");
        // A service name of its own: Squid names its shared-memory segments after it, and a segment left
        // by a killed Squid under the default name stops the next one (« shm_open … File exists »).
        let service = format!("cpxsquid{}n{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        cmd.args(["-N", "-d", "1", "-n", &service, "-f"]).arg(dir.join("squid.conf"));
        if let Some(kdc) = kdc {
            cmd.env("KRB5_CONFIG", &kdc.config);
        }
        let log = std::fs::File::create(dir.join("squid.out")).unwrap();
        let child = die_with_parent(cmd.stdout(log.try_clone().unwrap()).stderr(log))
            .spawn()
            .expect("squid (apt-get install squid)");
        let squid =
            Self { child, port, dir: dir.to_path_buf(), url: format!("http://{}:{port}", outside.ip) };
        let addr = format!("{}:{port}", outside.ip);
        poll("Squid listening", Duration::from_secs(30), || {
            std::net::TcpStream::connect(&addr).ok().map(|_| ())
        });
        squid
    }

    /// Squid's access log (one line per request: client, result, method, target, user).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default()
    }
}

impl Drop for Squid {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An MIT Kerberos KDC for the realm [`REALM`], its database and configuration in `dir`, listening on
/// the stack's loopback; [`KRB_USER`] has a principal.
pub struct Kdc {
    child: Child,
    pub dir: PathBuf,
    /// The `krb5.conf` clients use (`KRB5_CONFIG`).
    pub config: PathBuf,
}

impl Kdc {
    pub fn start(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let port = free_port();
        let config = dir.join("krb5.conf");
        std::fs::write(
            &config,
            format!(
                "[libdefaults]
  default_realm = {REALM}
  dns_lookup_kdc = false
  dns_lookup_realm = false
  dns_canonicalize_hostname = false
  rdns = false
  udp_preference_limit = 1
[realms]
  {REALM} = {{
    kdc = 127.0.0.1:{port}
  }}
"
            ),
        )
        .unwrap();
        let kdc_conf = dir.join("kdc.conf");
        std::fs::write(
            &kdc_conf,
            format!(
                "[kdcdefaults]
  kdc_ports = {port}
  kdc_tcp_ports = {port}
[realms]
  {REALM} = {{
    database_name = {d}/principal
    key_stash_file = {d}/stash
    acl_file = {d}/kadm5.acl
    supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
  }}
[logging]
  kdc = FILE:{d}/kdc.log
",
                d = dir.display()
            ),
        )
        .unwrap();
        std::fs::write(dir.join("kadm5.acl"), "").unwrap();
        let env = [("KRB5_CONFIG", config.as_os_str()), ("KRB5_KDC_PROFILE", kdc_conf.as_os_str())];
        run(Command::new("kdb5_util").envs(env).args(["create", "-s", "-r", REALM, "-P", "maitre-de-test"]));
        let kdc = |query: &str| {
            run(Command::new("kadmin.local").envs(env).args(["-r", REALM, "-q", query]));
        };
        kdc(&format!("addprinc -pw {KRB_PASSWORD} {KRB_USER}"));
        let mut cmd = Command::new("krb5kdc");
        cmd.envs(env).args(["-n", "-r", REALM]);
        let log = std::fs::File::create(dir.join("krb5kdc.out")).unwrap();
        let child = die_with_parent(cmd.stdout(log.try_clone().unwrap()).stderr(log))
            .spawn()
            .expect("krb5kdc (apt-get install krb5-kdc)");
        poll("the KDC listening", Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok().map(|_| ())
        });
        Self { child, dir: dir.to_path_buf(), config }
    }

    fn env(&self) -> [(&'static str, PathBuf); 2] {
        [("KRB5_CONFIG", self.config.clone()), ("KRB5_KDC_PROFILE", self.dir.join("kdc.conf"))]
    }

    /// A service principal with a random key, written to `keytab` (readable by Squid's `proxy` user).
    pub fn keytab(&self, principal: &str, keytab: &Path) {
        for q in
            [format!("addprinc -randkey {principal}"), format!("ktadd -k {} {principal}", keytab.display())]
        {
            run(Command::new("kadmin.local").envs(self.env()).args(["-r", REALM, "-q", &q]));
        }
    }

    /// `kinit` of [`KRB_USER`] into the credential cache `ccache` (what the session's login gives).
    pub fn kinit(&self, ccache: &Path) {
        let mut child = Command::new("kinit")
            .env("KRB5_CONFIG", &self.config)
            .env("KRB5CCNAME", format!("FILE:{}", ccache.display()))
            .arg(KRB_USER)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kinit (apt-get install krb5-user)");
        use std::io::Write;
        writeln!(child.stdin.take().unwrap(), "{KRB_PASSWORD}").unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "kinit: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Kdc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the proxy tests start: the outside, Squid in it asking for `auth` (with its KDC for Negotiate),
/// and the demo portal behind it, whose login page calls an agent on `agent_port`.
pub struct Hospital {
    pub portal: PortalProcess,
    pub squid: Squid,
    pub pki: ServerPki,
    pub kdc: Option<Kdc>,
    /// Last: the namespace goes when everything in it is stopped.
    pub outside: Outside,
}

impl Hospital {
    pub fn start(dir: &Path, auth: ProxyAuth, agent_port: u16) -> Self {
        let outside = Outside::new();
        let kdc = (auth == ProxyAuth::Negotiate).then(|| Kdc::start(&dir.join("kdc")));
        let hosts = format!("127.0.0.1 {MTLS_HOST} {FORBIDDEN_HOST}\n{} portal.test\n", outside.ip);
        let squid = Squid::start(&dir.join("squid"), &outside, auth, &hosts, kdc.as_ref());
        let pki = server_pki(&dir.join("pki"));
        let portal = PortalProcess::start_outside(&dir.join("portal"), &pki, agent_port, &outside);
        Self { portal, squid, pki, kdc, outside }
    }
}
