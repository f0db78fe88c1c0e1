// A real OpenID provider for the console's sign-in tests (tests/console/test_oidc.py): the certified
// `oidc-provider` package, one confidential client, PKCE required, and an interaction that signs in a
// fixed account at once (no human, no form). Never deployed.
//
//   node provider.mjs [port]       port 0 or none: a free one. Prints one JSON line {"issuer": ...} when ready.
//
// Environment:
//   CLIENT_ID, CLIENT_SECRET, REDIRECT_URI   the client (client_secret_basic or _post)
//   ACCOUNT_SUB, ACCOUNT_USERNAME, ACCOUNT_NAME, ACCOUNT_AGENCY, ACCOUNT_ROLES
//                                            the account signed in (roles: a JSON array, or words)
// The tests change the account for the next sign-ins with POST /test/account (JSON with the same keys in
// lower case: sub, preferred_username, name, agency, roles); every account ever set can be found again.
import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';

import Provider from 'oidc-provider';

const env = process.env;
const port = Number(process.argv[2] ?? env.PORT ?? 0);

function parseRoles(text) {
  if (text === undefined || text === '') return [];
  try {
    const parsed = JSON.parse(text);
    if (Array.isArray(parsed) || typeof parsed === 'string') return parsed;
  } catch { /* words */ }
  return text;
}

const accounts = new Map();
let current = null;

function setAccount(account) {
  const claims = {
    sub: String(account.sub),
    preferred_username: account.preferred_username,
    name: account.name,
    agency: account.agency,
    roles: account.roles,
  };
  accounts.set(claims.sub, claims);
  current = claims.sub;
  return claims;
}

setAccount({
  sub: env.ACCOUNT_SUB ?? 'subject-1',
  preferred_username: env.ACCOUNT_USERNAME,
  name: env.ACCOUNT_NAME,
  agency: env.ACCOUNT_AGENCY,
  roles: parseRoles(env.ACCOUNT_ROLES),
});

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomBytes(8).toString('hex'), use: 'sig', alg: 'RS256' };

const server = createServer();
server.listen(port, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: env.CLIENT_ID ?? 'casebridge-console',
      client_secret: env.CLIENT_SECRET ?? 'a-test-secret-of-enough-length',
      redirect_uris: [env.REDIRECT_URI ?? 'https://testserver/console/sign-in/oidc/callback'],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    pkce: { required: () => true },
    // Scopes named as the claims (the console asks for them when offered), and the claims parameter.
    claims: {
      openid: ['sub'],
      profile: ['preferred_username', 'name'],
      agency: ['agency'],
      roles: ['roles'],
    },
    features: {
      devInteractions: { enabled: false },
      claimsParameter: { enabled: true },
    },
    async findAccount(ctx, sub) {
      const claims = accounts.get(sub);
      if (!claims) return undefined;
      return {
        accountId: sub,
        async claims() {
          return Object.fromEntries(Object.entries(claims).filter(([, value]) => value !== undefined));
        },
      };
    },
    // A first-party client: consent is given by the interaction below, for what was asked.
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    ttl: { Interaction: 600, Session: 600, Grant: 600, AuthorizationCode: 60, AccessToken: 600, IdToken: 600 },
  });

  provider.use(async (ctx, next) => {
    if (ctx.method === 'POST' && ctx.path === '/test/account') {
      const chunks = [];
      for await (const chunk of ctx.req) chunks.push(chunk);
      ctx.body = setAccount(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      return;
    }
    if (ctx.method === 'GET' && ctx.path.startsWith('/interaction/')) {
      const details = await provider.interactionDetails(ctx.req, ctx.res);
      const { prompt, params, session } = details;
      let result;
      if (prompt.name === 'login') {
        result = { login: { accountId: current } };
      } else if (prompt.name === 'consent') {
        const grant = details.grantId
          ? await provider.Grant.find(details.grantId)
          : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
        if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
        if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
        result = { consent: { grantId: await grant.save() } };
      } else {
        result = { error: 'access_denied', error_description: `unexpected prompt ${prompt.name}` };
      }
      await provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: true });
      ctx.respond = false;
      return;
    }
    await next();
  });

  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
