/**
 * A certificate authority made for one test run with `openssl`, and a server certificate it
 * signed for 127.0.0.1 and localhost. Clients trust it through `NODE_EXTRA_CA_CERTS` (read by Node
 * at start-up: the CLI run as a subprocess), as users behind a corporate CA do.
 */
import { execFileSync } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";

/** Files of a {@link makeTestCa} authority, all in PEM. */
export interface TestCa {
  /** The CA certificate: what clients must trust. */
  caCert: string;
  /** The server certificate (SAN: IP 127.0.0.1, DNS localhost) and its key. */
  serverCert: string;
  serverKey: string;
}

/** Makes a CA and a server certificate in `dir` (EC P-256 keys, valid for two days). */
export async function makeTestCa(dir: string): Promise<TestCa> {
  const file = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync("openssl", args, { stdio: "pipe" });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl(
    "req",
    "-x509",
    ...ec,
    "-keyout",
    file("ca.key"),
    "-out",
    file("ca.pem"),
    "-days",
    "2",
    "-subj",
    "/CN=axvisor-image test CA",
  );
  openssl(
    "req",
    ...ec,
    "-keyout",
    file("server.key"),
    "-out",
    file("server.csr"),
    "-subj",
    "/CN=localhost",
  );
  await writeFile(
    file("server.ext"),
    "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
  );
  openssl(
    "x509",
    "-req",
    "-in",
    file("server.csr"),
    "-CA",
    file("ca.pem"),
    "-CAkey",
    file("ca.key"),
    "-CAcreateserial",
    "-out",
    file("server.pem"),
    "-days",
    "2",
    "-extfile",
    file("server.ext"),
  );
  return { caCert: file("ca.pem"), serverCert: file("server.pem"), serverKey: file("server.key") };
}
