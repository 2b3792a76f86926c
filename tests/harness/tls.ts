/**
 * A private CA and a serving certificate it signs for 127.0.0.1 and any DNS names given (openssl, EC
 * P-256, valid one day): for https servers that only a given CA vouches for, or that stand in for a cloud
 * provider's hosts to a client that trusts the CA.
 */
import { tempDir } from "./process.ts";

export interface ServingCertificate {
  /** The CA certificate (PEM): what a client must trust. */
  ca: string;
  /** The server's certificate (PEM), for IP 127.0.0.1 and the DNS names asked for. */
  cert: string;
  /** The server's private key (PEM). */
  key: string;
}

export async function servingCertificate(dnsNames: readonly string[] = []): Promise<ServingCertificate> {
  const dir = await tempDir("tls");
  const run = async (...args: string[]) => {
    const out = await new Deno.Command("openssl", { args, cwd: dir, stdout: "null", stderr: "piped" })
      .output();
    if (!out.success) throw new Error(`openssl ${args[0]}: ${new TextDecoder().decode(out.stderr)}`);
  };
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  await run(
    "req",
    "-x509",
    ...ec,
    "-days",
    "1",
    "-subj",
    "/CN=test-ca",
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
  );
  await run("req", ...ec, "-subj", "/CN=127.0.0.1", "-keyout", "tls.key", "-out", "tls.csr");
  const sans = ["IP:127.0.0.1", ...dnsNames.map((n) => `DNS:${n}`)].join(",");
  await Deno.writeTextFile(`${dir}/ext.cnf`, `subjectAltName=${sans}\nbasicConstraints=CA:FALSE\n`);
  await run(
    "x509",
    ...["-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1"],
    ...["-extfile", "ext.cnf", "-out", "tls.crt"],
  );
  const [ca, cert, key] = await Promise.all(
    ["ca.crt", "tls.crt", "tls.key"].map((f) => Deno.readTextFile(`${dir}/${f}`)),
  );
  return { ca: ca!, cert: cert!, key: key! };
}
