/**
 * Where the real peers live: runs `tests/peers/build.sh` (which builds only what is missing, cached by
 * version in the user cache dir, and says so before it starts) and remembers each peer's version and path.
 * A peer asked for alone builds only itself: `task dev` never waits for the test-only tools.
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
  | "promtool"
  | "gofakes3"
  | "kube-apiserver-min"
  | "kube-score"
  | "volsync-crds";

export interface Peer {
  name: PeerName;
  version: string;
  path: string;
}

/** The build.sh argument that builds each peer. */
const SCRIPT_PEER: Record<PeerName, string> = {
  "etcd": "etcd",
  "kube-apiserver": "kube",
  "kube-controller-manager": "kube",
  "backrest": "backrest",
  "restic": "restic",
  "rest-server": "rest-server",
  "helm": "helm",
  "actionlint": "actionlint",
  "promtool": "promtool",
  "kubectl": "kubectl",
  "gofakes3": "gofakes3",
  "kube-apiserver-min": "kube-min",
  "kube-score": "kube-score",
  "volsync-crds": "volsync",
};

const builds = new Map<string, Promise<Map<string, Peer>>>();

function once(arg: string): Promise<Map<string, Peer>> {
  let found = builds.get(arg);
  if (!found) {
    found = build(arg);
    builds.set(arg, found);
  }
  return found;
}

/** Every peer, built on first call (slow only on a cold machine). */
export function allPeers(): Promise<Map<string, Peer>> {
  return once("all");
}

/** One peer's binary (or, for `volsync-crds`, its folder); builds only that peer when it is missing. */
export async function peer(name: PeerName): Promise<Peer> {
  const found = (await once(SCRIPT_PEER[name])).get(name);
  if (!found) throw new Error(`peer ${name} is missing from tests/peers/build.sh output`);
  return found;
}

async function build(arg: string): Promise<Map<string, Peer>> {
  const script = new URL("../peers/build.sh", import.meta.url).pathname;
  const out = await new Deno.Command("bash", { args: [script, arg], stdout: "piped", stderr: "inherit" })
    .output();
  if (!out.success) throw new Error(`tests/peers/build.sh ${arg} failed with exit code ${out.code}`);
  const map = new Map<string, Peer>();
  for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
    const [name, version, path] = line.trim().split(" ");
    if (name && version && path) map.set(name, { name: name as PeerName, version, path });
  }
  return map;
}
