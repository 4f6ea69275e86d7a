// Agent CPx — client for portal pages (ES module, no framework).
//
//   import { agentStatus, cardLogin, messageFor } from "/static/cpx-agent.js";
//   const status = await agentStatus();          // readers and card state, in the agent's French wording
//   const { next } = await cardLogin();          // challenge → agent (code porteur, mTLS) → finish
//
// On a shared computer the usual address answers with the port of this user's own agent (`agent_port`,
// docs/multi-user.md); the functions here follow it.
//
// Errors are CpxError objects with a stable `code` (the agent's codes, plus the page's own below),
// `triesLeft` when the code porteur was wrong, and `messageFor(error)` gives the French text to show.
//
// When the agent cannot be reached, the page says why (`diagnoseUnreachable`):
//   LOCAL_NETWORK_BLOCKED  the browser's Local Network Access permission is « denied » for this site
//                          (Chrome/Edge ≥ 142 ask before a public site may call 127.0.0.1; headless or
//                          refused, the call fails). The installers' browser policies let managed sites
//                          through (docs/deploiement.md, section 6).
//   LOOPBACK_NOT_TRUSTED   the HTTPS call failed but the agent answers plain HTTP on the same port (loopback
//                          HTTP is not mixed content): it runs, and the browser refuses its certificate.
//   AGENT_UNREACHABLE      neither: the agent is not installed or not running.

export const DEFAULT_AGENT = "https://127.0.0.1:47413";

export class CpxError extends Error {
  constructor(code, message, details = {}) {
    super(message || code);
    this.code = code;
    this.triesLeft = details.tries_left;
    this.retriable = details.retriable;
    this.fix = details.fix;
  }
}

// The page's own French texts, by stable code: what happened, then what to do. The codes that the agent's
// catalogue also has (agent/src/messages.rs) carry the same words; a test there keeps them equal. Every
// code this file can show has an entry on the helpdesk page (docs/helpdesk.md), with these very words: a
// test of agent/src/helpdesk/page.rs fails otherwise.
const MESSAGES = {
  AGENT_UNREACHABLE: {
    message: "L'Agent CPx ne répond pas sur cet ordinateur",
    fix: "Vérifiez que l'Agent CPx est installé et démarré, puis rechargez la page. Si le navigateur demande d'autoriser ce site à accéder aux appareils et applications de cet ordinateur, choisissez « Autoriser ».",
  },
  LOCAL_NETWORK_BLOCKED: {
    message: "Le navigateur empêche ce site de joindre l'Agent CPx sur cet ordinateur (accès au réseau local refusé)",
    fix: "Cliquez sur l'icône à gauche de l'adresse du site, autorisez l'accès aux appareils et applications de cet ordinateur (réseau local), puis rechargez la page. Le service informatique peut l'autoriser pour tous les postes (stratégies de navigateur de l'Agent CPx).",
  },
  LOOPBACK_NOT_TRUSTED: {
    message: "Le certificat local de l'Agent CPx n'est pas approuvé par les navigateurs",
    fix: "Réinstallez l'Agent CPx (l'installation l'approuve) ou demandez au service informatique de l'ajouter aux certificats approuvés des navigateurs.",
  },
  PORTAL_REFUSED: { message: "Le portail a refusé la connexion par carte.", fix: "Contactez le support du portail en donnant l'heure de l'essai." },
  CHALLENGE_REPLAYED: { message: "Cette tentative de connexion a déjà servi.", fix: "Recommencez la connexion." },
  CHALLENGE_EXPIRED: { message: "La tentative de connexion a expiré.", fix: "Recommencez la connexion." },
  CHALLENGE_UNKNOWN: { message: "Tentative de connexion inconnue.", fix: "Rechargez la page et recommencez." },
  ORIGIN_MISMATCH: { message: "Connexion refusée : elle a été demandée depuis un autre site.", fix: "Ouvrez le portail à son adresse habituelle (pas par un lien reçu) et recommencez." },
  CERTIFICATE_REFUSED: { message: "Le certificat de votre carte n'est pas accepté par ce portail.", fix: "Vérifiez dans l'Agent CPx (menu « État de la carte ») que votre carte est valide, puis contactez le support du portail." },
  NETWORK: { message: "Le portail ne répond pas.", fix: "Vérifiez votre connexion réseau, puis rechargez la page." },
};

function pageError(code) {
  const m = MESSAGES[code];
  return new CpxError(code, m.message, { fix: m.fix || undefined, retriable: code === "AGENT_UNREACHABLE" });
}

/** The French message to show for an error thrown by this module. */
export function messageFor(error) {
  if (!(error instanceof CpxError)) return messageFor(pageError("NETWORK"));
  const known = MESSAGES[error.code];
  let text = error.message || (known && known.message) || error.code;
  if (error.code === "PIN_WRONG" && typeof error.triesLeft === "number") {
    text += error.triesLeft === 1 ? " — il reste 1 essai avant blocage de la carte." : ` — il reste ${error.triesLeft} essais.`;
  }
  if (error.fix) text += (/[.!?…]$/.test(text) ? " " : ". ") + error.fix;
  return text;
}

// The Local Network Access permission: its name in Chrome/Edge ≥ 145, then in 142–144.
const LOCAL_NETWORK_PERMISSIONS = ["loopback-network", "local-network-access"];

/** The state of this site's permission to reach the computer's own services, or null where unknown. */
export async function localNetworkPermission() {
  if (!navigator.permissions || !navigator.permissions.query) return null;
  for (const name of LOCAL_NETWORK_PERMISSIONS) {
    try {
      return (await navigator.permissions.query({ name })).state;
    } catch (e) {
      // Not a permission this browser knows.
    }
  }
  return null;
}

/** The agent's plain-HTTP answer on its own port (it names the problem: LOOPBACK_NOT_TRUSTED), or null. */
async function plainHint(agent) {
  const url = new URL(agent);
  if (url.protocol !== "https:") return null;
  url.protocol = "http:";
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 5000);
  try {
    const r = await fetch(url.origin + "/v1/status", { mode: "cors", credentials: "omit", headers: { "Accept-Language": "fr" }, signal: controller.signal });
    const body = await r.json().catch(() => ({}));
    return (body && body.error) || { code: "LOOPBACK_NOT_TRUSTED" };
  } catch (e) {
    return null;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Why `agent` could not be reached, as a CpxError: the browser's Local Network Access permission refused
 * (LOCAL_NETWORK_BLOCKED), the agent running but its certificate not trusted (LOOPBACK_NOT_TRUSTED, from
 * the agent's plain-HTTP answer), or no agent (AGENT_UNREACHABLE). A permission still « prompt » after a
 * failure says nothing: pages that the browser does not gate (same address space) see it too.
 */
export async function diagnoseUnreachable(agent = DEFAULT_AGENT) {
  if ((await localNetworkPermission()) === "denied") return pageError("LOCAL_NETWORK_BLOCKED");
  const hint = await plainHint(agent);
  if (hint) {
    const m = MESSAGES[hint.code] || MESSAGES.LOOPBACK_NOT_TRUSTED;
    return new CpxError(hint.code || "LOOPBACK_NOT_TRUSTED", hint.message || m.message, { fix: hint.fix || m.fix, retriable: false });
  }
  // The probe itself may have met the permission (a prompt refused just now).
  if ((await localNetworkPermission()) === "denied") return pageError("LOCAL_NETWORK_BLOCKED");
  return pageError("AGENT_UNREACHABLE");
}

async function agentFetch(agent, path, options = {}, timeoutMs = 120000) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    return await fetch(agent + path, { ...options, mode: "cors", credentials: "omit", signal: controller.signal });
  } catch (e) {
    if (e && e.name === "AbortError") throw pageError("AGENT_UNREACHABLE");
    throw await diagnoseUnreachable(agent);
  } finally {
    clearTimeout(timer);
  }
}

function fromAgentError(body) {
  const e = (body && body.error) || {};
  return new CpxError(e.code || "AGENT_ERROR", e.message, e);
}

async function fetchStatus(agent) {
  const r = await agentFetch(agent, "/v1/status", { headers: { "Accept-Language": "fr" } }, 5000);
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw fromAgentError(body);
  return body;
}

const userAgents = new Map();

/**
 * The agent of this browser's user. On a computer with one user, the usual address is the agent itself.
 * On a shared computer (terminal server) it is a broker that answers `agent_port`, the port of the
 * user's own agent (each agent serves only its own user): the page then talks to that port.
 */
export async function userAgent(agent = DEFAULT_AGENT) {
  if (userAgents.has(agent)) return userAgents.get(agent);
  const body = await fetchStatus(agent);
  let url = agent;
  if (Number.isInteger(body.agent_port)) {
    const u = new URL(agent);
    u.port = String(body.agent_port);
    url = u.origin;
  }
  userAgents.set(agent, url);
  return url;
}

/** Agent version, readers and card state (holder for allowed sites). */
export async function agentStatus({ agent = DEFAULT_AGENT } = {}) {
  const body = await fetchStatus(agent);
  if (!Number.isInteger(body.agent_port)) return body;
  return fetchStatus(await userAgent(agent));
}

/**
 * Who holds the card of a reader of `agentStatus()`, never empty: the person (« JEAN DUPONT »), or for a
 * non-nominative card its structure, else its identifiant national; "" when no card is known.
 */
export function holderName(reader) {
  const h = (reader && reader.holder) || {};
  const person = [h.prenom, h.nom].filter(Boolean).join(" ").trim();
  return person || h.display || (h.structure && h.structure.name) || h.national_id || "";
}

/** « carte CPE », « carte CPS »… from a reader of `agentStatus()`; « carte CPx » when the type is unknown. */
export function cardName(reader) {
  const kind = reader && reader.card_kind;
  return "carte " + (kind && kind !== "CPX" ? kind : "CPx");
}

/** A portal's refusal: its own words, else the table's. */
function portalError(e) {
  const m = MESSAGES[e.code] || MESSAGES.PORTAL_REFUSED;
  return new CpxError(e.code || "PORTAL_REFUSED", e.message || m.message, { ...e, fix: e.fix || (e.message ? undefined : m.fix || undefined) });
}

async function postPortal(url, payload) {
  let r;
  try {
    r = await fetch(url, { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" }, body: JSON.stringify(payload) });
  } catch (e) {
    throw pageError("NETWORK");
  }
  const body = await r.json().catch(() => ({}));
  if (!r.ok) {
    const e = body.error || {};
    throw portalError(e);
  }
  return body;
}

/** The user's agent, or `agent` itself when it cannot be asked (the POST then says what is wrong). */
async function userAgentOr(agent) {
  try {
    return await userAgent(agent);
  } catch (e) {
    return agent;
  }
}

/** POSTs the challenge to the agent; its JSON answer, or its typed error thrown. */
async function postAgent(agent, path, challenge) {
  const r = await agentFetch(agent, path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "Accept-Language": "fr" },
    body: JSON.stringify({ challenge }),
  });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw fromAgentError(body);
  return body;
}

/**
 * The whole card login: a challenge from the portal (bound to this browser session), the agent asks for
 * the code porteur and authenticates to the portal's mTLS endpoint, then the one-time code is redeemed
 * here, in the session that asked. Returns the portal's `{ next }`.
 */
export async function cardLogin({ agent = DEFAULT_AGENT, challengeUrl = "/cpx/challenge", finishUrl = "/cpx/finish" } = {}) {
  const { challenge } = await postPortal(challengeUrl, {});
  const body = await postAgent(await userAgentOr(agent), "/v1/authenticate", challenge);
  const portal = body.portal || {};
  if (body.portal_status !== 200 || !portal.code) {
    throw portalError(portal.error || {});
  }
  return postPortal(finishUrl, { code: portal.code });
}

/**
 * Signed-token login, for portals that cannot terminate mTLS: the card signs SHA-256(origin) ‖
 * SHA-256(challenge) and this page posts the token to its own server (`tokenUrl`).
 */
export async function tokenLogin({ agent = DEFAULT_AGENT, challengeUrl = "/cpx/challenge", tokenUrl = "/cpx/token" } = {}) {
  const { challenge } = await postPortal(challengeUrl, {});
  const token = await postAgent(await userAgentOr(agent), "/v1/token", challenge);
  return postPortal(tokenUrl, { challenge, token });
}
