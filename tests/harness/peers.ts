/**
 * Where the real peers live: runs `tests/peers/build.sh` (which builds only what is missing, cached by
 * version in the user cache dir) once per process and remembers each peer's version and path.
 */

export type PeerName =
  | "etcd"
  | "kube-apiserver"
  | "kube-controller-manager"
  | "backrest"
  | "restic"
  | "rest-server"
  | "helm"
  | "actionlint"
  | "kubectl"
  | "volsync-crds";

export interface Peer {
  name: PeerName;
  version: string;
  path: string;
}

let peers: Promise<Map<string, Peer>> | undefined;

/** Every peer, built on first call (slow only on a cold machine). */
export function allPeers(): Promise<Map<string, Peer>> {
  peers ??= build();
  return peers;
}

/** One peer's binary (or, for `volsync-crds`, its folder). */
export async function peer(name: PeerName): Promise<Peer> {
  const found = (await allPeers()).get(name);
  if (!found) throw new Error(`peer ${name} is missing from tests/peers/build.sh output`);
  return found;
}

async function build(): Promise<Map<string, Peer>> {
  const script = new URL("../peers/build.sh", import.meta.url).pathname;
  const out = await new Deno.Command("bash", { args: [script], stdout: "piped", stderr: "inherit" }).output();
  if (!out.success) throw new Error(`tests/peers/build.sh failed with exit code ${out.code}`);
  const map = new Map<string, Peer>();
  for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
    const [name, version, path] = line.trim().split(" ");
    if (name && version && path) map.set(name, { name: name as PeerName, version, path });
  }
  return map;
}
