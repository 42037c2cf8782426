// A real OpenID Connect provider (oidc-provider) on loopback, for zhisuan's single sign-on tests and demo.
// Its config (a JSON file, argv[2]): {port, issuer, clients: [...], users: {login: {email, groups}},
// cli_id_token_ttl}. Logins use the provider's own development screens (any password): the accounts and
// their groups claim are the file's. Prints "ready <issuer>" once it listens.
import { generateKeyPairSync } from "node:crypto";
import { readFileSync } from "node:fs";
import Provider from "oidc-provider";

const cfg = JSON.parse(readFileSync(process.argv[2], "utf8"));
const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: "jwk" }), kid: "zhisuan-test", use: "sig", alg: "RS256" };

const provider = new Provider(cfg.issuer, {
  clients: cfg.clients,
  jwks: { keys: [jwk] },
  features: { devInteractions: { enabled: true }, deviceFlow: { enabled: true } },
  pkce: { required: () => true },
  scopes: ["openid", "email", "groups"],
  claims: { openid: ["sub"], email: ["email", "email_verified"], groups: ["groups"] },
  conformIdTokenClaims: false,  // the groups and e-mail claims in the ID token itself
  ttl: {
    IdToken: (ctx, token, client) => (client.clientId === cfg.short_lived_client ? cfg.short_ttl || 3 : 3600),
    DeviceCode: 600, AccessToken: 3600, Interaction: 600, Session: 3600, Grant: 3600,
  },
  async findAccount(ctx, id) {
    const user = cfg.users[id] || { email: `${id}@example.org`, groups: [] };
    const claims = { sub: id, email: user.email, email_verified: user.email_verified === true, groups: user.groups };
    return { accountId: id, async claims() { return claims; } };
  },
});
provider.listen(cfg.port, "127.0.0.1", () => console.log(`ready ${cfg.issuer}`));
