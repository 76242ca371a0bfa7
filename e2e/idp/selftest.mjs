#!/usr/bin/env node
// Self-test of the e2e OpenID provider: starts server.js with a temporary config and
// drives it like a browser + relying party would (manual cookie jar, manual redirects).
// Usage: node selftest.mjs      (exit 0 and "N passed, 0 failed" when everything works)

import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

let passed = 0;
let failed = 0;
function check(cond, what, extra) {
  if (cond) {
    passed += 1;
    console.log(`ok - ${what}`);
  } else {
    failed += 1;
    console.log(`not ok - ${what}${extra !== undefined ? ` :: ${typeof extra === 'string' ? extra : JSON.stringify(extra)}` : ''}`);
  }
  return cond;
}

const REDIRECT = 'http://localhost:10000/oauth2/callback';
const REDIRECT_ES = 'http://localhost:10001/cb';
const POST_LOGOUT = 'http://localhost:10001/signed-out';
const SECRET = 'gate-secret-with-&-and-+';

const config = {
  port: 0,
  issuer_path: '/oauth2/default',
  clients: [
    {
      client_id: 'gate', client_secret: SECRET, redirect_uris: [REDIRECT],
      token_endpoint_auth_method: 'client_secret_basic', id_token_signed_response_alg: 'RS256',
      grant_types: ['authorization_code', 'refresh_token'], post_logout_redirect_uris: [],
    },
    {
      client_id: 'gate-es', client_secret: 'es secret/=?', redirect_uris: [REDIRECT_ES],
      token_endpoint_auth_method: 'client_secret_post', id_token_signed_response_alg: 'ES256',
      grant_types: ['authorization_code', 'refresh_token'], post_logout_redirect_uris: [POST_LOGOUT],
    },
    {
      client_id: 'api-client', client_secret: 'api-secret', redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic', grant_types: ['client_credentials'],
    },
  ],
  users: [
    {
      username: 'alice', password: 'alice-pw', sub: '00u-alice', email: 'alice@example.com', email_verified: true,
      preferred_username: 'alice', name: 'Alice Admin', groups: ['admins', 'everyone'],
    },
    {
      username: 'bob', password: 'bob-pw', sub: '00u-bob', email: 'bob@example.com', email_verified: false,
      preferred_username: 'bob', name: 'Bob User', groups: ['everyone'],
    },
  ],
  access_token_ttl_s: 3600,
  id_token_ttl_s: 3600,
};

// ------------------------------------------------------------------ helpers

const b64u = (buf) => Buffer.from(buf).toString('base64url');
const formEncode = (s) => new URLSearchParams({ x: s }).toString().slice(2); // application/x-www-form-urlencoded

function basicAuth(id, secret) {
  // RFC 6749 §2.3.1: form-urlencode id and secret, then base64
  return `Basic ${Buffer.from(`${formEncode(id)}:${formEncode(secret)}`).toString('base64')}`;
}

function decodeJwt(jwt) {
  const [h, p, s] = String(jwt).split('.');
  try {
    JSON.parse(Buffer.from(h, 'base64url'));
    JSON.parse(Buffer.from(p, 'base64url'));
  } catch {
    return { header: {}, payload: {}, signingInput: '', signature: Buffer.alloc(0) };
  }
  return {
    header: JSON.parse(Buffer.from(h, 'base64url')),
    payload: JSON.parse(Buffer.from(p, 'base64url')),
    signingInput: `${h}.${p}`,
    signature: Buffer.from(s, 'base64url'),
  };
}

function verifyJwt(jwt, jwks) {
  const t = decodeJwt(jwt);
  const jwk = jwks.keys.find((k) => k.kid === t.header.kid);
  if (!t.header.kid) return { ok: false, why: 'not a JWT', ...t };
  if (!jwk) return { ok: false, why: `no key ${t.header.kid}`, ...t };
  if (jwk.use && jwk.use !== 'sig') return { ok: false, why: 'key not for sig', ...t };
  const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
  let ok;
  if (t.header.alg === 'RS256') {
    ok = crypto.verify('sha256', Buffer.from(t.signingInput), key, t.signature);
  } else if (t.header.alg === 'ES256') {
    ok = crypto.verify('sha256', Buffer.from(t.signingInput), { key, dsaEncoding: 'ieee-p1363' }, t.signature);
  } else {
    return { ok: false, why: `alg ${t.header.alg}`, ...t };
  }
  return { ok, ...t };
}

class CookieJar {
  // minimal browser-like jar for one host: honours Path and deletion, ignores Domain
  constructor() { this.cookies = new Map(); }

  store(url, res) {
    for (const sc of res.headers.getSetCookie()) {
      const [pair, ...attrs] = sc.split(';').map((s) => s.trim());
      const i = pair.indexOf('=');
      const name = pair.slice(0, i);
      const value = pair.slice(i + 1);
      let cpath = '/';
      let expired = value === '';
      for (const a of attrs) {
        const [k, v] = a.split('=');
        if (k.toLowerCase() === 'path') cpath = v;
        if (k.toLowerCase() === 'expires' && new Date(v).getTime() < Date.now()) expired = true;
        if (k.toLowerCase() === 'max-age' && Number(v) <= 0) expired = true;
      }
      const key = `${name};${cpath}`;
      if (expired) this.cookies.delete(key);
      else this.cookies.set(key, { name, value, path: cpath, raw: sc });
    }
  }

  header(url) {
    const p = new URL(url).pathname;
    return [...this.cookies.values()]
      .filter((c) => p === c.path || p.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`))
      .sort((a, b) => b.path.length - a.path.length)
      .map((c) => `${c.name}=${c.value}`).join('; ');
  }

  names() { return [...this.cookies.values()].map((c) => `${c.name} (path ${c.path})`); }
}

async function browserGet(jar, url, opts = {}) {
  const cookie = jar.header(url);
  const res = await fetch(url, {
    method: opts.method || 'GET',
    redirect: 'manual',
    headers: { ...(cookie ? { cookie } : {}), ...(opts.headers || {}) },
    body: opts.body,
  });
  jar.store(url, res);
  return res;
}

// Follows redirects like a browser until the target (redirect_uri) is reached or a
// non-redirect answer arrives. Returns { res, url, hops, target }.
async function follow(jar, startUrl, stopPrefix, opts = {}) {
  let res = await browserGet(jar, startUrl, opts);
  let url = startUrl;
  const hops = [{ status: res.status, url, location: res.headers.get('location') }];
  for (let i = 0; i < 10; i++) {
    if (![301, 302, 303, 307, 308].includes(res.status)) return { res, url, hops };
    const next = new URL(res.headers.get('location'), url).href;
    await res.arrayBuffer();
    if (stopPrefix && next.startsWith(stopPrefix)) return { res, url, hops, target: next };
    url = next;
    res = await browserGet(jar, url);
    hops.push({ status: res.status, url, location: res.headers.get('location') });
  }
  throw new Error('too many redirects');
}

function pkce() {
  const verifier = b64u(crypto.randomBytes(32));
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

async function json(res) {
  const text = await res.text();
  try { return JSON.parse(text); } catch { return { raw: text }; }
}

// ------------------------------------------------------------------ browser-side authorization code flow

function makeAuthorize(disco, jar) {
  return async function authorize(clientId, redirectUri, scope, { expectLogin = true, user = 'alice', password = 'alice-pw', extra = {} } = {}) {
    const { verifier, challenge } = pkce();
    const state = b64u(crypto.randomBytes(12));
    const nonce = b64u(crypto.randomBytes(12));
    const url = new URL(disco.authorization_endpoint);
    url.search = new URLSearchParams({
      client_id: clientId, response_type: 'code', redirect_uri: redirectUri, scope, state, nonce,
      code_challenge: challenge, code_challenge_method: 'S256', ...extra,
    }).toString();
    let flow = await follow(jar, url.href, redirectUri);
    const hops = [...flow.hops];
    if (expectLogin) {
      check(flow.res.status === 200 && !flow.target, `${clientId}: authorize leads to a login page`, hops);
      const html = await flow.res.text();
      check(/<title>Sign in<\/title>/.test(html)
        && /<form method="post"/.test(html)
        && /name="username"/.test(html) && /name="password"/.test(html)
        && /<button type="submit">Sign in<\/button>/.test(html), `${clientId}: login form has the expected shape`);
      const action = new URL(/<form method="post" action="([^"]+)"/.exec(html)[1], flow.url).href;
      check(action === flow.url, `${clientId}: form action is the interaction URL itself (${action})`);
      check(jar.header(action).includes('_interaction='), `${clientId}: _interaction cookie is sent to the interaction URL`);

      const bad = await browserGet(jar, action, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ username: user, password: 'wrong' }).toString(),
      });
      const badHtml = await bad.text();
      check(bad.status === 401 && /wrong username or password/.test(badHtml) && /<form method="post"/.test(badHtml), `${clientId}: wrong password re-renders the form with 401`);

      flow = await follow(jar, action, redirectUri, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ username: user, password }).toString(),
      });
      hops.push(...flow.hops);
    }
    check(!!flow.target, `${clientId}: redirect chain ends at the redirect_uri`, hops);
    const cb = new URL(flow.target || 'http://invalid/');
    check(cb.searchParams.get('state') === state, `${clientId}: state round-trips`);
    check(!!cb.searchParams.get('code'), `${clientId}: code present`, cb.search);
    return { code: cb.searchParams.get('code'), verifier, nonce, hops, iss: cb.searchParams.get('iss') };
  };
}

// ------------------------------------------------------------------ start a server

const servers = [];

async function startServer(cfg) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'idp-selftest-'));
  const cfgFile = path.join(tmp, 'config.json');
  fs.writeFileSync(cfgFile, JSON.stringify(cfg, null, 2));
  const child = spawn(process.execPath, [path.join(here, 'server.js'), cfgFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  const srv = { child, tmp, stderr: '', stdout: '' };
  servers.push(srv);
  child.stderr.on('data', (d) => { srv.stderr += d; });
  srv.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  srv.issuer = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no READY line within 15s; stderr:\n${srv.stderr}`)), 15000);
    child.stdout.on('data', (d) => {
      srv.stdout += d;
      const m = /^READY (\S+)\n/m.exec(srv.stdout);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.on('exit', (code) => reject(new Error(`server exited early (${code}); stderr:\n${srv.stderr}`)));
  });
  srv.origin = new URL(srv.issuer).origin;
  return srv;
}

async function stopServer(srv, label) {
  srv.child.kill('SIGTERM');
  const { code, signal } = await srv.exited;
  check(code === 0, `${label}: server exits cleanly on SIGTERM (code ${code}, signal ${signal})`);
  check(srv.stdout.trim().split('\n').length === 1, `${label}: stdout carries only the READY line`, srv.stdout);
  fs.rmSync(srv.tmp, { recursive: true, force: true });
}

async function main() {
  const srv = await startServer(config);
  const { issuer, origin } = srv;
  check(/^http:\/\/127\.0\.0\.1:\d+\/oauth2\/default$/.test(issuer), `READY line gives the issuer (${issuer})`);

  // ---------------------------------------------------------------- discovery + jwks
  const disco = await json(await fetch(`${issuer}/.well-known/openid-configuration`));
  check(disco.issuer === issuer, 'discovery issuer equals the READY issuer', disco.issuer);
  for (const ep of ['authorization_endpoint', 'token_endpoint', 'jwks_uri', 'userinfo_endpoint', 'end_session_endpoint', 'revocation_endpoint', 'introspection_endpoint']) {
    check(typeof disco[ep] === 'string' && disco[ep].startsWith(`${issuer}/`), `${ep} under the issuer (${disco[ep]})`);
  }
  for (const s of ['openid', 'email', 'profile', 'offline_access', 'groups']) {
    check(disco.scopes_supported.includes(s), `scopes_supported has ${s}`);
  }
  check(['RS256', 'ES256'].every((a) => disco.id_token_signing_alg_values_supported.includes(a)), 'id_token_signing_alg_values_supported has RS256 and ES256');
  check(disco.code_challenge_methods_supported?.includes('S256'), 'S256 PKCE advertised');
  check(disco.grant_types_supported.includes('client_credentials') && disco.grant_types_supported.includes('refresh_token'), 'client_credentials and refresh_token grants advertised');

  let jwks = await json(await fetch(disco.jwks_uri));
  const kids = jwks.keys.map((k) => k.kid);
  check(jwks.keys.some((k) => k.kty === 'RSA' && k.use === 'sig' && k.alg === 'RS256' && k.kid.startsWith('rsa-')), 'JWKS has an RSA sig key', kids);
  check(jwks.keys.some((k) => k.kty === 'EC' && k.crv === 'P-256' && k.use === 'sig' && k.kid.startsWith('ec-')), 'JWKS has an EC P-256 sig key', kids);
  check(jwks.keys.some((k) => k.use === 'enc') && jwks.keys.some((k) => k.kty === 'OKP'), 'JWKS has unusable keys (RSA enc and OKP)', kids);
  check(jwks.keys.every((k) => !('d' in k) && !('p' in k)), 'JWKS has no private parts');

  // ---------------------------------------------------------------- authorization code + PKCE
  const jar = new CookieJar();

  const authorize = makeAuthorize(disco, jar);

  const a1 = await authorize('gate', REDIRECT, 'openid email profile offline_access');
  console.log('# redirect chain (status url -> Location):');
  for (const h of a1.hops) console.log(`#   ${h.status} ${h.url.replace(origin, '')} -> ${h.location}`);
  check(a1.iss === issuer, 'authorization response carries iss (RFC 9207)', a1.iss);
  console.log(`# cookies after login: ${jar.names().join(', ')}`);

  // token exchange, client_secret_basic with form-urlencoded id/secret
  const tokenReq = (auth, params) => fetch(disco.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(auth ? { authorization: auth } : {}) },
    body: new URLSearchParams(params).toString(),
  });

  // the raw secret (not form-urlencoded) must NOT work: '+' decodes to a space
  const raw = await tokenReq(`Basic ${Buffer.from(`gate:${SECRET}`).toString('base64')}`, {
    grant_type: 'authorization_code', code: 'nope', redirect_uri: REDIRECT, code_verifier: a1.verifier,
  });
  const rawBody = await json(raw);
  check(raw.status === 401 && rawBody.error === 'invalid_client', 'un-encoded basic credentials are rejected (invalid_client)', rawBody);

  const t1res = await tokenReq(basicAuth('gate', SECRET), {
    grant_type: 'authorization_code', code: a1.code, redirect_uri: REDIRECT, code_verifier: a1.verifier,
  });
  const t1 = await json(t1res);
  check(t1res.status === 200 && t1.id_token && t1.access_token && t1.refresh_token, 'code exchange with client_secret_basic works', t1);
  check(t1.token_type === 'Bearer' && t1.expires_in > 3000, 'token_type Bearer, expires_in ~3600', { t: t1.token_type, e: t1.expires_in });

  const idt = verifyJwt(t1.id_token, jwks);
  check(idt.ok && idt.header.alg === 'RS256' && idt.header.kid.startsWith('rsa-'), 'ID token RS256 signature verifies with the published RSA key', idt.header);
  const c = idt.payload;
  check(c.iss === issuer && c.aud === 'gate' && c.sub === '00u-alice', 'ID token iss/aud/sub', { iss: c.iss, aud: c.aud, sub: c.sub });
  check(c.nonce === a1.nonce, 'ID token nonce');
  check(c.email === 'alice@example.com' && c.email_verified === true, 'ID token email + email_verified', c);
  check(c.preferred_username === 'alice' && c.name === 'Alice Admin', 'ID token preferred_username + name', c);
  check(JSON.stringify(c.groups) === JSON.stringify(['admins', 'everyone']), 'ID token groups', c.groups);
  check(typeof c.exp === 'number' && c.exp - c.iat === 3600, 'ID token lifetime = id_token_ttl_s', { iat: c.iat, exp: c.exp });
  console.log(`# id_token claims: ${JSON.stringify(c)}`);

  const at = verifyJwt(t1.access_token, jwks);
  check(at.ok && at.header.alg === 'RS256', 'user access token is a JWT signed RS256', at.header);
  check(at.payload.aud === 'api://default' && at.payload.sub === '00u-alice' && at.payload.iss === issuer, 'user access token aud api://default, sub, iss', at.payload);
  console.log(`# access_token header ${JSON.stringify(at.header)} claims ${JSON.stringify(at.payload)}`);

  // PKCE is required: no code_challenge, no code
  {
    const url = new URL(disco.authorization_endpoint);
    url.search = new URLSearchParams({ client_id: 'gate', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', state: 's1' }).toString();
    const f = await follow(jar, url.href, REDIRECT);
    const cb = new URL(f.target || 'http://invalid/');
    check(cb.searchParams.get('error') === 'invalid_request' && /PKCE/.test(cb.searchParams.get('error_description') || ''), 'authorize without code_challenge is refused (PKCE required)', f.target);
  }

  // ---------------------------------------------------------------- refresh with rotation
  const g = await json(await fetch(`${origin}/__test/groups`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'alice', groups: ['everyone', 'auditors'] }),
  }));
  check(JSON.stringify(g.groups) === JSON.stringify(['everyone', 'auditors']), '/__test/groups changes groups', g);

  const r1res = await tokenReq(basicAuth('gate', SECRET), { grant_type: 'refresh_token', refresh_token: t1.refresh_token });
  const r1 = await json(r1res);
  check(r1res.status === 200 && r1.refresh_token && r1.refresh_token !== t1.refresh_token, 'refresh works and rotates the refresh token', r1);
  const rid = verifyJwt(r1.id_token || 'a.b.c', jwks);
  check(rid.ok && JSON.stringify(rid.payload.groups) === JSON.stringify(['everyone', 'auditors']), 'refreshed ID token has the new groups', rid.payload?.groups);
  check(rid.payload?.email === 'alice@example.com' && rid.payload?.sub === '00u-alice', 'refreshed ID token has email and sub');
  check(verifyJwt(r1.access_token, jwks).payload.aud === 'api://default', 'refreshed access token is a JWT for api://default');

  const reuse = await tokenReq(basicAuth('gate', SECRET), { grant_type: 'refresh_token', refresh_token: t1.refresh_token });
  const reuseBody = await json(reuse);
  check(reuse.status === 400 && reuseBody.error === 'invalid_grant', 'reused old refresh token gets invalid_grant', reuseBody);
  const after = await json(await tokenReq(basicAuth('gate', SECRET), { grant_type: 'refresh_token', refresh_token: r1.refresh_token }));
  check(after.error === 'invalid_grant', 'reuse detection revoked the whole grant (newest refresh token dead too)', after);

  // ---------------------------------------------------------------- client_credentials
  const ccRes = await tokenReq(basicAuth('api-client', 'api-secret'), { grant_type: 'client_credentials', scope: 'api:read' });
  const cc = await json(ccRes);
  check(ccRes.status === 200 && cc.access_token && !cc.refresh_token && !cc.id_token, 'client_credentials grant works', cc);
  const ccj = verifyJwt(cc.access_token || 'a.b.c', jwks);
  check(ccj.ok && ccj.header.alg === 'RS256' && ccj.header.kid.startsWith('rsa-'), 'client_credentials access token is an RS256 JWT', ccj.header);
  check(ccj.payload?.aud === 'api://default' && ccj.payload?.sub === 'api-client' && ccj.payload?.iss === issuer && ccj.payload?.scope === 'api:read',
    'client_credentials token aud api://default, sub=client_id, scope', ccj.payload);
  console.log(`# client_credentials access_token header ${JSON.stringify(ccj.header)} claims ${JSON.stringify(ccj.payload)}`);
  const ccRes2 = await tokenReq(basicAuth('api-client', 'api-secret'), { grant_type: 'client_credentials', resource: 'https://api.example.test/' });
  const cc2 = await json(ccRes2);
  check(ccRes2.status === 200 && verifyJwt(cc2.access_token || 'a.b.c', jwks).payload?.aud === 'https://api.example.test/', 'client_credentials with a resource indicator gets that audience', cc2);

  // ---------------------------------------------------------------- ES256 client, existing session (SSO)
  const a2 = await authorize('gate-es', REDIRECT_ES, 'openid email profile groups', { expectLogin: false });
  console.log('# SSO redirect chain (existing session):');
  for (const h of a2.hops) console.log(`#   ${h.status} ${h.url.replace(origin, '').slice(0, 60)}... -> ${h.location}`);
  const t2res = await tokenReq(null, {
    grant_type: 'authorization_code', code: a2.code, redirect_uri: REDIRECT_ES, code_verifier: a2.verifier,
    client_id: 'gate-es', client_secret: 'es secret/=?',
  });
  const t2 = await json(t2res);
  check(t2res.status === 200 && t2.id_token, 'gate-es: code exchange with client_secret_post', t2);
  check(!t2.refresh_token, 'gate-es: no refresh token without offline_access');
  const idt2 = verifyJwt(t2.id_token || 'a.b.c', jwks);
  check(idt2.ok && idt2.header.alg === 'ES256' && idt2.header.kid.startsWith('ec-'), 'gate-es: ID token ES256 signature verifies with the published EC key', idt2.header);
  check(idt2.payload?.aud === 'gate-es' && JSON.stringify(idt2.payload?.groups) === JSON.stringify(['everyone', 'auditors']) && idt2.payload?.nonce === a2.nonce,
    'gate-es: ID token aud, groups, nonce', idt2.payload);

  // a code cannot be redeemed twice (oidc-provider then also revokes what the code gave)
  const replay = await json(await tokenReq(null, {
    grant_type: 'authorization_code', code: a2.code, redirect_uri: REDIRECT_ES, code_verifier: a2.verifier,
    client_id: 'gate-es', client_secret: 'es secret/=?',
  }));
  check(replay.error === 'invalid_grant', 'authorization code cannot be used twice', replay);
  // wrong PKCE verifier
  const a2b = await authorize('gate-es', REDIRECT_ES, 'openid', { expectLogin: false });
  const badVerifier = await json(await tokenReq(null, {
    grant_type: 'authorization_code', code: a2b.code, redirect_uri: REDIRECT_ES, code_verifier: pkce().verifier,
    client_id: 'gate-es', client_secret: 'es secret/=?',
  }));
  check(badVerifier.error === 'invalid_grant', 'wrong code_verifier gets invalid_grant', badVerifier);

  // ---------------------------------------------------------------- key rotation
  const oldRsa = idt.header.kid;
  const rot = await json(await fetch(`${origin}/__test/rotate-keys`, { method: 'POST' }));
  check(rot.current?.length === 2 && rot.previous?.length === 2, '/__test/rotate-keys answers current/previous', rot);
  jwks = await json(await fetch(disco.jwks_uri));
  const sigKids = jwks.keys.filter((k) => k.use === 'sig' && k.kty !== 'OKP').map((k) => k.kid);
  check(sigKids[0] === rot.current[0].kid && sigKids.includes(oldRsa) && sigKids.indexOf(oldRsa) > 1, 'JWKS: new keys first, old keys kept after them', sigKids);
  const cc3 = await json(await tokenReq(basicAuth('api-client', 'api-secret'), { grant_type: 'client_credentials' }));
  const cc3j = verifyJwt(cc3.access_token || 'a.b.c', jwks);
  check(cc3j.ok && cc3j.header.kid === rot.current[0].kid && cc3j.payload.aud === 'api://default', 'tokens after rotation are signed with the new RSA key', cc3j.header);
  check(verifyJwt(t1.id_token, jwks).ok, 'tokens signed before rotation still verify with the published JWKS');
  const disco2 = await json(await fetch(`${issuer}/.well-known/openid-configuration`));
  check(disco2.issuer === issuer, 'discovery still fine after rotation');

  // session survives the rotation: SSO still works, with a new-key ES256 ID token
  const a3 = await authorize('gate-es', REDIRECT_ES, 'openid email', { expectLogin: false });
  const t3 = await json(await tokenReq(null, {
    grant_type: 'authorization_code', code: a3.code, redirect_uri: REDIRECT_ES, code_verifier: a3.verifier,
    client_id: 'gate-es', client_secret: 'es secret/=?',
  }));
  const idt3 = verifyJwt(t3.id_token || 'a.b.c', jwks);
  check(idt3.ok && idt3.header.kid === rot.current[1].kid, 'ID token after rotation uses the new EC key', idt3.header);

  // ---------------------------------------------------------------- RP-initiated logout
  {
    const url = new URL(disco.end_session_endpoint);
    url.search = new URLSearchParams({ id_token_hint: t3.id_token, post_logout_redirect_uri: POST_LOGOUT, state: 'bye-state' }).toString();
    const f = await follow(jar, url.href, POST_LOGOUT);
    console.log('# logout chain:');
    for (const h of f.hops) console.log(`#   ${h.status} ${h.url.replace(origin, '')} -> ${h.location}`);
    const back = new URL(f.target || 'http://invalid/');
    check(!!f.target && back.searchParams.get('state') === 'bye-state', 'logout redirects straight to post_logout_redirect_uri with state', f.hops);
    check(!jar.header(`${issuer}/v1/authorize`).includes('_session='), 'logout cleared the session cookie', jar.names());
    // after logout the login form is shown again
    await authorize('gate', REDIRECT, 'openid', { expectLogin: true, user: 'bob', password: 'bob-pw' });
  }

  // ---------------------------------------------------------------- request log
  const logEntries = await json(await fetch(`${origin}/__test/log`));
  check(Array.isArray(logEntries) && logEntries.some((e) => e.method === 'GET' && e.path === '/oauth2/default/.well-known/openid-configuration' && typeof e.t === 'number'), '/__test/log records discovery', logEntries.slice(0, 3));
  check(logEntries.some((e) => e.method === 'POST' && e.path === '/oauth2/default/v1/token') && logEntries.every((e) => !e.path.includes('?')), '/__test/log records token calls, paths without query');
  await fetch(`${origin}/__test/log/clear`, { method: 'POST' });
  await fetch(`${issuer}/v1/keys`);
  const log2 = await json(await fetch(`${origin}/__test/log`));
  check(log2.length === 1 && log2[0].path === '/oauth2/default/v1/keys', '/__test/log/clear empties the log', log2);

  // ---------------------------------------------------------------- robustness
  const junk = await fetch(`${disco.token_endpoint}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{not json' });
  check(junk.status >= 400 && junk.status < 500, `bad token request gets 4xx (${junk.status})`);
  const junk2 = await fetch(`${origin}/interaction/does-not-exist`, { method: 'POST', body: 'x' });
  check(junk2.status === 400, `unknown interaction gets 400 (${junk2.status})`);
  const junk3 = await fetch(`${origin}/__test/groups`, { method: 'POST', body: '{' });
  check(junk3.status === 400, `bad JSON to /__test/groups gets 400 (${junk3.status})`);
  const health = await fetch(`${issuer}/.well-known/openid-configuration`);
  check(health.status === 200, 'server still alive after bad requests');
  await stopServer(srv, 'main');
}

// second server: issuer at the root path, opaque (userinfo-usable) user access tokens
async function main2() {
  const srv = await startServer({ ...config, issuer_path: '/', user_access_token_format: 'opaque', access_token_ttl_s: 120 });
  const { issuer } = srv;
  check(/^http:\/\/127\.0\.0\.1:\d+$/.test(issuer), `root issuer: READY line (${issuer})`);
  const disco = await json(await fetch(`${issuer}/.well-known/openid-configuration`));
  check(disco.issuer === issuer && disco.token_endpoint === `${issuer}/v1/token`, 'root issuer: discovery', { issuer: disco.issuer, t: disco.token_endpoint });
  const jar = new CookieJar();
  const authorize = makeAuthorize(disco, jar);
  const a = await authorize('gate', REDIRECT, 'openid email groups offline_access');
  const tres = await fetch(disco.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth('gate', SECRET) },
    body: new URLSearchParams({ grant_type: 'authorization_code', code: a.code, redirect_uri: REDIRECT, code_verifier: a.verifier }).toString(),
  });
  const t = await json(tres);
  check(tres.status === 200 && t.refresh_token && t.expires_in === 120, 'opaque: code exchange', t);
  check(t.access_token && t.access_token.split('.').length === 1, 'opaque: user access token is opaque');
  const ui = await fetch(disco.userinfo_endpoint, { headers: { authorization: `Bearer ${t.access_token}` } });
  const uiBody = await json(ui);
  check(ui.status === 200 && uiBody.sub === '00u-alice' && uiBody.email === 'alice@example.com' && Array.isArray(uiBody.groups), 'opaque: userinfo answers with the claims', uiBody);
  const jwks = await json(await fetch(disco.jwks_uri));
  const id = verifyJwt(t.id_token, jwks);
  check(id.ok && id.payload.iss === issuer && Array.isArray(id.payload.groups), 'opaque: ID token verifies, has groups');
  const cc = await json(await fetch(disco.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth('api-client', 'api-secret') },
    body: 'grant_type=client_credentials',
  }));
  check(verifyJwt(cc.access_token || '', jwks).payload?.aud === 'api://default', 'opaque: client_credentials still gives a JWT for api://default', cc);
  // logout when there is no session any more still ends at the post_logout_redirect_uri
  const lo = new URL(disco.end_session_endpoint);
  lo.search = new URLSearchParams({ client_id: 'gate-es', post_logout_redirect_uri: POST_LOGOUT, state: 'st2' }).toString();
  const f1 = await follow(jar, lo.href, POST_LOGOUT);
  check(f1.target === `${POST_LOGOUT}?state=st2`, 'logout with a session (client_id, no id_token_hint) redirects back', f1.hops);
  const f2 = await follow(new CookieJar(), lo.href, POST_LOGOUT);
  check(f2.target === `${POST_LOGOUT}?state=st2`, 'logout without any session redirects back too', f2.hops);
  await stopServer(srv, 'root issuer');
}

let exitCode = 0;
for (const phase of [main, main2]) {
  try {
    await phase();
  } catch (err) {
    failed += 1;
    console.log(`not ok - selftest crashed: ${err.stack}`);
  }
}
for (const srv of servers) {
  if (srv.child.exitCode === null && srv.child.signalCode === null) srv.child.kill('SIGTERM');
}
if (failed || process.env.IDP_SELFTEST_VERBOSE) {
  for (const srv of servers) {
    console.log(`# server stderr (${srv.issuer}):`);
    console.log(srv.stderr.split('\n').map((l) => `#   ${l}`).join('\n'));
  }
}
console.log(`${passed} passed, ${failed} failed`);
exitCode = failed ? 1 : 0;
process.exit(exitCode);
