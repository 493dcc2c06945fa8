"use strict";
// Operator sign-in. Locally (data-auth="none") there is none. In AWS (data-auth="cognito") the page signs
// in at the Cognito hosted UI with the authorization code flow + PKCE (RFC 7636): no client secret exists,
// the tokens stay in this tab's sessionStorage and the ID token goes to the operator routes as a Bearer.
const Auth = (() => {
  const settings = document.body.dataset;
  const mode = settings.auth || "none";
  const TOKENS = "ee.tokens";
  const VERIFIER = "ee.pkce.verifier";
  const STATE = "ee.pkce.state";

  const redirectUri = () => location.origin + location.pathname;
  const b64url = (buffer) =>
    btoa(String.fromCharCode(...new Uint8Array(buffer))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const random = (bytes) => {
    const values = new Uint8Array(bytes);
    crypto.getRandomValues(values);
    return b64url(values);
  };
  const challenge = async (verifier) =>
    b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));

  function saved() {
    try {
      return JSON.parse(sessionStorage.getItem(TOKENS) || "null");
    } catch {
      return null;
    }
  }

  function keep(answer, previous) {
    const tokens = {
      id_token: answer.id_token,
      refresh_token: answer.refresh_token || (previous && previous.refresh_token) || null,
      expires_at: Date.now() + (Number(answer.expires_in) || 3600) * 1000,
    };
    sessionStorage.setItem(TOKENS, JSON.stringify(tokens));
    return tokens;
  }

  async function tokenRequest(fields) {
    const answer = await fetch(`${settings.authUrl}/oauth2/token`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ client_id: settings.clientId, ...fields }),
    });
    if (!answer.ok) throw new Error(`sign-in refused (${answer.status})`);
    return answer.json();
  }

  async function signIn() {
    const verifier = random(48);
    const state = random(16);
    sessionStorage.setItem(VERIFIER, verifier);
    sessionStorage.setItem(STATE, state);
    const query = new URLSearchParams({
      response_type: "code",
      client_id: settings.clientId,
      redirect_uri: redirectUri(),
      scope: "openid email",
      state,
      code_challenge: await challenge(verifier),
      code_challenge_method: "S256",
    });
    location.assign(`${settings.authUrl}/oauth2/authorize?${query}`);
  }

  // Completes a redirect back from the hosted UI (?code=&state=); true when signed in afterwards.
  async function ready() {
    if (mode === "none") return true;
    const query = new URLSearchParams(location.search);
    if (query.has("code")) {
      const expected = sessionStorage.getItem(STATE);
      const verifier = sessionStorage.getItem(VERIFIER) || "";
      sessionStorage.removeItem(STATE);
      sessionStorage.removeItem(VERIFIER);
      history.replaceState(null, "", redirectUri());
      if (!expected || query.get("state") !== expected) throw new Error("sign-in answer did not match this tab");
      keep(await tokenRequest({
        grant_type: "authorization_code",
        code: query.get("code"),
        redirect_uri: redirectUri(),
        code_verifier: verifier,
      }));
    }
    return Boolean(await token());
  }

  async function token() {
    const tokens = saved();
    if (!tokens) return null;
    if (tokens.expires_at > Date.now() + 60000) return tokens.id_token;
    if (!tokens.refresh_token) return null;
    try {
      return keep(await tokenRequest({ grant_type: "refresh_token", refresh_token: tokens.refresh_token }), tokens)
        .id_token;
    } catch {
      sessionStorage.removeItem(TOKENS);
      return null;
    }
  }

  async function headers() {
    if (mode === "none") return {};
    const id = await token();
    return id ? { Authorization: `Bearer ${id}` } : {};
  }

  function signOut() {
    sessionStorage.removeItem(TOKENS);
    const query = new URLSearchParams({ client_id: settings.clientId, logout_uri: redirectUri() });
    location.assign(`${settings.authUrl}/logout?${query}`);
  }

  return { mode, ready, headers, signIn, signOut };
})();
