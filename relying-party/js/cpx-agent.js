// Agent CPx — client for portal pages (ES module, no framework).
//
//   import { agentStatus, cardLogin, messageFor } from "/static/cpx-agent.js";
//   const status = await agentStatus();          // readers and card state, in the agent's French wording
//   const { next } = await cardLogin();          // challenge → agent (code porteur, mTLS) → finish
//
// On a shared computer the usual address answers with the port of this user's own agent (`agent_port`,
// docs/multi-user.md); the functions here follow it.
//
// Errors are CpxError objects with a stable `code` (the agent's codes, plus AGENT_UNREACHABLE and the
// portal's own), `triesLeft` when the code porteur was wrong, and `messageFor(error)` gives the French
// text to show.

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

const LOCAL_MESSAGES = {
  AGENT_UNREACHABLE: "L'Agent CPx ne répond pas : vérifiez qu'il est installé et démarré, puis rechargez la page.",
  PORTAL_REFUSED: "Le portail a refusé la connexion par carte.",
  CHALLENGE_REPLAYED: "Cette tentative de connexion a déjà servi : recommencez.",
  CHALLENGE_EXPIRED: "La tentative de connexion a expiré : recommencez.",
  CHALLENGE_UNKNOWN: "Tentative de connexion inconnue : rechargez la page et recommencez.",
  ORIGIN_MISMATCH: "Connexion refusée : elle a été demandée depuis un autre site.",
  CERTIFICATE_REFUSED: "Le certificat de votre carte n'est pas accepté par ce portail.",
  NETWORK: "Le portail ne répond pas : vérifiez votre connexion.",
};

/** The French message to show for an error thrown by this module. */
export function messageFor(error) {
  if (!(error instanceof CpxError)) return LOCAL_MESSAGES.NETWORK;
  let text = error.message || LOCAL_MESSAGES[error.code] || error.code;
  if (error.code === "PIN_WRONG" && typeof error.triesLeft === "number") {
    text += error.triesLeft === 1 ? " — il reste 1 essai avant blocage de la carte." : ` — il reste ${error.triesLeft} essais.`;
  }
  if (error.fix) text += (/[.!?…]$/.test(text) ? " " : ". ") + error.fix;
  return text;
}

async function agentFetch(agent, path, options = {}, timeoutMs = 120000) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    return await fetch(agent + path, { ...options, mode: "cors", credentials: "omit", signal: controller.signal });
  } catch (e) {
    throw new CpxError("AGENT_UNREACHABLE", LOCAL_MESSAGES.AGENT_UNREACHABLE);
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

async function postPortal(url, payload) {
  let r;
  try {
    r = await fetch(url, { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" }, body: JSON.stringify(payload) });
  } catch (e) {
    throw new CpxError("NETWORK", LOCAL_MESSAGES.NETWORK);
  }
  const body = await r.json().catch(() => ({}));
  if (!r.ok) {
    const e = body.error || {};
    throw new CpxError(e.code || "PORTAL_REFUSED", e.message || LOCAL_MESSAGES[e.code] || LOCAL_MESSAGES.PORTAL_REFUSED, e);
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
    const e = portal.error || {};
    throw new CpxError(e.code || "PORTAL_REFUSED", e.message || LOCAL_MESSAGES[e.code] || LOCAL_MESSAGES.PORTAL_REFUSED, e);
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
