/**
 * Builds `install.yaml`, the one file a release carries for `kubectl apply -f`: what `kubectl kustomize
 * manifests/` renders (CRDs, the namespace, the ServiceAccount, RBAC, the Deployment and its metrics
 * Service) with the operator image set to the one given, so a release installs exactly its own image.
 *
 *   deno run --allow-read --allow-run --allow-env=LOG_TOKENS,LOG_STREAM tools/install_yaml.ts \
 *     --kubectl=<path> --image=<ref> [manifests-dir]
 *
 * (The yaml package reads LOG_TOKENS and LOG_STREAM, its debug switches; release.yaml runs exactly this.)
 *
 * Rules: manifests/ is the single source (nothing is added or dropped); exactly one container runs the
 * operator image, and the given reference must carry a tag or digest.
 */
import { parseAllDocuments, stringify } from "yaml";

/** The operator image as manifests/ names it (its kustomization sets the tag). */
export const OPERATOR_IMAGE = "ghcr.io/backrest-volsync/backrest-volsync-operator";

function field(v: unknown, key: string): unknown {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? Reflect.get(v, key) : undefined;
}

/** Sets the operator container's image in rendered objects; throws unless exactly one container ran it. */
export function pinImage(objects: unknown[], image: string): void {
  if (/\s/.test(image) || !/[:@]/.test(image.slice(image.lastIndexOf("/") + 1))) {
    throw new Error(`install_yaml: --image must name a tag or digest: ${image}`);
  }
  let found = 0;
  for (const obj of objects) {
    if (field(obj, "kind") !== "Deployment") continue;
    const containers = field(field(field(field(obj, "spec"), "template"), "spec"), "containers");
    if (!Array.isArray(containers)) continue;
    for (const c of containers) {
      const current = field(c, "image");
      const rest = typeof current === "string" && current.startsWith(OPERATOR_IMAGE)
        ? current.slice(OPERATOR_IMAGE.length)
        : undefined;
      if (rest === "" || /^[:@]/.test(rest ?? "")) {
        Reflect.set(c, "image", image);
        found++;
      }
    }
  }
  if (found !== 1) throw new Error(`install_yaml: expected one operator container, found ${found}`);
}

/** Renders `dir` with kubectl's kustomize and pins the image; returns the YAML stream. */
export async function installYaml(o: { kubectl: string; image: string; dir: string }): Promise<string> {
  const out = await new Deno.Command(o.kubectl, {
    args: ["kustomize", o.dir],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `install_yaml: kubectl kustomize ${o.dir} failed: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  const objects: unknown[] = [];
  for (const doc of parseAllDocuments(new TextDecoder().decode(out.stdout))) {
    if (doc.errors.length > 0) {
      throw new Error(`install_yaml: bad YAML from kustomize: ${doc.errors[0]?.message}`);
    }
    const value: unknown = doc.toJS();
    if (value !== null && value !== undefined) objects.push(value);
  }
  pinImage(objects, o.image);
  const header = `# backrest-volsync-operator (${o.image}): CRDs, namespace backups, RBAC, Deployment.\n` +
    "# Install or upgrade with: kubectl apply -f install.yaml\n";
  return header + objects.map((obj) => `---\n${stringify(obj, { lineWidth: 0 })}`).join("");
}

if (import.meta.main) {
  const flag = (name: string) => Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const kubectl = flag("kubectl");
  const image = flag("image");
  const dir = Deno.args.find((a) => !a.startsWith("--")) ?? "manifests";
  if (!kubectl || !image) {
    throw new Error("usage: install_yaml.ts --kubectl=<path> --image=<ref> [manifests-dir]");
  }
  await Deno.stdout.write(new TextEncoder().encode(await installYaml({ kubectl, image, dir })));
}
