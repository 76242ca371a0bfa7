#!/usr/bin/env node
// Local OpenID provider for the oidc-gate end-to-end tests, set up to behave like an
// Okta custom authorization server (issuer https://<org>/oauth2/default, /v1/* endpoints,
// JWT access tokens with aud "api://default", groups claim in the ID token, refresh token
// rotation). Built on oidc-provider 9.x (Koa inside, no other framework).
//
// Usage: node server.js CONFIG.json
//   Prints exactly one line `READY http://127.0.0.1:<port><issuer_path>` on stdout once
//   it listens; everything else goes to stderr. See README.md beside this file for the
//   config keys, the endpoints and the /__test/ admin API.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';

import Provider from 'oidc-provider';

// ---------------------------------------------------------------------------------------
// stdout carries only the READY line: oidc-provider prints its notices with console.info,
// so every console method goes to stderr.
for (const m of ['log', 'info', 'debug', 'warn']) {
  console[m] = (...args) => console.error(...args);
}
const log = (...args) => console.error(`[idp ${new Date().toISOString()}]`, ...args);

process.on('uncaughtException', (err) => log('uncaught exception:', err));
process.on('unhandledRejection', (err) => log('unhandled rejection:', err));

// ---------------------------------------------------------------------------------------
// Configuration

const configPath = process.argv[2];
if (!configPath) {
  console.error('usage: node server.js CONFIG.json');
  process.exit(2);
}

let config;
try {
  config = JSON.parse(fs.readFileSync(configPath, 'utf8'));
} catch (err) {
  console.error(`cannot read config ${configPath}: ${err.message}`);
  process.exit(2);
}

const PORT = Number.isInteger(config.port) ? config.port : 0;
const ISSUER_PATH = normalizeIssuerPath(config.issuer_path ?? '/oauth2/default');
const AT_TTL = positiveInt(config.access_token_ttl_s, 3600);
const ID_TTL = positiveInt(config.id_token_ttl_s, 3600);
const RT_TTL = positiveInt(config.refresh_token_ttl_s, 30 * 24 * 3600);
const AUDIENCE = typeof config.audience === 'string' && config.audience ? config.audience : 'api://default';
// "jwt" (Okta-like: the user's access token is a JWT for AUDIENCE; such a token is NOT
// accepted at the userinfo endpoint) or "opaque" (access token usable at userinfo).
const USER_AT_FORMAT = config.user_access_token_format === 'opaque' ? 'opaque' : 'jwt';
const API_SCOPES = Array.isArray(config.api_scopes) ? config.api_scopes.map(String) : ['api:read', 'api:write'];
const OIDC_SCOPES = ['openid', 'email', 'profile', 'offline_access', 'groups'];
const INTERACTION_PREFIX = '/interaction/';
// Authentication levels (`acr`): password only, or password and a second factor.
const ACR_PASSWORD = 'urn:okta:loa:1fa:pwd';
const ACR_MFA = 'urn:okta:loa:2fa:any';

// Users are kept by username; the provider's accountId is the user's `sub`.
const users = new Map();
for (const u of config.users || []) {
  if (!u || typeof u.username !== 'string') continue;
  users.set(u.username, { ...u, sub: String(u.sub ?? u.username), groups: Array.isArray(u.groups) ? [...u.groups] : [] });
}
const userBySub = (sub) => [...users.values()].find((u) => u.sub === sub);
// Claims left out of ID tokens (still at the userinfo endpoint): what Okta's org authorization
// server and group-claim filters do ("thin" ID tokens).
const ID_TOKEN_OMITS = Array.isArray(config.id_token_omits) ? config.id_token_omits.map(String) : [];
// When set (POST /__test/userinfo-sub), the userinfo endpoint answers for this `sub`: a
// provider answering for another user.
let userinfoSub;

function normalizeIssuerPath(p) {
  let s = String(p || '');
  if (s && !s.startsWith('/')) s = `/${s}`;
  while (s.endsWith('/')) s = s.slice(0, -1);
  return s;
}

function positiveInt(v, dflt) {
  return Number.isInteger(v) && v > 0 ? v : dflt;
}

function clientMetadata(c) {
  const grantTypes = Array.isArray(c.grant_types) ? c.grant_types : ['authorization_code', 'refresh_token'];
  return {
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
    post_logout_redirect_uris: [],
    ...c,
    grant_types: grantTypes,
    redirect_uris: Array.isArray(c.redirect_uris) ? c.redirect_uris : [],
    response_types: Array.isArray(c.response_types)
      ? c.response_types
      : (grantTypes.includes('authorization_code') ? ['code'] : []),
  };
}

// ---------------------------------------------------------------------------------------
// Storage: one process-wide in-memory store shared by every Provider instance, so that
// sessions, grants, codes and refresh tokens survive the Provider being recreated by
// POST /__test/rotate-keys. Expiry is checked on read.

const store = new Map();
const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode',
  'BackchannelAuthenticationRequest', 'PreAuthorizedCode', 'ClientCredentials']);

function storeSet(key, value, expiresIn) {
  store.set(key, { value: structuredClone(value), exp: expiresIn ? Date.now() + expiresIn * 1000 : undefined });
}
function storeGet(key) {
  const e = store.get(key);
  if (!e) return undefined;
  if (e.exp !== undefined && e.exp < Date.now()) {
    store.delete(key);
    return undefined;
  }
  return e;
}

class MemoryAdapter {
  constructor(name) {
    this.name = name;
  }

  key(id) {
    return `${this.name}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    if (this.name === 'Session' && payload.uid) {
      storeSet(`sessionUid:${payload.uid}`, id, expiresIn);
    }
    if (GRANTABLE.has(this.name) && payload.grantId) {
      const gk = `grant:${payload.grantId}`;
      const list = storeGet(gk)?.value || [];
      if (!list.includes(key)) list.push(key);
      storeSet(gk, list, Math.max(expiresIn || 0, 14 * 24 * 3600));
    }
    if (payload.userCode) {
      storeSet(`userCode:${payload.userCode}`, id, expiresIn);
    }
    storeSet(key, payload, expiresIn);
  }

  async find(id) {
    const e = storeGet(this.key(id));
    return e ? structuredClone(e.value) : undefined;
  }

  async findByUid(uid) {
    const id = storeGet(`sessionUid:${uid}`)?.value;
    return id ? this.find(id) : undefined;
  }

  async findByUserCode(userCode) {
    const id = storeGet(`userCode:${userCode}`)?.value;
    return id ? this.find(id) : undefined;
  }

  async consume(id) {
    const e = storeGet(this.key(id));
    if (e) e.value.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    store.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    const gk = `grant:${grantId}`;
    for (const k of storeGet(gk)?.value || []) store.delete(k);
    store.delete(gk);
  }
}

// ---------------------------------------------------------------------------------------
// Keys. Published JWKS order: the unusable keys first (an RSA `use: enc` key and an
// Ed25519 OKP key, so a relying party that takes "the first RSA key" or chokes on an
// unknown kty is caught), then the current RSA and EC signing keys (the ones used to
// sign), then the keys of earlier generations (still published after a rotation).

const rid = () => crypto.randomBytes(6).toString('hex');

function genSigningKeys() {
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  return [
    { ...rsa, kid: `rsa-${rid()}`, use: 'sig', alg: 'RS256' },
    { ...ec, kid: `ec-${rid()}`, use: 'sig', alg: 'ES256' },
  ];
}

const unusableKeys = [
  {
    ...crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }),
    kid: `enc-${rid()}`, use: 'enc', alg: 'RSA-OAEP-256',
  },
  {
    ...crypto.generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' }),
    kid: `okp-${rid()}`, use: 'sig', alg: 'EdDSA',
  },
];

let currentKeys = genSigningKeys();
let previousKeys = [];

const publicKid = (k) => ({ kid: k.kid, kty: k.kty, alg: k.alg, use: k.use });

// ---------------------------------------------------------------------------------------
// Provider

const cookieKeys = [crypto.randomBytes(32).toString('base64url')];
let issuer; // set once listening
let provider; // current Provider instance (recreated on key rotation)
let providerCallback;

function htmlEscape(s) {
  return String(s ?? '').replace(/[&<>"']/g, (ch) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  })[ch]);
}

// oidc-provider follows OpenID Connect Core 11 to the letter and drops `offline_access`
// from an authorization request that has no `prompt=consent`. Okta does not: asking for
// offline_access with response_type=code is enough to get a refresh token. Put it back.
function restoreOfflineAccess(ctx) {
  const { oidc } = ctx;
  if (oidc.route !== 'authorization' && oidc.route !== 'pushed_authorization_request') return;
  const raw = ctx.method === 'POST' ? oidc.body?.scope : ctx.query.scope;
  if (typeof raw !== 'string') return;
  const original = raw.split(' ').filter(Boolean);
  if (!original.includes('offline_access')) return;
  const current = new Set((oidc.params.scope || '').split(' ').filter(Boolean));
  if (current.has('offline_access')) return;
  if (!String(oidc.params.response_type || '').split(' ').includes('code')) return;
  if (!oidc.client?.grantTypeAllowed('refresh_token')) return;
  current.add('offline_access');
  oidc.params.scope = [...new Set(original.filter((s) => current.has(s)))].join(' ');
}

function makeProvider() {
  const configuration = {
    adapter: MemoryAdapter,
    clients: (config.clients || []).map(clientMetadata),
    jwks: { keys: [...unusableKeys, ...currentKeys, ...previousKeys] },
    cookies: {
      keys: cookieKeys,
      // plain http on 127.0.0.1: no `secure` flag
      long: { httpOnly: true, sameSite: 'lax', secure: false },
      short: { httpOnly: true, sameSite: 'lax', secure: false },
    },
    // Okta custom authorization server endpoint layout
    routes: {
      authorization: '/v1/authorize',
      token: '/v1/token',
      userinfo: '/v1/userinfo',
      jwks: '/v1/keys',
      end_session: '/v1/logout',
      revocation: '/v1/revoke',
      introspection: '/v1/introspect',
      registration: '/v1/clients',
      pushed_authorization_request: '/v1/par',
      device_authorization: '/v1/device/authorize',
      code_verification: '/v1/device',
      backchannel_authentication: '/v1/bc/authorize',
    },
    scopes: OIDC_SCOPES,
    acrValues: [ACR_PASSWORD, ACR_MFA],
    claims: {
      // groups is part of the openid claim set so it is in every ID token (Okta: a groups
      // claim rule); it can also be asked for alone with the `groups` scope.
      // realm_access (Keycloak's roles) likewise, for users that have roles.
      openid: ['sub', 'groups', 'realm_access'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
      groups: ['groups'],
    },
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    // Not a real parameter: extraParams validators run on every authorization request right
    // after oidc-provider's scope check, which is the hook used for the Okta behaviour below.
    extraParams: {
      x_idp_okta_compat: async (ctx) => restoreOfflineAccess(ctx),
    },
    rotateRefreshToken: true,
    issueRefreshToken: async (ctx, client, code) => client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
    ttl: {
      AccessToken: AT_TTL,
      ClientCredentials: AT_TTL,
      IdToken: ID_TTL,
      RefreshToken: RT_TTL,
      AuthorizationCode: 300,
      Interaction: 3600,
      Session: 14 * 24 * 3600,
      Grant: 14 * 24 * 3600,
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      userinfo: { enabled: true },
      // only so that the `use: enc` key is accepted in jwks; no client asks for encryption
      encryption: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx, form) => {
          ctx.body = `<!DOCTYPE html><html><head><meta charset="utf-8"><title>Sign out</title></head>
<body><h1>Sign out</h1>${form}
<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Sign out</button>
<script>document.forms[0].insertAdjacentHTML('beforeend','<input type="hidden" name="logout" value="yes">');document.forms[0].submit();</script>
</body></html>`;
        },
        postLogoutSuccessSource: async (ctx) => {
          ctx.body = '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Signed out</title></head><body><h1>Signed out</h1></body></html>';
        },
      },
      resourceIndicators: {
        enabled: true,
        // Okta: every access token is a JWT for the authorization server's audience.
        defaultResource: async (ctx, client, oneOf) => {
          if (oneOf) return Array.isArray(oneOf) ? oneOf[0] : oneOf;
          if (ctx.oidc.route === 'token' && ctx.oidc.params.grant_type === 'client_credentials') return AUDIENCE;
          return USER_AT_FORMAT === 'jwt' ? AUDIENCE : undefined;
        },
        useGrantedResource: async () => true,
        getResourceServerInfo: async (ctx, resourceIndicator) => ({
          scope: [...OIDC_SCOPES, ...API_SCOPES].join(' '),
          audience: resourceIndicator,
          accessTokenTTL: AT_TTL,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
    // Okta-like extra claims in JWT access tokens
    extraTokenClaims: async (ctx, token) => {
      const extra = { ver: 1, cid: token.clientId };
      if (token.scope) extra.scp = token.scope.split(' ');
      if (token.accountId) {
        extra.uid = token.accountId;
        const u = userBySub(token.accountId);
        if (u) {
          extra.groups = [...u.groups];
          if (Array.isArray(u.roles)) extra.realm_access = { roles: [...u.roles] };
          // Okta custom claims: the user's email and whether it is verified, for APIs.
          if (u.email !== undefined) extra.email = u.email;
          if (u.email_verified !== undefined) extra.email_verified = u.email_verified;
        }
      }
      return extra;
    },
    findAccount: async (ctx, sub) => {
      const u = userBySub(sub);
      if (!u) return undefined;
      return {
        accountId: u.sub,
        async claims(use) {
          // read at token time, so POST /__test/groups changes later (refreshed) tokens
          const cur = userBySub(sub) || u;
          const claims = { sub: cur.sub, groups: [...cur.groups] };
          for (const k of ['email', 'email_verified', 'name', 'preferred_username']) {
            if (cur[k] !== undefined) claims[k] = cur[k];
          }
          if (claims.preferred_username === undefined) claims.preferred_username = cur.username;
          // Keycloak-style nested roles, for users that have them.
          if (Array.isArray(cur.roles)) claims.realm_access = { roles: [...cur.roles] };
          if (use === 'id_token') {
            for (const k of ID_TOKEN_OMITS) delete claims[k];
          }
          return claims;
        },
      };
    },
    // Consent is implied: the grant is created/extended with whatever the authorization
    // request asks for, so the consent prompt never shows.
    loadExistingGrant: async (ctx) => {
      const { oidc } = ctx;
      const accountId = oidc.account.accountId;
      const clientId = oidc.client.clientId;
      const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(clientId);
      let grant = grantId ? await oidc.provider.Grant.find(grantId) : undefined;
      if (!grant || grant.accountId !== accountId || grant.clientId !== clientId) {
        grant = new oidc.provider.Grant({ accountId, clientId });
      }
      const scopes = [...oidc.requestParamOIDCScopes];
      if (scopes.length) grant.addOIDCScope(scopes.join(' '));
      const claims = [...oidc.requestParamClaims];
      if (claims.length) grant.addOIDCClaims(claims);
      for (const [indicator, rs] of Object.entries(oidc.resourceServers || {})) {
        const rsScopes = [...oidc.requestParamScopes].filter((s) => rs.scopes.has(s));
        if (rsScopes.length) grant.addResourceScope(indicator, rsScopes.join(' '));
      }
      await grant.save();
      return grant;
    },
    interactions: {
      url: (ctx, interaction) => new URL(`${INTERACTION_PREFIX}${interaction.uid}`, ctx.href).href,
    },
    renderError: async (ctx, out, error) => {
      ctx.type = 'html';
      ctx.body = `<!DOCTYPE html><html><head><meta charset="utf-8"><title>Error</title></head><body>
<h1>${htmlEscape(out.error)}</h1><p id="error_description">${htmlEscape(out.error_description)}</p>
</body></html>`;
      if (error && !(error.expose)) log('renderError:', error);
    },
  };

  const p = new Provider(issuer, configuration);
  p.proxy = false;
  for (const ev of ['server_error', 'authorization.error', 'grant.error', 'end_session.error',
    'end_session_confirm.error', 'userinfo.error', 'introspection.error', 'revocation.error',
    'jwks.error', 'discovery.error', 'resume.error', 'check_session.error']) {
    p.on(ev, (ctx, err) => {
      const desc = err?.error_description ? ` (${err.error_description})` : '';
      const detail = err?.error_detail ? ` [${err.error_detail}]` : '';
      const cause = (err?.cause ? ` cause: ${err.cause.message || err.cause}` : '') + detail;
      if (ev === 'server_error') log(`${ev}:`, err);
      else log(`${ev}: ${err?.message}${desc}${cause}`);
    });
  }
  p.on('grant.success', (ctx) => log(`token issued: ${ctx.oidc.params?.grant_type} client=${ctx.oidc.client?.clientId}`));
  return p;
}

function installProvider() {
  provider = makeProvider();
  // oidc-provider always answers UserInfo for the token's account; POST /__test/userinfo-sub
  // makes it answer for another `sub`, as a broken or hostile provider could.
  provider.use(async (ctx, next) => {
    await next();
    if (userinfoSub !== undefined && ctx.path.endsWith('/v1/userinfo') && ctx.body && typeof ctx.body === 'object') {
      ctx.body = { ...ctx.body, sub: userinfoSub };
    }
  });
  providerCallback = provider.callback();
}

// ---------------------------------------------------------------------------------------
// HTTP helpers

const requestLog = [];

function readBody(req, limit = 1 << 20) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > limit) {
        reject(Object.assign(new Error('body too large'), { status: 413 }));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

async function readJson(req) {
  const text = await readBody(req);
  if (!text.trim()) return {};
  try {
    return JSON.parse(text);
  } catch {
    throw Object.assign(new Error('invalid JSON body'), { status: 400 });
  }
}

function sendJson(res, status, body) {
  const data = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(data),
    'cache-control': 'no-store',
  });
  res.end(data);
}

function sendHtml(res, status, html) {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(html),
    'cache-control': 'no-store',
  });
  res.end(html);
}

// ---------------------------------------------------------------------------------------
// Login page (the interaction URL)

function loginPage({ uid, clientId, username = '', error }) {
  return `<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>Sign in</title></head>
<body>
<h1>Sign in</h1>
<p>to continue to <span id="client">${htmlEscape(clientId)}</span></p>
${error ? `<p id="error" class="error" role="alert">${htmlEscape(error)}</p>` : ''}
<form method="post" action="${INTERACTION_PREFIX}${htmlEscape(uid)}">
  <label>Username <input type="text" name="username" value="${htmlEscape(username)}" autocomplete="username" autofocus required></label>
  <label>Password <input type="password" name="password" autocomplete="current-password" required></label>
  <button type="submit">Sign in</button>
</form>
</body>
</html>
`;
}

async function finishConsent(req, res, details) {
  // Fallback only: loadExistingGrant normally makes the consent prompt unnecessary.
  const { prompt: { details: missing }, params, session } = details;
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes || {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

async function handleInteraction(req, res, url) {
  let uid;
  try {
    uid = decodeURIComponent(url.pathname.slice(INTERACTION_PREFIX.length));
  } catch {
    sendHtml(res, 400, '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Error</title></head><body><h1>invalid_request</h1></body></html>');
    return;
  }
  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch (err) {
    log(`interaction ${uid}: ${err.message}`);
    sendHtml(res, 400, `<!DOCTYPE html><html><head><meta charset="utf-8"><title>Error</title></head><body><h1>invalid_request</h1><p id="error_description">${htmlEscape(err.message)}</p></body></html>`);
    return;
  }
  if (details.uid !== uid) {
    sendHtml(res, 400, '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Error</title></head><body><h1>invalid_request</h1><p id="error_description">interaction mismatch</p></body></html>');
    return;
  }
  const clientId = details.params.client_id;

  if (details.prompt.name === 'consent') {
    await finishConsent(req, res, details);
    return;
  }
  if (details.prompt.name !== 'login') {
    sendHtml(res, 400, `<!DOCTYPE html><html><head><meta charset="utf-8"><title>Error</title></head><body><h1>unsupported prompt ${htmlEscape(details.prompt.name)}</h1></body></html>`);
    return;
  }

  if (req.method === 'GET') {
    sendHtml(res, 200, loginPage({ uid, clientId, username: details.params.login_hint || '' }));
    return;
  }
  if (req.method !== 'POST') {
    res.writeHead(405, { allow: 'GET, POST' }).end();
    return;
  }

  const form = new URLSearchParams(await readBody(req));
  const username = form.get('username') || '';
  const password = form.get('password') || '';
  const user = users.get(username);
  if (!user || typeof user.password !== 'string'
    || !crypto.timingSafeEqual(crypto.hash('sha256', user.password, 'buffer'), crypto.hash('sha256', password, 'buffer'))) {
    log(`login failed for ${JSON.stringify(username)}`);
    sendHtml(res, 401, loginPage({ uid, clientId, username, error: 'Unable to sign in: wrong username or password.' }));
    return;
  }
  log(`login ok: ${username} (sub ${user.sub}) for client ${clientId}`);
  // Step-up as an Okta sign-on policy does it: a request that asks for the MFA level gets it
  // (the test users pass the second factor); otherwise the password level.
  const asked = String(details.params.acr_values || '').split(' ');
  const acr = asked.includes(ACR_MFA) ? ACR_MFA : ACR_PASSWORD;
  await provider.interactionFinished(req, res, {
    login: { accountId: user.sub, amr: acr === ACR_MFA ? ['pwd', 'otp'] : ['pwd'], acr, remember: true },
  }, { mergeWithLastSubmission: false });
}

// ---------------------------------------------------------------------------------------
// RP-initiated logout without a confirmation page (Okta's /v1/logout redirects at once):
// the request is replayed over loopback to the provider's own end_session endpoint, its
// confirmation form is submitted over loopback too, and the browser gets the final answer
// (303 to post_logout_redirect_uri, or to /v1/logout/success) with all Set-Cookie headers.

const INTERNAL_HEADER = 'x-idp-internal';
const internalToken = crypto.randomBytes(16).toString('hex');

function mergeCookies(cookieHeader, setCookies) {
  const jar = new Map();
  for (const part of (cookieHeader || '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) jar.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  for (const sc of setCookies) {
    const [pair, ...attrs] = sc.split(';');
    const i = pair.indexOf('=');
    if (i <= 0) continue;
    const name = pair.slice(0, i).trim();
    const value = pair.slice(i + 1).trim();
    const expired = attrs.some((a) => /^\s*expires=Thu, 01 Jan 1970/i.test(a) || /^\s*max-age=0\s*$/i.test(a));
    if (expired || value === '') jar.delete(name); else jar.set(name, value);
  }
  return [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
}

async function autoLogout(req, res, url) {
  const base = `http://127.0.0.1:${server.address().port}`;
  const setCookies = [];
  let body;
  let contentType;
  if (req.method === 'POST') {
    body = await readBody(req);
    contentType = req.headers['content-type'];
  }
  const first = await fetch(`${base}${url.pathname}${url.search}`, {
    method: req.method,
    redirect: 'manual',
    headers: {
      [INTERNAL_HEADER]: internalToken,
      ...(req.headers.cookie ? { cookie: req.headers.cookie } : {}),
      ...(contentType ? { 'content-type': contentType } : {}),
    },
    body,
  });
  setCookies.push(...first.headers.getSetCookie());
  const html = await first.text();
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)?.[1];
  const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
  let final = first;
  let finalBody = html;
  if (first.status === 200 && xsrf && action) {
    const confirmUrl = new URL(action.replace(/&amp;/g, '&'), base);
    final = await fetch(`${base}${confirmUrl.pathname}`, {
      method: 'POST',
      redirect: 'manual',
      headers: {
        [INTERNAL_HEADER]: internalToken,
        'content-type': 'application/x-www-form-urlencoded',
        cookie: mergeCookies(req.headers.cookie, setCookies),
      },
      body: new URLSearchParams({ xsrf, logout: 'yes' }).toString(),
    });
    setCookies.push(...final.headers.getSetCookie());
    finalBody = await final.text();
  }
  const headers = {};
  for (const [k, v] of final.headers) {
    if (['set-cookie', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'content-encoding'].includes(k)) continue;
    headers[k] = v;
  }
  if (setCookies.length) headers['set-cookie'] = setCookies;
  headers['content-length'] = Buffer.byteLength(finalBody);
  res.writeHead(final.status, headers);
  res.end(finalBody);
}

// ---------------------------------------------------------------------------------------
// /__test/ admin API

async function handleTest(req, res, url) {
  const route = `${req.method} ${url.pathname.replace(/\/+$/, '')}`;
  switch (route) {
    case 'GET /__test/log':
      return sendJson(res, 200, requestLog);
    case 'POST /__test/log/clear':
      requestLog.length = 0;
      return sendJson(res, 200, { ok: true });
    case 'GET /__test/keys':
      return sendJson(res, 200, {
        current: currentKeys.map(publicKid),
        previous: previousKeys.map(publicKid),
        unusable: unusableKeys.map(publicKid),
      });
    case 'POST /__test/rotate-keys': {
      const body = await readJson(req);
      const keepOld = body.keep_old !== false;
      previousKeys = keepOld ? [...currentKeys, ...previousKeys] : [];
      currentKeys = genSigningKeys();
      // oidc-provider has no public API to change its keystore, so the Provider instance
      // is recreated. All state lives in the shared in-memory store and the cookie keys are
      // unchanged, so sessions, interactions, codes and refresh tokens survive.
      installProvider();
      log(`keys rotated: now ${currentKeys.map((k) => k.kid).join(', ')}; previous kept: ${previousKeys.length}`);
      return sendJson(res, 200, {
        current: currentKeys.map(publicKid),
        previous: previousKeys.map(publicKid),
        unusable: unusableKeys.map(publicKid),
      });
    }
    case 'POST /__test/groups': {
      const body = await readJson(req);
      const user = users.get(body.username);
      if (!user) return sendJson(res, 404, { error: 'unknown user' });
      const strings = (v) => Array.isArray(v) && v.every((g) => typeof g === 'string');
      if (body.groups !== undefined && !strings(body.groups)) {
        return sendJson(res, 400, { error: 'groups must be an array of strings' });
      }
      if (body.roles !== undefined && !strings(body.roles)) {
        return sendJson(res, 400, { error: 'roles must be an array of strings' });
      }
      if (body.groups !== undefined) user.groups = [...body.groups];
      if (body.roles !== undefined) user.roles = [...body.roles];
      log(`groups of ${user.username} set to ${JSON.stringify(user.groups)}, roles to ${JSON.stringify(user.roles)}`);
      return sendJson(res, 200, { username: user.username, sub: user.sub, groups: user.groups, roles: user.roles });
    }
    case 'POST /__test/userinfo-sub': {
      const body = await readJson(req);
      userinfoSub = typeof body.sub === 'string' ? body.sub : undefined;
      log(`userinfo answers for sub ${userinfoSub ?? '(the token\'s)'}`);
      return sendJson(res, 200, { sub: userinfoSub ?? null });
    }
    case 'POST /__test/sign': {
      // A JWT with these claims, signed with the current RSA key: what a broken or compromised
      // provider could send (tests feed it back through a fault proxy).
      const claims = await readJson(req);
      const key = currentKeys.find((k) => k.kty === 'RSA');
      const header = { alg: 'RS256', typ: 'JWT', kid: key.kid };
      const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
      const input = `${b64(header)}.${b64(claims)}`;
      const privateKey = crypto.createPrivateKey({ key, format: 'jwk' });
      const signature = crypto.sign('sha256', Buffer.from(input), privateKey).toString('base64url');
      return sendJson(res, 200, { jwt: `${input}.${signature}` });
    }
    case 'GET /__test/health':
      return sendJson(res, 200, { ok: true, issuer });
    default:
      return sendJson(res, 404, { error: 'not found', route });
  }
}

// ---------------------------------------------------------------------------------------
// Server

const server = http.createServer(async (req, res) => {
  let url;
  try {
    url = new URL(req.url, 'http://127.0.0.1');
  } catch {
    sendJson(res, 400, { error: 'invalid_request', error_description: 'bad request target' });
    return;
  }
  const internal = req.headers[INTERNAL_HEADER] === internalToken;
  if (!url.pathname.startsWith('/__test/') && !internal) {
    const entry = { method: req.method, path: url.pathname, t: Date.now() };
    requestLog.push(entry);
    res.on('finish', () => { entry.status = res.statusCode; });
  }
  try {
    if (url.pathname.startsWith('/__test/')) {
      await handleTest(req, res, url);
    } else if (!provider) {
      sendJson(res, 503, { error: 'temporarily_unavailable' });
    } else if (url.pathname.startsWith(INTERACTION_PREFIX)) {
      await handleInteraction(req, res, url);
    } else if (!internal && (req.method === 'GET' || req.method === 'POST')
      && url.pathname === `${ISSUER_PATH}/v1/logout`) {
      await autoLogout(req, res, url);
    } else if (ISSUER_PATH === '' || url.pathname === ISSUER_PATH || url.pathname.startsWith(`${ISSUER_PATH}/`)) {
      // mount the provider under the issuer path: oidc-provider derives its mount path
      // from req.originalUrl minus req.url
      req.originalUrl = req.url;
      req.url = req.url.slice(ISSUER_PATH.length) || '/';
      if (req.url.startsWith('?')) req.url = `/${req.url}`;
      await providerCallback(req, res);
    } else {
      sendJson(res, 404, { error: 'not_found', path: url.pathname });
    }
  } catch (err) {
    if (err.status && err.status < 500) log(`${req.method} ${url.pathname}: ${err.message}`);
    else log(`error handling ${req.method} ${url.pathname}:`, err);
    if (!res.headersSent) {
      sendJson(res, err.status && err.status < 500 ? err.status : 500, {
        error: err.status && err.status < 500 ? 'invalid_request' : 'server_error',
        error_description: err.message,
      });
    } else {
      res.destroy();
    }
  }
});

server.on('clientError', (err, socket) => {
  if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
  else socket.destroy();
});

server.listen(PORT, '127.0.0.1', () => {
  const { port } = server.address();
  issuer = `http://127.0.0.1:${port}${ISSUER_PATH}`;
  try {
    installProvider();
  } catch (err) {
    log('cannot configure the provider:', err);
    process.exit(1);
  }
  log(`listening; issuer ${issuer}; signing keys ${currentKeys.map((k) => k.kid).join(', ')}`);
  process.stdout.write(`READY ${issuer}\n`);
});

server.on('error', (err) => {
  log('server error:', err);
  process.exit(1);
});

function shutdown(signal) {
  log(`${signal}: shutting down`);
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
